"""queue-core, our side: N no-op posts through the real Publisher (claim -> dispatch ->
record), with a no-op adapter registered only here.

The adapter sends nothing, but the path is the real one: claim_due_posts leases each post,
begin_sending stamps it (mark_sending), record_outcomes writes its state and one
publish_attempts row, and the run summary is written at the end.
"""

from __future__ import annotations

import random

import asyncpg

from benchmarks.common import CIPHER, bench_settings
from publisher import eventloop
from publisher.app import finish_run, http_client
from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PlatformAdapter, PublishContext
from publisher.run import Publisher
from publisher.store.postgres import PostgresTransport
from publisher.store.store import Store

PLATFORM = "noop"
POSTS_PER_ACCOUNT = 20
LIMIT = 1000           # MAX_CONCURRENCY and the platform's concurrency


class NoopAdapter:
    platform = PLATFORM

    def validate(self, post: ClaimedPost) -> str | None:
        return None

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        if not await context.begin_sending():
            return Outcome(kind=OutcomeKind.LEASE_LOST, reason="claim lost before sending")
        return Outcome.published(f"noop-{post.id}", None)


async def load(url: str, n: int) -> None:
    accounts = max(1, n // POSTS_PER_ACCOUNT)
    conn = await asyncpg.connect(url)
    try:
        token = CIPHER.encrypt("noop-token")
        ids = await conn.fetch(
            "insert into public.social_accounts (platform, external_id, access_token_encrypted) "
            "select $1, 'noop-' || g, $2 from generate_series(1, $3) g returning id",
            PLATFORM, token, accounts)
        owners = [row["id"] for row in ids]
        random.Random(5).shuffle(owners)
        await conn.execute(
            "insert into public.created_content (account_id, platform, content, scheduled_at) "
            "select a, $1, 'no-op ' || n, now() - interval '1 minute' "
            "from unnest($2::uuid[]) with ordinality as s(a, n)",
            PLATFORM, [owners[i % accounts] for i in range(n)])
    finally:
        await conn.close()


async def drain(url: str) -> int:
    """Runs the Publisher until nothing is due; returns the statements it made."""
    eventloop.tune_gc()  # the publisher CLI's process setting (the other engines keep theirs)
    settings = bench_settings(url, max_concurrency=LIMIT, platform_concurrency={PLATFORM: LIMIT})
    adapters: dict[str, PlatformAdapter] = {PLATFORM: NoopAdapter()}
    store = Store(await PostgresTransport.connect(url))
    try:
        async with http_client(settings) as client:
            summary = await Publisher(settings, store, client, adapters, CIPHER).run()
            await finish_run(store, summary)
    finally:
        await store.close()
    return store.statements


async def check(url: str, n: int) -> tuple[int, str]:
    """(posts fully done, what is wrong if not all): published, with an applied
    publish_attempts row each, and the run logged."""
    conn = await asyncpg.connect(url)
    try:
        published = await conn.fetchval(
            "select count(*) from public.created_content where status = 'published' "
            "and platform_post_id = 'noop-' || id and published_at is not null "
            "and locked_by is null")
        attempts = await conn.fetchval(
            "select count(distinct post_id) from public.publish_attempts "
            "where applied and outcome = 'published'")
        runs = await conn.fetchval("select count(*) from public.publisher_runs")
    finally:
        await conn.close()
    problem = ""
    if published != n or attempts != n or runs < 1:
        problem = (f"{published} of {n} posts published, {attempts} attempt rows, "
                   f"{runs} run rows")
    return int(published), problem
