"""The pre-claim key check: a valid but wrong ENCRYPTION_KEY stops the run before it
touches any post (exit 2), instead of failing every due post for good."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from helpers import insert_account, insert_post, sql
from publisher.app import run_once, work_forever
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import ConfigError
from publisher.keycheck import assess, check_key
from publisher.settings import Settings
from publisher.store import Store

KEY, OLD_KEY, OTHER_KEY = generate_key(), generate_key(), generate_key()
CIPHER = TokenCipher(parse_key(KEY))
ROTATED = TokenCipher(parse_key(KEY), [parse_key(OLD_KEY)])
OLD = TokenCipher(parse_key(OLD_KEY))
OTHER = TokenCipher(parse_key(OTHER_KEY))
TOKEN = "EAAB-page-token-never-shown"

# Every column a run could change on a post, compared before and after.
POST_COLUMNS = ("id, status, attempts, last_error, locked_by, lease_expires_at, not_before, "
                "sending_started_at, scheduled_at, updated_at, god_mode_metadata, "
                "publish_state, platform_post_id")


async def _posts(db: asyncpg.Connection) -> list[dict[str, Any]]:
    query = f"select {POST_COLUMNS} from created_content order by id"  # noqa: S608 - constant
    return [dict(r) for r in await db.fetch(query)]


async def _seed_wrong_key_queue(db: asyncpg.Connection) -> None:
    """Accounts sealed with a key the run does not hold, and posts in every state a run's
    housekeeping or claim would change: due, retrying, 30 hours late (would expire), and
    publishing with a lapsed lease (would be released)."""
    for n in range(3):
        account = await insert_account(db, access_token_encrypted=OTHER.encrypt(f"{TOKEN}{n}"))
        await insert_post(db, account_id=account)
        await insert_post(db, account_id=account, status="retrying", attempts=1,
                          last_error="HTTP 503 from facebook")
    account = await insert_account(db, access_token_encrypted=OTHER.encrypt(TOKEN))
    await insert_post(db, account_id=account, scheduled_at=sql("now() - interval '30 hours'"))
    await insert_post(db, account_id=account, status="publishing", attempts=1,
                      locked_by="dead-worker", lease_expires_at=sql("now() - interval '1 hour'"))


def _settings(database_url: str, key: str = KEY, previous: tuple[str, ...] = ()) -> Settings:
    return Settings(database_url=database_url, encryption_key=key,
                    encryption_keys_previous=previous, worker_id="key-check-test")


async def _due_account(db: asyncpg.Connection, token: str | None, **columns: Any) -> str:
    account = await insert_account(db, access_token_encrypted=token, **columns)
    await insert_post(db, account_id=account)
    return account


async def test_wrong_key_stops_the_run_and_leaves_every_post_as_it_was(
        database_url: str, db: asyncpg.Connection) -> None:
    """A key that opens none of the due accounts' tokens: ConfigError naming both settings
    and the key ids on each side; no post, attempt or run row is written."""
    await _seed_wrong_key_queue(db)
    before = await _posts(db)
    with pytest.raises(ConfigError) as caught:
        await run_once(_settings(database_url))
    message = str(caught.value)
    assert "ENCRYPTION_KEY" in message
    assert "ENCRYPTION_KEYS_PREVIOUS" in message
    assert OTHER.current_key_id in message  # what the tokens name
    assert CIPHER.current_key_id in message  # what we hold
    for secret in (KEY, OTHER_KEY, TOKEN):
        assert secret not in message
    assert await _posts(db) == before
    assert await db.fetchval("select count(*) from publish_attempts") == 0
    assert await db.fetchval("select count(*) from publisher_runs") == 0


async def test_wrong_key_stops_the_worker_at_start(database_url: str,
                                                   db: asyncpg.Connection) -> None:
    """`publisher worker` checks at start too: it raises instead of looping."""
    await _seed_wrong_key_queue(db)
    before = await _posts(db)
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        await asyncio.wait_for(work_forever(_settings(database_url), asyncio.Event()), 30)
    assert await _posts(db) == before


async def test_right_key_passes(store: Store, db: asyncpg.Connection) -> None:
    """Tokens sealed with ENCRYPTION_KEY open: the check passes."""
    for n in range(2):
        await _due_account(db, CIPHER.encrypt(f"{TOKEN}{n}"))
    check = await check_key(store, CIPHER)
    assert (check.sampled, check.opened) == (2, 2)


async def test_previous_key_passes(store: Store, db: asyncpg.Connection) -> None:
    """Mid-rotation: tokens sealed with the old key open through ENCRYPTION_KEYS_PREVIOUS,
    and without it the same tokens stop the run."""
    await _due_account(db, OLD.encrypt(TOKEN))
    assert (await check_key(store, ROTATED)).opened == 1
    with pytest.raises(ConfigError, match=OLD.current_key_id):
        await check_key(store, CIPHER)


async def test_one_good_token_beside_garbage_passes(store: Store,
                                                    db: asyncpg.Connection) -> None:
    """Garbage tokens are per-account failures; one token that opens is enough."""
    await _due_account(db, "not-a-sealed-token")
    await _due_account(db, "v1:0badc0de:AAAA")  # our prefix, too short to be sealed data
    await _due_account(db, CIPHER.encrypt(TOKEN))
    check = await check_key(store, CIPHER)
    assert (check.sampled, check.opened, check.malformed) == (3, 1, 2)


async def test_only_garbage_passes(store: Store, db: asyncpg.Connection) -> None:
    """Tokens not in our format say nothing about the key: the run goes on (and fails those
    posts with their reasons)."""
    await _due_account(db, "plain-text-token")
    await _due_account(db, "v2:00000000:AAAA")
    check = await check_key(store, CIPHER)
    assert (check.sampled, check.malformed) == (2, 2)
    assert not check.wrong_key


async def test_one_good_account_among_many_foreign_ones_is_sampled(
        store: Store, db: asyncpg.Connection) -> None:
    """The sample is spread over key ids, so the one account sealed with our key is tried
    even when many more name another key: the check passes."""
    for n in range(30):
        await _due_account(db, OTHER.encrypt(f"{TOKEN}{n}"))
    await _due_account(db, CIPHER.encrypt(TOKEN))
    tokens = await store.sample_sealed_tokens(12)
    assert len(tokens) == 4  # three for the foreign key id, one for ours
    check = await check_key(store, CIPHER)
    assert check.opened == 1
    assert check.unknown_ids == {OTHER.current_key_id: 3}


async def test_tampered_token_under_our_key_is_refused(store: Store,
                                                       db: asyncpg.Connection) -> None:
    """A token naming our key id that fails authentication counts against the key."""
    sealed = CIPHER.encrypt(TOKEN)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    await _due_account(db, tampered)
    with pytest.raises(ConfigError, match="fail authentication") as caught:
        await check_key(store, CIPHER)
    assert CIPHER.current_key_id in str(caught.value)


@pytest.mark.parametrize("case", ["no accounts", "nothing due", "account not active",
                                  "no token"])
async def test_nothing_to_judge_passes(case: str, store: Store, db: asyncpg.Connection) -> None:
    """Wrong-key tokens that no due post needs are not sampled: nothing to check."""
    foreign = OTHER.encrypt(TOKEN)
    if case == "nothing due":
        account = await insert_account(db, access_token_encrypted=foreign)
        await insert_post(db, account_id=account, scheduled_at=sql("now() + interval '1 day'"))
        await insert_post(db, account_id=account, status="published")
    elif case == "account not active":
        await _due_account(db, foreign, status="needs_reauth")
    elif case == "no token":
        await _due_account(db, None)
        await _due_account(db, "")
    else:
        await insert_post(db)  # a due post with no account
    assert await store.sample_sealed_tokens(12) == []
    check = await check_key(store, CIPHER)
    assert (check.sampled, check.wrong_key) == (0, False)


def test_assess_counts_without_keeping_tokens() -> None:
    """assess sorts tokens into opened / unknown key / refused / malformed; its result holds
    key ids and counts only."""
    tokens = [CIPHER.encrypt(TOKEN), OTHER.encrypt(TOKEN), OTHER.encrypt(TOKEN), "garbage"]
    check = assess(CIPHER, tokens)
    assert (check.sampled, check.opened, check.malformed) == (4, 1, 1)
    assert check.unknown_ids == {OTHER.current_key_id: 2}
    assert not check.wrong_key
    assert TOKEN not in repr(check)
    assert all(t not in repr(check) for t in tokens)


async def test_cli_run_with_wrong_key_exits_2(database_url: str, db: asyncpg.Connection) -> None:
    """`python -m publisher run` with a wrong key: exit 2, one line naming the settings, no
    traceback, no key or token printed, every post as it was."""
    await _seed_wrong_key_queue(db)
    before = await _posts(db)
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url,
           "ENCRYPTION_KEY": KEY, "ENCRYPTION_KEYS_PREVIOUS": OLD_KEY}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "publisher", "run"],
                                   env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "ENCRYPTION_KEY" in done.stderr
    assert OTHER.current_key_id in done.stderr
    assert OLD.current_key_id in done.stderr  # the previous key's id is listed as held
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    for secret in (KEY, OLD_KEY, OTHER_KEY, TOKEN):
        assert secret not in done.stdout + done.stderr
    assert await _posts(db) == before
