"""scripts/bench NAME [--size N] [--workers K[,K...]] [--concurrency C] [--platforms a,b].

NAME: seed-500 | scale-100k | queue-core | idle | all. Each benchmark starts its own
embedded Postgres (`all` starts one and gives every benchmark fresh databases in it).
Exit 0 only when every benchmark's run was correct.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

from benchmarks.common import Server, postgres_server
from publisher.logs import setup_logging
from publisher.platforms import PlatformAdapter, build_adapters

NAMES = ("seed-500", "scale-100k", "queue-core", "idle")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=[*NAMES, "all"])
    parser.add_argument("--size", type=float, default=1.0,
                        help="scale the post/job counts (e.g. 0.01 for a smoke test)")
    parser.add_argument("--workers", default="1",
                        help="scale-100k: publisher processes, or a list such as 1,2,4")
    parser.add_argument("--concurrency", type=int, default=600,
                        help="scale-100k: MAX_CONCURRENCY in total, split over the workers")
    parser.add_argument("--platforms", default="",
                        help="restrict to these registered platforms (default: all)")
    parser.add_argument("--runs", type=int, default=5,
                        help="idle: runs per variant; queue-core: publisher/pgqueuer rounds")
    return parser


def _adapters(only: str) -> dict[str, PlatformAdapter]:
    adapters = build_adapters()
    if only:
        wanted = {p.strip() for p in only.split(",") if p.strip()}
        unknown = wanted - set(adapters)
        if unknown:
            raise SystemExit(f"not registered: {', '.join(sorted(unknown))}; "
                             f"registered: {', '.join(sorted(adapters))}")
        adapters = {p: a for p, a in adapters.items() if p in wanted}
    return adapters


def _benchmark(name: str, args: argparse.Namespace) -> Callable[[Server], Awaitable[int]]:
    if name == "seed-500":
        from benchmarks import seed500

        return lambda server: seed500.run(server, _adapters(args.platforms), args.size)
    if name == "scale-100k":
        from benchmarks import scale

        workers = [int(k) for k in args.workers.split(",")]
        return lambda server: scale.run(server, sorted(_adapters(args.platforms)), args.size,
                                        workers, args.concurrency)
    if name == "queue-core":
        from benchmarks import queue_core

        return lambda server: queue_core.run(server, args.size, args.runs)
    from benchmarks import idle

    return lambda server: idle.run(server, args.size, args.runs)


async def _main(args: argparse.Namespace) -> int:
    names = NAMES if args.name == "all" else (args.name,)
    benchmarks = [_benchmark(name, args) for name in names]
    worst = 0
    with postgres_server() as server:
        for benchmark in benchmarks:
            worst = max(worst, await benchmark(server))
    return worst


def main() -> int:
    args = _parser().parse_args()
    setup_logging("WARNING", "text")
    logging.getLogger("publisher").setLevel(logging.WARNING)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
