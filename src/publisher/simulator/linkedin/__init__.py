"""The simulated LinkedIn Posts and Images APIs (handlers.py)."""

from publisher.simulator.linkedin.handlers import LinkedIn

__all__ = ["LinkedIn"]
