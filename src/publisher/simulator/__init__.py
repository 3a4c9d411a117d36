"""A local simulator of the social platforms' publishing APIs.

It serves the same paths as the real APIs (Facebook Pages first), with latency, quotas and
injectable faults, and records every post it accepts so tests and benchmarks can count
duplicates and losses exactly. See ``server.py`` to start it and ``control.py`` for the
``/_sim/`` endpoints.
"""

from publisher.simulator.app import PLATFORMS, SimulatorApp
from publisher.simulator.server import SimulatorError, SimulatorProcess, run_in_process
from publisher.simulator.state import FAULT_KINDS, PostRecord, SimConfig, SimState

__all__ = [
    "FAULT_KINDS",
    "PLATFORMS",
    "PostRecord",
    "SimConfig",
    "SimState",
    "SimulatorApp",
    "SimulatorError",
    "SimulatorProcess",
    "run_in_process",
]
