"""`publisher tokens reseal` on real Postgres: tokens sealed with a previous key are sealed
again with the current one, plaintext tokens of the product's column are imported, every
write is fenced by compare-and-set, and nothing printed holds a token."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from helpers import insert_account
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.errors import ConfigError
from publisher.reseal import ResealReport, reseal
from publisher.store import Store
from publisher.store.postgres import PostgresTransport

OLD_TEXT, NEW_TEXT, OTHER_TEXT = generate_key(), generate_key(), generate_key()
OLD, NEW, OTHER = parse_key(OLD_TEXT), parse_key(NEW_TEXT), parse_key(OTHER_TEXT)
ROTATED = TokenCipher(NEW, previous=[OLD])   # ENCRYPTION_KEY new, the old one previous

# Every token used here: none of them may appear in any output.
SECRETS = [f"EAAB-secret-access-{n}-5f2c" for n in range(6)] + [
    f"AQV-secret-refresh-{n}-9d1e" for n in range(6)]
ACCESS, REFRESH = SECRETS[:6], SECRETS[6:]


def _sealed(key: bytes, token: str) -> str:
    return TokenCipher(key).encrypt(token)


async def _tokens(db: asyncpg.Connection, *extra: str) -> dict[str, tuple[Any, ...]]:
    """account id -> (access_token_encrypted, refresh_token_encrypted, *extra columns)."""
    columns = ", ".join(["access_token_encrypted", "refresh_token_encrypted", *extra])
    rows = await db.fetch(f"select id::text, {columns} from social_accounts")  # noqa: S608
    return {r["id"]: tuple(r[1:]) for r in rows}


def _opens_with_new_key_alone(stored: str | None, token: str) -> bool:
    return stored is not None and TokenCipher(NEW).decrypt(stored) == token


def _assert_no_secret(text: str) -> None:
    for secret in (*SECRETS, OLD_TEXT, NEW_TEXT, OTHER_TEXT):
        assert secret not in text


@pytest.fixture
async def plaintext_columns(db: asyncpg.Connection) -> None:
    """The product's own plaintext token columns on social_accounts."""
    await db.execute("alter table social_accounts add column access_token text, "
                     "add column refresh_token text, add column token_count integer")


class _InterruptedStore(Store):
    """Dies after its first committed write, as a killed process would."""

    writes = 0

    async def reseal_account_tokens(self, items: Sequence[Mapping[str, Any]], *,
                                    access_column: str | None,
                                    refresh_column: str | None) -> dict[str, Any]:
        await super().reseal_account_tokens(items, access_column=access_column,
                                            refresh_column=refresh_column)
        self.writes += 1
        raise RuntimeError("killed after the first batch")


class _RacedStore(Store):
    """Runs `meanwhile` (another writer) between reading a page and writing it back."""

    def __init__(self, transport: PostgresTransport, meanwhile: Any) -> None:
        super().__init__(transport)
        self._meanwhile = meanwhile

    async def list_account_tokens(self, after: str | None, limit: int, *,
                                  access_column: str | None,
                                  refresh_column: str | None) -> dict[str, Any]:
        page = await super().list_account_tokens(after, limit, access_column=access_column,
                                                 refresh_column=refresh_column)
        if page["accounts"]:
            await self._meanwhile()
        return page


async def test_rotation_reseals_old_tokens_and_a_second_run_changes_nothing(
        db: asyncpg.Connection, store: Store) -> None:
    """Tokens under the old key open under the new key alone afterwards; tokens already
    under the new key are untouched; a second run changes nothing."""
    both = await insert_account(db, access_token_encrypted=_sealed(OLD, ACCESS[0]),
                                refresh_token_encrypted=_sealed(OLD, REFRESH[0]))
    current = await insert_account(db, access_token_encrypted=_sealed(NEW, ACCESS[1]))
    old = await insert_account(db, platform="youtube",
                               access_token_encrypted=_sealed(OLD, ACCESS[2]))
    await insert_account(db, platform="linkedin")  # no token: not counted
    before = await _tokens(db)

    report = await reseal(store, ROTATED, batch=2)

    assert (report.resealed, report.current, report.imported) == (3, 1, 0)
    assert (report.unopenable, report.skipped, report.exit_code) == ([], [], 0)
    after = await _tokens(db)
    assert _opens_with_new_key_alone(after[both][0], ACCESS[0])
    assert _opens_with_new_key_alone(after[both][1], REFRESH[0])
    assert _opens_with_new_key_alone(after[old][0], ACCESS[2])
    assert after[current] == before[current]

    again = await reseal(store, ROTATED, batch=2)
    assert (again.resealed, again.current, again.exit_code) == (0, 4, 0)
    assert await _tokens(db) == after


