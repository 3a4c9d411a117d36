"""Fixtures for the per-platform simulator tests: one in-process simulator per module.

sim_base     module: the simulator's base URL
sim_client   module: an httpx client on it (no default credentials)
sim          per test: that client, after a reset to the default configuration
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from publisher.simulator import SimConfig, run_in_process

DEFAULTS = SimConfig(seed=1).as_json()


@pytest.fixture(scope="module")
async def sim_base() -> AsyncIterator[str]:
    """One in-process simulator for the module."""
    async with run_in_process(SimConfig(seed=1)) as url:
        yield url


@pytest.fixture(scope="module")
async def sim_client(sim_base: str) -> AsyncIterator[httpx.AsyncClient]:
    """One client for the module."""
    async with httpx.AsyncClient(base_url=sim_base, timeout=10) as client:
        yield client


@pytest.fixture
async def sim(sim_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client, on a freshly reset simulator with the default configuration."""
    (await sim_client.post("/_sim/config", json=DEFAULTS)).raise_for_status()
    (await sim_client.post("/_sim/reset")).raise_for_status()
    return sim_client
