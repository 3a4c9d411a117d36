"""Issue 10, items 3, 5, 6 and 7 through a whole run on real Postgres (the `store` fixture):
a post whose data can never work fails once, with a reason naming the field, before any
platform call, and the posts beside it go on; an exception from one post is a permanent
failure before "sending" and needs_review after it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest

from helpers import attempts_for, fetch_post, insert_account, insert_post, sql
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.models import ClaimedPost, Outcome
from publisher.platforms import build_adapters
from publisher.platforms.base import PlatformAdapter, PublishContext
from publisher.run import Publisher
from publisher.settings import PlatformEndpoints, Settings
from publisher.store import Store

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))
GRAPH = "https://graph.rules.test"
GOOGLE = "https://upload.rules.test"
IMAGE = "https://cdn.rules.test/a.jpg"


def settings_for(database_url: str) -> Settings:
    return Settings(database_url=database_url, encryption_key=KEY, worker_id="rules",
                    endpoints=PlatformEndpoints(facebook=GRAPH, facebook_video=GRAPH,
                                                instagram=GRAPH, youtube_upload=GOOGLE),
                    run_deadline_seconds=60, http_timeout_seconds=5, retry_base_seconds=60,
                    max_concurrency=8)


def platform(calls: Counter[str]) -> httpx.MockTransport:
    """A Graph API that publishes whatever reaches it; every call is counted by host."""
    ids = iter(range(10**6))

    def handle(request: httpx.Request) -> httpx.Response:
        calls[request.url.host] += 1
        return httpx.Response(200, json={"id": f"post{next(ids)}"})

    return httpx.MockTransport(handle)


async def run(database_url: str, store: Store,
              adapters: dict[str, PlatformAdapter] | None = None) -> Counter[str]:
    calls: Counter[str] = Counter()
    async with httpx.AsyncClient(transport=platform(calls)) as client:
        await Publisher(settings_for(database_url), store, client,
                        adapters or build_adapters(), CIPHER).run()
    return calls


async def account(db: asyncpg.Connection, platform_name: str, external_id: str) -> str:
    return await insert_account(db, platform=platform_name, external_id=external_id,
                                access_token_encrypted=CIPHER.encrypt("tok-" + external_id))


async def test_bad_data_fails_once_naming_the_field_and_the_rest_goes_on(
        database_url: str, db: asyncpg.Connection, store: Store) -> None:
    """ARRAY[NULL] media, options that are not an object, media where none is taken, a
    missing post_type, invisible text and a loopback media URL: each fails after exactly one
    attempt, naming what is wrong; only the valid post reaches the platform."""
    page = await account(db, "facebook", "page-rules")
    channel = await account(db, "youtube", "channel-rules")
    video = {"platform": "youtube", "account_id": channel, "post_type": "video",
             "title": "Private video", "media_urls": ["https://cdn.rules.test/v.mp4"]}
    cases: dict[str, tuple[int, str]] = {
        "null media": (await insert_post(
            db, account_id=page, post_type="photo", media_urls=sql("array[null]::text[]")),
            "media_urls[0] is NULL"),
        "options array": (await insert_post(
            db, **video, platform_options='[{"privacy": "private"}]'),
            "platform_options must be a JSON object"),
        "options string": (await insert_post(db, **video, platform_options='"private"'),
                           "platform_options must be a JSON object"),
        "privacy misspelt": (await insert_post(
            db, **video, platform_options='{"privacy_status": "private"}'),
            "youtube does not take option 'privacy_status'"),
        "text with images": (await insert_post(
            db, account_id=page, post_type="text", media_urls=[IMAGE] * 3),
            "a facebook text post takes no media, but it has 3"),
        "empty post_type": (await insert_post(db, account_id=page, post_type=""),
                            "no post_type; facebook takes one of: text, link, photo"),
        "zero-width text": (await insert_post(db, account_id=page, content="\u200b\u200d\ufeff"),
                            "needs text"),
        "loopback media": (await insert_post(
            db, account_id=page, post_type="photo", media_urls=["https://[::1]/a.jpg"]),
            "is a non-public address"),
    }
    valid = await insert_post(db, account_id=page, content="the valid one")

    calls = await run(database_url, store)

    for name, (post_id, reason) in cases.items():
        row = await fetch_post(db, post_id)
        shown = f"{name}: {row['status']} {row['last_error']!r}"
        assert row["status"] == "failed", shown
        assert reason in row["last_error"], shown
        assert row["attempts"] == 1, shown
        assert len(await attempts_for(db, post_id)) == 1, shown
    assert "media_urls" in (await fetch_post(db, cases["null media"][0]))["last_error"]
    assert (await fetch_post(db, valid))["status"] == "published"
    assert calls == Counter({"graph.rules.test": 1})  # the valid post only; YouTube never


class Crashing:
    """An adapter with a bug: it raises while reading the post, before or after sending."""

    platform = "facebook"

    def validate(self, post: ClaimedPost) -> str | None:
        return None

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        if post.content == "after sending":
            await context.begin_sending()
            raise TypeError("boom after")
        if post.content == "network":
            raise ConnectionResetError("reset before sending")
        return Outcome.published(str(post.options["missing"]), None)  # KeyError: a bug


async def test_an_exception_fails_before_sending_and_needs_review_after(
        database_url: str, db: asyncpg.Connection, store: Store) -> None:
    """Before "sending": permanent failed (adapter, type, field; one attempt, not five);
    after it: needs_review as before; an OSError before sending stays retrying."""
    page = await account(db, "facebook", "page-crash")
    before = await insert_post(db, account_id=page, content="before sending")
    after = await insert_post(db, account_id=page, content="after sending")
    network = await insert_post(db, account_id=page, content="network")

    await run(database_url, store, {"facebook": Crashing()})

    failed = await fetch_post(db, before)
    assert failed["status"] == "failed"
    assert failed["attempts"] == 1
    assert failed["last_error"].startswith(
        "internal error in the facebook adapter: KeyError reading platform_options.missing")
    assert "nothing was sent" in failed["last_error"]
    review = await fetch_post(db, after)
    assert review["status"] == "needs_review"
    assert "TypeError" in review["last_error"]
    assert "boom" not in review["last_error"]  # the type, never the message
    assert (await fetch_post(db, network))["status"] == "retrying"


@pytest.mark.parametrize("options", ['"private"', "[1, 2]", "null", "3"])
async def test_a_claim_with_odd_rows_claims_them_all(
        database_url: str, db: asyncpg.Connection, store: Store, options: str) -> None:
    """from_row never raises: the odd row and the good one come back from one claim."""
    page = await account(db, "facebook", "page-claim")
    odd = await insert_post(db, account_id=page, platform_options=options,
                            media_urls=sql("array[null, '']::text[]"), post_type="")
    good = await insert_post(db, account_id=page)

    posts = await store.claim("w", {"facebook": 10}, 60.0)

    assert {p.id for p in posts} == {odd, good}
    unread: dict[str, Any] = next(p.unread for p in posts if p.id == odd)
    assert "media_urls" in unread
