"""How many latency-bearing simulator calls one post of each type makes.

The simulator adds its latency to "publishing" calls only (a Facebook multi-photo post
uploads each photo, then posts; an Instagram post creates a container, then publishes).
The bound of seed-500 is computed from these counts, measured here rather than assumed:
each post type is published once, alone, against an in-process simulator without latency
that counts the calls it would have delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from benchmarks.common import (
    CIPHER,
    Server,
    bench_settings,
    fresh_database,
    seed_for_simulator,
)
from publisher.app import http_client
from publisher.platforms import PlatformAdapter
from publisher.run import Publisher
from publisher.seeding import POST_MIX, SeedPlan
from publisher.simulator.app import SimulatorApp
from publisher.simulator.base import Outcome, Request
from publisher.simulator.server import bind, make_server, url_of
from publisher.simulator.state import SimConfig
from publisher.store.postgres import PostgresTransport
from publisher.store.store import Store


class CountingSimulator(SimulatorApp):
    """The simulator, counting the calls that its latency applies to."""

    latency_calls = 0

    async def dispatch(self, request: Request, *, body_ok: bool = True) -> Outcome:
        matches = self._matches(request.method, request.path)
        if matches:
            route, match = matches[0]
            request.match = match.groupdict()
            if route.publishes(request):
                self.latency_calls += 1
        return await super().dispatch(request, body_ok=body_ok)


@contextlib.asynccontextmanager
async def counting_simulator() -> AsyncIterator[tuple[CountingSimulator, str]]:
    app = CountingSimulator(SimConfig())
    sock = bind("127.0.0.1", 0)
    server = make_server(app, own_logging=False)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the counting simulator stopped while starting")
            await asyncio.sleep(0.01)
        yield app, url_of(sock)
    finally:
        server.stop()
        await task
        sock.close()


@dataclass(frozen=True)
class Calls:
    calls: int        # latency-bearing simulator calls
    status: str       # what the post ended as, alone (should be published)


async def latency_calls(server: Server, adapters: Mapping[str, PlatformAdapter],
                        platforms: Sequence[str]) -> dict[tuple[str, str], Calls]:
    """(platform, post type) -> its calls, for every type of POST_MIX of the platforms."""
    url = await fresh_database(server, "bench_calibrate")
    conn = await asyncpg.connect(url)
    store = Store(await PostgresTransport.connect(url))
    result: dict[tuple[str, str], Calls] = {}
    try:
        async with counting_simulator() as (app, sim_url):
            for platform in platforms:
                n = len(POST_MIX[platform])  # one post of each type, each on its own account
                await seed_for_simulator(conn, SeedPlan(posts=n, accounts=n,
                                                        platforms=[platform]), sim_url)
            await conn.execute("update public.created_content set status = 'draft'")
            picks: dict[tuple[str, str], int] = {}
            for row in await conn.fetch("select id, platform, post_type "
                                        "from public.created_content order by id"):
                picks.setdefault((row["platform"], row["post_type"]), row["id"])
            settings = bench_settings(url, sim_url)
            async with http_client(settings) as client:
                for key, post_id in picks.items():
                    await conn.execute("update public.created_content set status = 'scheduled' "
                                       "where id = $1", post_id)
                    before = app.latency_calls
                    await Publisher(settings, store, client, adapters, CIPHER).run()
                    status = await conn.fetchval("select status from public.created_content "
                                                 "where id = $1", post_id)
                    result[key] = Calls(app.latency_calls - before, str(status))
    finally:
        await store.close()
        await conn.close()
    return result
