"""Runs the program's coroutine on uvloop where it is installed (Linux and macOS).

uvloop's event loop spends about half the CPU of asyncio's on each callback and socket
event, and a run at volume is thousands of them per second; elsewhere asyncio's own loop
does the same work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
