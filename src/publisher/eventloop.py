"""Runs the program's coroutine on uvloop where it is installed (Linux and macOS).

uvloop's event loop spends about half the CPU of asyncio's on each callback and socket
event, and a run at volume is thousands of them per second; elsewhere asyncio's own loop
does the same work.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

GC_YOUNG_THRESHOLD = 10_000  # allocations between young-generation collections (default 700)


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def tune_gc() -> None:
    """Gives the cyclic garbage collector a larger young generation, for a process that
    publishes at volume (the CLI's runs and workers).

    Each post allocates a few dozen container objects (the claim's decoded JSON, tasks,
    futures, records), nearly all freed by reference counting at once; with the default
    threshold of 700 the collector ran every few posts and traversed everything in flight:
    about a fifth of the client's CPU per post (20,000 no-op posts: ~65 -> ~50 us each).
    Cycles are still collected, in larger batches. Never lowers a threshold set higher, and
    leaves a disabled collector (threshold 0) alone."""
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
