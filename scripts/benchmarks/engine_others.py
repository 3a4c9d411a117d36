"""queue-core, the anchors: procrastinate, pgqueuer and plain SQL draining N no-op jobs,
each set up the way research/anchor-bench.md ran its best setting."""

from __future__ import annotations

import json

import asyncpg

PROCRASTINATE_CONCURRENCY = 10
PGQUEUER_BATCH = 100
SQL_BATCH = 1000


# --- procrastinate: 1 worker, concurrency 10, default pool --------------------------------

def _procrastinate_app(url: str):  # type: ignore[no-untyped-def]
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    return app, noop


async def procrastinate_load(url: str, n: int) -> None:
    app, noop = _procrastinate_app(url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await noop.batch_defer_async(*[{}] * n)


async def procrastinate_drain(url: str) -> None:
    app, _ = _procrastinate_app(url)
    async with app.open_async():
        await app.run_worker_async(wait=False, concurrency=PROCRASTINATE_CONCURRENCY,
                                   install_signal_handlers=False)


async def procrastinate_done(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(
        "select count(*) from procrastinate_jobs where status = 'succeeded'"))


# --- pgqueuer: 1 PgQueuer, batch_size 100, drain mode -------------------------------------

async def pgqueuer_load(url: str, n: int) -> None:
    from pgqueuer import Queries

    conn = await asyncpg.connect(url)
    try:
        queries = Queries.from_asyncpg_connection(conn)
        await queries.install()
        await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    finally:
        await conn.close()


async def pgqueuer_drain(url: str) -> None:
    from pgqueuer import PgQueuer
    from pgqueuer.models import Job
    from pgqueuer.types import QueueExecutionMode

    conn = await asyncpg.connect(url)
    try:
        pgq = PgQueuer.from_asyncpg_connection(conn)

        @pgq.entrypoint("noop")
        async def noop(job: Job) -> None:
            return None

        await pgq.run(batch_size=PGQUEUER_BATCH, mode=QueueExecutionMode.drain)
    finally:
        await conn.close()


async def pgqueuer_done(conn: asyncpg.Connection) -> int:
    left = await conn.fetchval("select count(*) from pgqueuer")
    logged = await conn.fetchval(
        "select count(*) from pgqueuer_log where status = 'successful'")
    aggregated = await conn.fetchval(
        "select coalesce(sum(count), 0) from pgqueuer_statistics where status = 'successful'")
    return int(max(logged, aggregated)) if left == 0 else 0


# --- plain SQL (asyncpg): batched claim + mark done, B=1000, one claimer ------------------

SQL_SCHEMA = """
create table jobs (id bigserial primary key, payload jsonb not null,
                   status smallint not null default 0);
create index jobs_todo on jobs (id) where status = 0;
"""
SQL_CLAIM = """
update jobs set status = 1
 where id in (select id from jobs where status = 0 order by id limit $1
              for update skip locked)
returning id, payload
"""
SQL_DONE = "update jobs set status = 2 from unnest($1::bigint[]) as d(id) where jobs.id = d.id"


async def sql_load(url: str, n: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SQL_SCHEMA)
        await conn.execute("insert into jobs (payload) select p from unnest($1::jsonb[]) p",
                           [json.dumps({"n": i}) for i in range(n)])
    finally:
        await conn.close()


async def sql_drain(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        while rows := await conn.fetch(SQL_CLAIM, SQL_BATCH):
            await conn.execute(SQL_DONE, [row["id"] for row in rows])
    finally:
        await conn.close()


async def sql_done(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("select count(*) from jobs where status = 2"))
