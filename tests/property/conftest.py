"""How long the property test runs: a CI-sized default, longer on request.

    --property-examples N   or   PROPERTY_EXAMPLES=N   examples (default 40, same every run:
                                                        derandomized; with N, new random ones)
    PROPERTY_SHRINK=0                                   report failures unshrunk (faster)

The option works when pytest is pointed at this folder (`scripts/test tests/property
--property-examples 500`); the variable works however pytest is started.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import Phase, settings
from property_rows import PROFILE

DEFAULT_EXAMPLES = 40


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--property-examples", type=int, default=None, metavar="N",
                     help="examples for tests/property (default 40, derandomized)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "property: hypothesis property tests (tests/property)")
    asked = config.getoption("--property-examples", default=None)
    if asked is None and os.environ.get("PROPERTY_EXAMPLES", "").strip():
        asked = int(os.environ["PROPERTY_EXAMPLES"])
    phases = tuple(Phase)
    if os.environ.get("PROPERTY_SHRINK", "").strip() == "0":
        phases = tuple(p for p in Phase if p is not Phase.shrink)
    settings.register_profile(
        PROFILE,
        max_examples=asked or DEFAULT_EXAMPLES,
        # CI runs the same examples every time; a longer run asked for explores new ones.
        derandomize=asked is None,
        # Each example is a whole run against Postgres and the simulator: seconds, not ms.
        deadline=None,
        phases=phases,
        # No example database left in the working tree: a failure prints its reproduction
        # blob (@reproduce_failure) instead.
        database=None,
        print_blob=True,
    )
