"""A publisher process for scale-100k: `python -m benchmarks.worker`, settings from the env.

The same wiring as `python -m publisher run` (publisher.app.runtime: Settings.from_env,
open_store, http_client, build_adapters), plus what the benchmark needs from inside: the
store's statement count, and this process's CPU and peak memory, as one BENCH_RESULT line.
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from typing import Any

from benchmarks.common import emit_result
from publisher import eventloop
from publisher.app import finish_run, runtime
from publisher.logs import setup_logging
from publisher.settings import Settings


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(settings: Settings) -> dict[str, Any]:
    async with runtime(settings) as rt:
        by_function: Counter[str] = Counter()
        call = rt.store._call

        async def counted(function: str, **params: Any) -> Any:
            by_function[function] += 1
            return await call(function, **params)

        rt.store._call = counted  # type: ignore[method-assign]
        publisher = rt.publisher()
        cpu, clock = _cpu(), time.perf_counter()
        summary = await publisher.run()
        await finish_run(rt.store, summary)
        return {"summary": summary.as_dict(), "statements": rt.store.statements,
                "by_function": dict(by_function),
                "run_cpu": _cpu() - cpu, "run_wall": time.perf_counter() - clock}


def main() -> None:
    settings = Settings.from_env()
    setup_logging(settings.log_level, settings.log_format)
    eventloop.tune_gc()  # as the publisher CLI does
    result = eventloop.run(_run(settings))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["process_cpu"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_mb"] = usage.ru_maxrss / 1024       # KB on Linux
    emit_result(result)


if __name__ == "__main__":
    main()