async def test_dry_run_changes_nothing(db: asyncpg.Connection, store: Store) -> None:
    """--dry-run counts what it would do and writes nothing."""
    await insert_account(db, access_token_encrypted=_sealed(OLD, ACCESS[0]),
                         refresh_token_encrypted=_sealed(NEW, REFRESH[0]))
    before = await _tokens(db)

    report = await reseal(store, ROTATED, dry_run=True)

    assert (report.resealed, report.current) == (1, 1)
    assert await _tokens(db) == before
    lines = report.lines()
    assert lines[0].startswith("tokens: 1 would be resealed, 0 would be imported, "
                               "1 already current, 0 could not open, 0 skipped")
    assert lines[-1] == "dry run: nothing was written"


async def test_a_token_that_cannot_be_opened_is_counted_and_named(
        db: asyncpg.Connection, store: Store) -> None:
    """A token under a key the process lacks, or not in our format at all, is left as it is
    and named by account, platform and which token; the run still reseals the others."""
    unknown = await insert_account(db, platform="linkedin",
                                   access_token_encrypted=_sealed(OTHER, ACCESS[0]))
    plain = await insert_account(db, platform="instagram",
                                 refresh_token_encrypted=REFRESH[1],
                                 access_token_encrypted=_sealed(OLD, ACCESS[1]))
    before = await _tokens(db)

    report = await reseal(store, ROTATED)

    assert (report.resealed, report.exit_code) == (1, 1)
    assert sorted(report.unopenable) == sorted([
        f"account {unknown} (linkedin), access token: stored token was sealed with key "
        f"{TokenCipher(OTHER).current_key_id}, which is neither ENCRYPTION_KEY nor in "
        "ENCRYPTION_KEYS_PREVIOUS",
        f"account {plain} (instagram), refresh token: stored token is not in the v1 "
        "encrypted format"])
    after = await _tokens(db)
    assert after[unknown] == before[unknown]
    assert after[plain][1] == REFRESH[1]
    assert _opens_with_new_key_alone(after[plain][0], ACCESS[1])
    _assert_no_secret("\n".join(report.lines()))


async def test_an_interrupted_run_picks_up_where_it_stopped(
        db: asyncpg.Connection, database_url: str, store: Store) -> None:
    """Each batch is committed on its own: after a run dies, what it wrote stays written,
    and the next run reseals only the rest."""
    accounts = sorted([await insert_account(db, access_token_encrypted=_sealed(OLD, t))
                       for t in ACCESS[:3]])
    dying = _InterruptedStore(await PostgresTransport.connect(database_url, max_size=1))
    try:
        with pytest.raises(RuntimeError, match="killed"):
            await reseal(dying, ROTATED, batch=1)
    finally:
        await dying.close()
    assert dying.writes == 1
    stored = await _tokens(db)
    key_ids = [stored[a][0].split(":")[1] for a in accounts]
    assert key_ids == [ROTATED.current_key_id] + [TokenCipher(OLD).current_key_id] * 2

    report = await reseal(store, ROTATED, batch=1)
    assert (report.resealed, report.current, report.exit_code) == (2, 1, 0)
    assert all(stored_token is not None and TokenCipher(NEW).decrypt(stored_token)
               for stored_token, _ in (await _tokens(db)).values())


