"""queue-core: claim -> dispatch -> record alone, against the best Postgres queues.

N no-op jobs through our Publisher (a no-op adapter; the real claim, sending stamp,
outcome and attempt-log writes), then the same N through procrastinate, pgqueuer and plain
SQL, each in its own process and its own database on the same server, one after another.
"""

from __future__ import annotations

from benchmarks.common import ChildResult, Server, child_env, fresh_database, run_child
from benchmarks.table import Table, cell
from publisher.settings import Settings

JOBS = 20_000
# research/anchor-bench.md, same machine kind, median jobs/s of the setting used here.
ANCHORS = {"publisher": "",
           "procrastinate": "anchor 729 (concurrency 10)",
           "pgqueuer": "anchor 11,322 (batch 100, drain)",
           "plain-sql": "anchor 47,168 (B=1000, 1 claimer, N=200k)"}


async def _drain(server: Server, env: dict[str, str], engine: str, n: int,
                 tag: str) -> ChildResult:
    url = await fresh_database(server, f"bench_queue_{engine.replace('-', '_')}{tag}",
                               migrate=engine == "publisher")
    return await run_child(
        ["-m", "benchmarks.engines", engine, url, str(n), str(server.pid or 0)], env,
        server.folder / f"queue-{engine}{tag}.log")


def _rate(child: ChildResult, n: int) -> float:
    return n / float(child.result["seconds"]) if child.result and not child.returncode else 0.0


async def run(server: Server, size: float, rounds: int = 1) -> int:
    """Each engine once; publisher and pgqueuer, the close pair, in `rounds` alternating
    rounds: this machine drifts between faster and slower spells of several seconds, so one
    drain each can compare a fast spell with a slow one. The round with the median ratio is
    the one shown."""
    n = max(100, round(JOBS * size))
    env = dict(child_env(Settings()))
    pairs: list[tuple[ChildResult, ChildResult]] = []
    for i in range(max(1, rounds)):
        ours = await _drain(server, env, "publisher", n, f"_{i}")
        theirs = await _drain(server, env, "pgqueuer", n, f"_{i}")
        pairs.append((ours, theirs))
    ratios = [_rate(a, n) / max(_rate(b, n), 1e-9) for a, b in pairs]
    median = sorted(range(len(pairs)), key=ratios.__getitem__)[len(pairs) // 2]
    measured: dict[str, ChildResult] = {"publisher": pairs[median][0],
                                        "procrastinate": await _drain(server, env,
                                                                      "procrastinate", n, ""),
                                        "pgqueuer": pairs[median][1],
                                        "plain-sql": await _drain(server, env, "plain-sql", n,
                                                                  "")}

    table = Table(f"queue-core: {n:,} no-op jobs per engine, one after another on one server",
                  columns=["jobs/s", "drain", "CPU s: client / postgres", "cores busy"])
    rates: dict[str, float] = {}
    for engine, child in measured.items():
        result = child.result
        if child.returncode or result is None:
            table.problem(f"{engine} exited {child.returncode}: {child.tail()}")
            continue
        if result["problem"]:
            table.problem(f"{engine}: {result['problem']}")
        seconds = float(result["seconds"])
        rates[engine] = n / seconds
        table.add(engine, f"{rates[engine]:,.0f}", f"{seconds:.2f} s",
                  f"{float(result['cpu']):.2f} / {float(result['postgres_cpu']):.2f}",
                  f"{float(result['machine_cores']):.2f}", target=ANCHORS[engine])
    ours = rates.get("publisher")
    for engine in ("procrastinate", "pgqueuer", "plain-sql"):
        if ours and engine in rates:
            ratio = ours / rates[engine]
            met = ratio > 1 if engine == "pgqueuer" else None
            table.add(f"publisher / {engine}", cell(f"{ratio:.2f}x", met),
                      target="> 1 (ahead of pgqueuer)" if engine == "pgqueuer" else "")
    if len(pairs) > 1:
        table.add("rounds: publisher / pgqueuer jobs/s (ratio)",
                  "; ".join(f"{_rate(a, n):,.0f} / {_rate(b, n):,.0f} ({r:.2f}x)"
                            for (a, b), r in zip(pairs, ratios, strict=True)))
    statements = measured["publisher"].result if "publisher" in measured else None
    if statements and statements.get("statements"):
        table.add("publisher statements per 1,000 jobs",
                  f"{int(statements['statements']) / n * 1000:.1f}")
    table.note("publisher: Publisher.run with a no-op adapter (await begin_sending, then "
               "published): lease, sending stamp, outcome and one publish_attempts row per "
               "post, run summary row; MAX_CONCURRENCY and platform concurrency 1000, "
               "ACCOUNT_CONCURRENCY 2, 20 posts per account, with the CLI's garbage-collector "
               "setting (eventloop.tune_gc); every engine runs on uvloop")
    table.note("each engine in its own process and database; load untimed, then ANALYZE + "
               "CHECKPOINT; 'drain' is the timed part; cores busy = whole machine, of 2")
    return table.print()
