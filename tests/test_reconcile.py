"""Posts whose outcome is unknown are settled by asking the platform, never resent blindly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from helpers import insert_account, insert_post, sql
from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.settings import Settings, simulator_endpoints
from publisher.simulator.server import run_in_process
from publisher.simulator.state import SimConfig

KEY = generate_key()
CIPHER = TokenCipher(parse_key(KEY))


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    async with run_in_process(SimConfig(latency=0.0)) as url:
        yield url


def settings(database_url: str, simulator_url: str) -> Settings:
    return Settings(database_url=database_url, simulator_url=simulator_url, encryption_key=KEY,
                    endpoints=simulator_endpoints(simulator_url))


async def accepted(url: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient() as client:
        posts: list[dict[str, object]] = (await client.get(f"{url}/_sim/posts")).json()
        return posts


async def unknown_post(db: asyncpg.Connection, account: str, text: str) -> int:
    """A post whose publish call was sent and never answered."""
    return await insert_post(db, account_id=account, content=text, status="needs_review",
                             attempts=1, sending_started_at=sql("now() - interval '1 minute'"),
                             last_error="outcome unknown: ReadTimeout after sending")


async def test_post_found_live_becomes_published(database_url: str, db: asyncpg.Connection,
                                                 simulator: str) -> None:
    """The page shows the post: it is marked published with its id, and not sent again."""
    account = await insert_account(db, external_id="page-r",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    async with httpx.AsyncClient() as client:  # it went out; our answer was lost
        live = (await client.post(f"{simulator}/v25.0/page-r/feed", data={"message": "hello"},
                                  headers={"Authorization": "Bearer tok"})).json()["id"]
    post = await unknown_post(db, account, "hello")
    await run_once(settings(database_url, simulator))
    row = await db.fetchrow("select status, platform_post_id, review_checks "
                            "from created_content where id = $1", post)
    assert (row["status"], row["platform_post_id"], row["review_checks"]) == (
        "published", live, 1)
    assert len(await accepted(simulator)) == 1


async def test_post_not_found_stays_in_review_and_is_not_sent(
        database_url: str, db: asyncpg.Connection, simulator: str) -> None:
    """Absent from the page proves nothing: it stays needs_review, nothing is sent."""
    account = await insert_account(db, external_id="page-r2",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    post = await unknown_post(db, account, "maybe")
    await run_once(settings(database_url, simulator))
    await run_once(settings(database_url, simulator))  # too soon to ask again
    row = await db.fetchrow("select status, review_checks, last_error "
                            "from created_content where id = $1", post)
    assert (row["status"], row["review_checks"]) == ("needs_review", 1)
    assert "not found among the page's posts" in row["last_error"]
    assert await accepted(simulator) == []


async def test_worker_died_after_sending_is_reviewed_not_requeued(
        database_url: str, db: asyncpg.Connection, simulator: str) -> None:
    """An expired lease with sending stamped goes to review, and the check finds it live."""
    account = await insert_account(db, external_id="page-r3",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    async with httpx.AsyncClient() as client:
        await client.post(f"{simulator}/v25.0/page-r3/feed", data={"message": "crashed"},
                          headers={"Authorization": "Bearer tok"})
    post = await insert_post(db, account_id=account, content="crashed", status="publishing",
                             attempts=1, locked_by="dead-worker",
                             lease_expires_at=sql("now() - interval '1 second'"),
                             sending_started_at=sql("now() - interval '2 minutes'"))
    await run_once(settings(database_url, simulator))
    assert await db.fetchval("select status from created_content where id = $1",
                             post) == "published"
    assert len(await accepted(simulator)) == 1


async def test_platform_that_cannot_tell_leaves_it_to_a_person(
        database_url: str, db: asyncpg.Connection, simulator: str) -> None:
    """Without a way to check, the post stays needs_review with a reason saying so."""
    account = await insert_account(db, platform="linkedin", external_id="urn:li:person:9",
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    post = await insert_post(db, platform="linkedin", account_id=account, content="li",
                             status="needs_review", attempts=1,
                             sending_started_at=sql("now() - interval '1 minute'"))
    await run_once(settings(database_url, simulator))
    row = await db.fetchrow("select status, last_error from created_content where id = $1",
                            post)
    assert row["status"] == "needs_review"
    assert "check" in row["last_error"]


async def ig_container(simulator: str, user: str, caption: str, *, publish: bool) -> str:
    async with httpx.AsyncClient() as client:
        headers = {"Authorization": "Bearer tok"}
        created = await client.post(f"{simulator}/v25.0/{user}/media", headers=headers, data={
            "image_url": "https://media.example.com/a.jpg", "caption": caption})
        container = str(created.json()["id"])
        if publish:
            await client.post(f"{simulator}/v25.0/{user}/media_publish", headers=headers,
                              data={"creation_id": container})
        return container


@pytest.mark.parametrize(("published_before", "sim_posts"), [(True, 1), (False, 1)])
async def test_instagram_container_settles_the_question(
        database_url: str, db: asyncpg.Connection, simulator: str, published_before: bool,
        sim_posts: int) -> None:
    """A PUBLISHED container counts as published; a FINISHED one is published exactly once."""
    user = "17840000000001"
    account = await insert_account(db, platform="instagram", external_id=user,
                                   access_token_encrypted=CIPHER.encrypt("tok"))
    container = await ig_container(simulator, user, "sunset", publish=published_before)
    post = await insert_post(
        db, platform="instagram", post_type="image", account_id=account, content="sunset",
        media_urls=["https://media.example.com/a.jpg"], status="needs_review", attempts=1,
        sending_started_at=sql("now() - interval '1 minute'"),
        publish_state=f'{{"container_id": "{container}", "publish_tried": true}}')
    await run_once(settings(database_url, simulator))
    assert await db.fetchval("select status from created_content where id = $1",
                             post) == "published"
    assert len(await accepted(simulator)) == sim_posts