@pytest.mark.usefixtures("plaintext_columns")
@pytest.mark.parametrize("clear", [False, True], ids=["keep-plaintext", "clear-plaintext"])
async def test_import_from_a_plaintext_column(db: asyncpg.Connection, store: Store,
                                              clear: bool) -> None:
    """Plaintext tokens of the named columns are sealed where ours are empty; a sealed
    token equal to the plaintext counts as current; a different one is skipped and both are
    kept. With clear, each plaintext value now held sealed is nulled."""
    fresh = await insert_account(db, access_token=ACCESS[0], refresh_token=REFRESH[0])
    same = await insert_account(db, access_token=ACCESS[1],
                                access_token_encrypted=_sealed(OLD, ACCESS[1]))
    other = await insert_account(db, platform="youtube", access_token=ACCESS[2],
                                 access_token_encrypted=_sealed(NEW, ACCESS[3]))
    before = await _tokens(db, "access_token", "refresh_token")

    report = await reseal(store, ROTATED, access_column="access_token",
                          refresh_column="refresh_token", clear_plaintext=clear)

    assert (report.imported, report.resealed, report.current) == (2, 1, 0)
    assert report.skipped == [
        f"account {other} (youtube), access token: access_token holds a different token "
        "than the sealed one; neither was changed"]
    assert report.cleared == (3 if clear else 0)
    after = await _tokens(db, "access_token", "refresh_token")
    assert _opens_with_new_key_alone(after[fresh][0], ACCESS[0])
    assert _opens_with_new_key_alone(after[fresh][1], REFRESH[0])
    assert _opens_with_new_key_alone(after[same][0], ACCESS[1])
    assert after[other] == before[other]
    if clear:
        assert (after[fresh][2:], after[same][2]) == ((None, None), None)
    else:
        assert (after[fresh][2:], after[same][2]) == ((ACCESS[0], REFRESH[0]), ACCESS[1])
    _assert_no_secret("\n".join(report.lines()))

    again = await reseal(store, ROTATED, access_column="access_token",
                         refresh_column="refresh_token", clear_plaintext=clear)
    assert (again.imported, again.resealed, len(again.skipped)) == (0, 0, 1)
    assert again.current == 3
    assert await _tokens(db, "access_token", "refresh_token") == after


@pytest.mark.usefixtures("plaintext_columns")
@pytest.mark.parametrize("column", [
    "no_such_column",                                   # does not exist
    "token_count",                                      # not text
    "token_expires_at",                                 # ours, and not text
    "access_token_encrypted",                           # ours
    "status",                                           # ours, text
    'access_token"; drop table public.created_content; --',
])
async def test_the_import_column_must_be_a_text_column_of_the_product(
        db: asyncpg.Connection, store: Store, column: str) -> None:
    """A name that is not a text column of social_accounts (or is one of ours) is refused
    before anything is read or written, and never runs as SQL."""
    await insert_account(db, access_token=ACCESS[0], status="active",
                         access_token_encrypted=_sealed(OLD, ACCESS[1]))
    before = await _tokens(db, "access_token")

    with pytest.raises(ConfigError, match="social_accounts has no text column"):
        await reseal(store, ROTATED, access_column=column, clear_plaintext=True)

    assert await _tokens(db, "access_token") == before
    assert await db.fetchval("select to_regclass('public.created_content') is not null")


@pytest.mark.parametrize(("options", "message"), [
    ({"clear_plaintext": True}, "--clear-plaintext needs"),
    ({"access_column": "tok", "refresh_column": "tok"}, "must name different columns"),
    ({"batch": 0}, "--batch must be at least 1"),
])
async def test_options_that_cannot_work_are_refused(store: Store, options: dict[str, Any],
                                                    message: str) -> None:
    """Clearing with nothing to import, one column for both tokens, an empty batch."""
    with pytest.raises(ConfigError, match=message):
        await reseal(store, ROTATED, **options)


async def test_a_token_refreshed_between_read_and_write_is_not_overwritten(
        db: asyncpg.Connection, database_url: str) -> None:
    """Compare-and-set: a worker stores a refreshed token after the page was read; the
    reseal of that account is not applied (skipped, named), the other account's is."""
    raced = await insert_account(db, access_token_encrypted=_sealed(OLD, ACCESS[0]),
                                 refresh_token_encrypted=_sealed(OLD, REFRESH[0]))
    calm = await insert_account(db, access_token_encrypted=_sealed(OLD, ACCESS[1]))
    refreshed = _sealed(NEW, ACCESS[4])

    async def worker_refreshes() -> None:
        await db.execute("update social_accounts set access_token_encrypted = $1 "
                         "where id = $2::uuid", refreshed, raced)

    store = _RacedStore(await PostgresTransport.connect(database_url, max_size=1),
                        worker_refreshes)
    try:
        report = await reseal(store, ROTATED)
    finally:
        await store.close()

    assert report.resealed == 1
    assert report.skipped == [
        f"account {raced} (facebook), {slot} token: changed while this ran, left as it is "
        "(run again)" for slot in ("access", "refresh")]
    after = await _tokens(db)
    assert after[raced][0] == refreshed
    assert TokenCipher(OLD).decrypt(after[raced][1]) == REFRESH[0]
    assert _opens_with_new_key_alone(after[calm][0], ACCESS[1])


