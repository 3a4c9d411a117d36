"""`publisher worker`: the run loop without the exit, woken by NOTIFY, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import asyncpg

from helpers import insert_account, insert_posts, sql
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.simulator.server import SimulatorProcess
from publisher.simulator.state import SimConfig

KEY = generate_key()


async def wait_for(db: asyncpg.Connection, query: str, expected: object,
                   seconds: float) -> bool:
    for _ in range(int(seconds / 0.1)):
        if await db.fetchval(query) == expected:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_worker_wakes_on_new_posts_and_stops_on_sigterm(database_url: str,
                                                              db: asyncpg.Connection) -> None:
    """New posts are published long before the (60 s) idle poll; SIGTERM exits 0."""
    cipher = TokenCipher(parse_key(KEY))
    account = await insert_account(db, external_id="page-w",
                                   access_token_encrypted=cipher.encrypt("tok"))
    async with SimulatorProcess(SimConfig(latency=0.0)) as sim:
        env = {**os.environ, "DATABASE_URL": database_url, "SIMULATOR_URL": sim.url,
               "ENCRYPTION_KEY": KEY, "WORKER_POLL_SECONDS": "6", "LOG_FORMAT": "json"}
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "publisher", "worker", env=env,
            stderr=asyncio.subprocess.PIPE)
        try:
            assert worker.stderr is not None
            started = await asyncio.wait_for(worker.stderr.readline(), 30)
            assert b"worker_started" in started
            assert b'"listening": true' in started
            await asyncio.sleep(0.5)  # idle now: only a NOTIFY can wake it before 60 s
            await insert_posts(db, 10, account_id=account, content=sql("'w ' || random()"))
            assert await wait_for(db, "select count(*) from created_content "
                                      "where status = 'published'", 10, seconds=20)
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), 20) == 0
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    assert await db.fetchval("select count(*) from publisher_runs") >= 1