@pytest.mark.usefixtures("plaintext_columns")
async def test_a_plaintext_written_between_read_and_write_is_not_cleared(
        db: asyncpg.Connection, database_url: str) -> None:
    """Compare-and-set on the plaintext column too: the product stores a new plaintext
    token after the page was read; neither our column nor the new plaintext is changed."""
    account = await insert_account(db, access_token=ACCESS[0])

    async def product_reconnects() -> None:
        await db.execute("update social_accounts set access_token = $1 where id = $2::uuid",
                         ACCESS[5], account)

    store = _RacedStore(await PostgresTransport.connect(database_url, max_size=1),
                        product_reconnects)
    try:
        report = await reseal(store, ROTATED, access_column="access_token",
                              clear_plaintext=True)
    finally:
        await store.close()

    assert (report.imported, report.cleared, len(report.skipped)) == (0, 0, 1)
    assert (await _tokens(db, "access_token"))[account] == (None, None, ACCESS[5])


def test_the_report_never_shows_a_token_in_a_repr() -> None:
    """Rows and plans keep their tokens out of repr (a traceback or a debugger shows it)."""
    from publisher.reseal import StoredTokens, plan_slot

    row = StoredTokens.from_row({"id": "a", "platform": "facebook", "access": ACCESS[0],
                                 "refresh": REFRESH[0], "plain_access": ACCESS[1],
                                 "plain_refresh": None})
    plan = plan_slot(None, ACCESS[2], ROTATED, column="access_token", clear=True)
    assert plan.outcome == "imported"
    _assert_no_secret(repr(row) + repr(plan) + repr(ResealReport(current_key_id="x")))


@pytest.mark.usefixtures("plaintext_columns")
async def test_the_cli_prints_counts_and_never_a_token(
        db: asyncpg.Connection, database_url: str, tmp_path: Path) -> None:
    """`python -m publisher tokens reseal`, with DEBUG logs: the counts on stdout, the
    accounts it could not open named, exit 1 while one remains, and no token or key in
    anything it printed."""
    await insert_account(db, access_token_encrypted=_sealed(OLD, ACCESS[0]),
                         refresh_token_encrypted=_sealed(OLD, REFRESH[0]))
    await insert_account(db, access_token=ACCESS[1], refresh_token=REFRESH[1])
    broken = await insert_account(db, platform="linkedin",
                                  access_token_encrypted=_sealed(OTHER, ACCESS[2]))
    env = {"PATH": os.environ.get("PATH", ""), "PUBLISHER_DATA_DIR": str(tmp_path),
           "DATABASE_URL": database_url, "ENCRYPTION_KEY": NEW_TEXT,
           "ENCRYPTION_KEYS_PREVIOUS": OLD_TEXT, "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "text"}

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "publisher", "tokens", "reseal", *args, env=env,
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = await run("--import-plaintext-column", "access_token",
                               "--import-refresh-column", "refresh_token",
                               "--clear-plaintext", "--batch", "2")
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0] == (f"tokens: 2 resealed, 2 imported, 0 already current, 1 could not "
                        f"open, 0 skipped; 2 plaintext value(s) cleared (current key "
                        f"{ROTATED.current_key_id})")
    assert lines[1].startswith(f"could not open: account {broken} (linkedin), access token")
    assert "reseal: 2 account(s) read" in err
    _assert_no_secret(out + err)

    code, out, err = await run("--dry-run")
    assert code == 1, err
    assert out.startswith("tokens: 0 would be resealed, 0 would be imported, 4 already "
                          "current, 1 could not open")
    _assert_no_secret(out + err)
