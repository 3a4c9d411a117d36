"""The Supabase transport against the real migrated database, through a PostgREST emulator.

supabase-py's rpc() is `POST {SUPABASE_URL}/rest/v1/rpc/{function}` with the named
parameters as one JSON object. respx hands each such request to `PostgrestEmulator`, which
does what PostgREST does with it: finds the function in pg_proc (exactly one, or 404/300),
requires the body's keys to be exactly its argument names (else 404 PGRST202, and the
mismatch is recorded so the test fails), converts the JSON with `json_to_record` into the
catalog's argument types, calls the function as service_role, and answers with the value
as JSON (204 for void). So a parameter renamed on either side, a type the JSON cannot
become, or a grant service_role lacks, fails here as it would in production.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
import respx
from postgrest.exceptions import APIError
from supabase import AsyncClientOptions, acreate_client

from helpers import fetch_post, insert_post, sql
from publisher.errors import StoreError
from publisher.settings import PLATFORMS
from publisher.store import Store
from publisher.store.contract import FUNCTIONS
from publisher.store.store import OutcomeRow
from publisher.store.supabase import SupabaseTransport

# supabase-py passes its default timeout to postgrest-py, which deprecates that argument.

SUPABASE_URL = "https://abcdefghijklmnop.supabase.co"
SERVICE_ROLE_KEY = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                    "eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UifQ."
                    "c2lnbmF0dXJlLW5vdC1jaGVja2Vk")
RPC = rf"^{SUPABASE_URL}/rest/v1/rpc/(?P<function>[a-z_0-9]+)$".replace(".", r"\.")


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message, "details": None,
                                        "hint": None})


@dataclass
class PostgrestEmulator:
    """Answers supabase-py rpc requests the way PostgREST would, from the real database."""

    conn: asyncpg.Connection
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def __call__(self, request: httpx.Request, function: str) -> httpx.Response:
        if request.headers.get("apikey") != SERVICE_ROLE_KEY or request.headers.get(
                "authorization") != f"Bearer {SERVICE_ROLE_KEY}":
            self.problems.append(f"{function}: request without the service role key")
            return _error(401, "PGRST301", "JWT missing")
        body = json.loads(request.content or b"{}")
        if not isinstance(body, dict):
            self.problems.append(f"{function}: body is not a JSON object: {body!r}")
            return _error(400, "PGRST102", "body must be an object")
        self.calls.append((function, body))
        procs = await self.conn.fetch(
            """
            select coalesce(p.proargnames[1:p.pronargs], '{}') as names,
                   array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t)
                     as types,
                   format_type(p.prorettype, null) as returns, p.proretset
              from pg_proc p
             where p.pronamespace = 'public'::regnamespace and p.proname = $1
            """, function)
        if len(procs) != 1:
            self.problems.append(f"{function}: {len(procs)} functions of that name")
            return (_error(404, "PGRST202", f"Could not find the function public.{function}")
                    if not procs else
                    _error(300, "PGRST203", f"Could not choose the best candidate function "
                                            f"between overloads of public.{function}"))
        [proc] = procs
        names, types = list(proc["names"]), list(proc["types"])
        if sorted(body) != sorted(names):
            self.problems.append(f"{function}: body keys {sorted(body)} but the function "
                                 f"takes {names}")
            return _error(404, "PGRST202", f"Could not find the function public.{function}("
                                           f"{', '.join(sorted(body))}) in the schema cache")
        if proc["proretset"]:
            self.problems.append(f"{function}: returns a set, which max-rows truncates")
        args = ", ".join(f'"{n}" := pgrst_args."{n}"' for n in names)
        columns = ", ".join(f'"{n}" {t}' for n, t in zip(names, types, strict=True))
        source = f"from json_to_record($1::json) as pgrst_args({columns})" if names else ""
        params = [json.dumps(body)] if names else []
        call = f"public.{function}({args})"
        try:
            async with self.conn.transaction():
                await self.conn.execute("set local role service_role")
                if proc["returns"] == "void":
                    await self.conn.execute(f"select {call} {source}", *params)
                    return httpx.Response(204)
                payload = await self.conn.fetchval(
                    f"select coalesce(json_agg(r.value) -> 0, 'null')::text "  # noqa: S608
                    f"from (select {call} as value {source}) r", *params)
        except asyncpg.PostgresError as exc:
            status = 403 if isinstance(exc, asyncpg.InsufficientPrivilegeError) else 400
            return _error(status, exc.sqlstate or "XX000", str(exc))
        return httpx.Response(200, content=payload.encode(),
                              headers={"content-type": "application/json; charset=utf-8"})


@pytest.fixture
async def postgrest(database_url: str) -> AsyncIterator[PostgrestEmulator]:
    """The emulator on its own connection; its problems fail the test at teardown."""
    conn = await asyncpg.connect(database_url, statement_cache_size=0)
    emulator = PostgrestEmulator(conn)
    try:
        yield emulator
    finally:
        await conn.close()
    assert emulator.problems == [], "requests PostgREST would reject"


@pytest.fixture
async def supabase_client(postgrest: PostgrestEmulator) -> AsyncIterator[Any]:
    """A bare supabase-py client whose rpc goes to the emulator (for malformed calls)."""
    async with respx.mock(assert_all_mocked=True, assert_all_called=False) as router, \
            httpx.AsyncClient() as http:
        router.post(url__regex=RPC).mock(side_effect=postgrest)
        yield await acreate_client(SUPABASE_URL, SERVICE_ROLE_KEY,
                                   options=AsyncClientOptions(httpx_client=http))


@pytest.fixture
async def supabase_store(postgrest: PostgrestEmulator) -> AsyncIterator[Store]:
    """Store over SupabaseTransport.connect (supabase-py's acreate_client, as production
    opens it); its rpc goes to the emulator, anything else fails the test."""
    async with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.post(url__regex=RPC).mock(side_effect=postgrest)
        store = Store(await SupabaseTransport.connect(SUPABASE_URL, SERVICE_ROLE_KEY))
        try:
            yield store
        finally:
            await store.close()


async def test_every_contract_function_through_supabase(
        supabase_store: Store, postgrest: PostgrestEmulator, db: asyncpg.Connection) -> None:
    """Each Store operation goes through supabase-py rpc to the real functions and works."""
    store = supabase_store
    expires = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
    account = await store.connect_account(
        platform="facebook", external_id="page-42", display_name="Bakery",
        user_id="0b6f8a4e-7d1c-4c5e-8f0a-5a1f4d2c9e11", access_token_encrypted="v1:k:access",
        refresh_token_encrypted=None, token_expires_at=expires)
    row = await db.fetchrow("select * from social_accounts where id = $1::uuid", account)
    assert (row["external_id"], row["token_expires_at"]) == ("page-42", expires)

    local = await insert_post(db, account_id=account, scheduled_at=None,
                              scheduled_local="2026-03-08 02:30",
                              scheduled_timezone="America/New_York")
    assert [i["id"] for i in await store.list_unresolved_schedules(10)] == [local]
    assert await store.apply_resolved_schedules(
        [{"id": local, "scheduled_at": "2026-03-08T07:30:00+00:00"}]) == 1
    assert (await fetch_post(db, local))["scheduled_at"] == datetime(2026, 3, 8, 7, 30,
                                                                     tzinfo=UTC)
    await db.execute("update created_content set scheduled_at = now() - interval '1 minute'")

    expired = await insert_post(db, scheduled_at=sql("now() - interval '2 days'"))
    stranger = await insert_post(db, platform="friendster")
    lost = await insert_post(db, priority=-1)
    counts = await store.prepare(24.0, PLATFORMS)
    assert (counts["expired"], counts["unknown_platform"]) == (1, 1)
    assert (await fetch_post(db, expired))["status"] == "expired"
    assert (await fetch_post(db, stranger))["status"] == "failed"

    due = await store.list_due(10)
    assert [item["id"] for item in due] == [local, lost]

    claimed = await store.claim("sb-worker", {"facebook": 10, "youtube": 5}, 120.0)
    assert [p.id for p in claimed] == [local, lost]
    first = claimed[0]
    assert first.account is not None
    assert (first.account.id, first.account.access_token_encrypted) == (account, "v1:k:access")
    assert first.scheduled_at is not None
    assert await store.mark_sending("sb-worker", [(first.id, first.attempt)]) == {local}

    await db.execute("update created_content set locked_by = 'someone-else' where id = $1", lost)
    result = await store.record("sb-worker", [
        OutcomeRow(id=local, attempt=first.attempt, status="published", outcome="published",
                   platform_post_id="42_1", platform_url="https://facebook.com/42_1",
                   detail={"attempt_ms": 812}, account_id=account),
        OutcomeRow(id=lost, attempt=1, status="published", outcome="published"),
    ])
    assert (result.applied, result.lost) == (1, (lost,))
    assert (await fetch_post(db, local))["platform_post_id"] == "42_1"
    assert await db.fetchval("select count(*) from publish_attempts where not applied") == 1

    await insert_post(db, account_id=account)
    [again] = await store.claim("sb-worker", {"facebook": 1}, 120.0)
    synced = await store.sync("sb-worker", [(again.id, again.attempt)], [])
    assert synced.marked == {again.id}

    locked, current = await store.lock_account_refresh(account, "sb-worker", 30.0)
    assert locked
    assert current is not None
    assert current.access_token_encrypted == "v1:k:access"
    assert (await store.lock_account_refresh(account, "other-worker", 30.0))[0] is False
    renewed = datetime(2027, 6, 1, tzinfo=UTC)
    assert await store.save_refreshed_tokens(
        account, "sb-worker", access_token_encrypted="v1:k:access2",
        refresh_token_encrypted="v1:k:refresh2", token_expires_at=renewed)
    row = await db.fetchrow("select * from social_accounts where id = $1::uuid", account)
    assert (row["access_token_encrypted"], row["token_expires_at"]) == ("v1:k:access2", renewed)
    assert row["refresh_locked_by"] is None

    review = await insert_post(db, content="unknown", status="needs_review", attempts=1,
                               sending_started_at=sql("now()"))
    [held] = await store.claim_for_review("sb-worker", list(PLATFORMS), limit=5, max_checks=3,
                                          every_seconds=60.0, lease_seconds=30.0)
    assert (held.id, held.attempt) == (review, 1)
    assert (await fetch_post(db, review))["status"] == "publishing"

    await store.pause_account(account, 60.0, "throttled")
    assert await db.fetchval("select paused_until > now() from social_accounts") is True
    await store.pause_platform("youtube", 60.0, "project quota used up")
    assert await db.fetchval("select paused_until > now() from platform_pauses "
                             "where platform = 'youtube'") is True

    started = datetime.now(UTC).replace(microsecond=0)
    run_id = await store.record_run("sb-worker", started, {"published": 1, "lost": 1})
    run = await db.fetchrow("select * from publisher_runs where id = $1", run_id)
    assert run["started_at"] == started
    assert json.loads(run["summary"]) == {"published": 1, "lost": 1}

    status = await store.status()
    assert status["last_run"]["id"] == run_id
    assert ("published", "facebook", 1) in {
        (p["status"], p["platform"], p["count"]) for p in status["posts"]}
    hour, day = (await store.kpis([1.0, 24.0]))["windows"]  # a double precision[] over rpc
    assert (hour["hours"], day["hours"], hour["published"]) == (1, 24, 1)
    alarms = await store.alarms(silent_minutes=10, overdue_minutes=15, review_hours=4,
                                failure_rate_percent=20, failure_min_posts=10)
    assert alarms["review"]["firing"] is False
    assert alarms["failure_rate"]["published"] == 1

    await insert_post(db, account_id=account)  # due: its account's token is sampled
    assert await store.sample_sealed_tokens(5) == ["v1:k:access2"]

    # tokens reseal: a page read with a product column named, a fenced write.
    await db.execute("alter table social_accounts add column access_token text")
    await db.execute("update social_accounts set access_token = 'plain' where id = $1::uuid",
                     account)
    page = await store.list_account_tokens(None, 10, access_column="access_token",
                                           refresh_column=None)
    assert [(a["id"], a["access"], a["plain_access"]) for a in page["accounts"]] == [
        (account, "v1:k:access2", "plain")]
    written = await store.reseal_account_tokens(
        [{"id": account, "access": "v1:k:access2", "refresh": "v1:k:refresh2",
          "new_access": "v1:k:access3", "clear_access": True,
          "plain_access_sha256": hashlib.sha256(b"plain").hexdigest()}],
        access_column="access_token", refresh_column=None)
    assert written == {"applied": 1, "changed": []}
    row = await db.fetchrow("select * from social_accounts where id = $1::uuid", account)
    assert (row["access_token_encrypted"], row["access_token"]) == ("v1:k:access3", None)

    # Review and recovery: ids as text, answers per id.
    await db.execute("update created_content set status = 'needs_review', "
                     "sending_started_at = now(), locked_by = null, lease_expires_at = null "
                     "where id = $1", review)
    listing = await store.list_review_posts(None, platform=None, limit=10)
    assert [p["id"] for p in listing["posts"]] == [review]
    marked = await store.mark_published(str(review), platform_post_id="42_9",
                                        platform_url=None, operator="ops", note=None)
    assert marked["changed"] == [{"id": review, "from": "needs_review", "to": "published"}]
    failed = await insert_post(db, status="failed", last_error="token expired")
    retried = await store.retry_failed_posts(reason="TOKEN", since=started, platform=None,
                                             dry_run=True, operator="ops")
    assert (retried["matched"], retried["ids"]) == (1, [failed])
    canceled = await store.cancel_posts([str(failed)], operator="ops", note="by hand")
    assert [c["to"] for c in canceled["changed"]] == ["canceled"]
    requeued = await store.requeue_posts([str(failed), "nope"], from_states=None,
                                         operator=None, note=None)
    assert ([c["id"] for c in requeued["changed"]], [r["id"] for r in requeued["refused"]]) == (
        [failed], ["nope"])

    # Notifications: the outbox's events (the outcomes above wrote them), leased, finished.
    events = await store.claim_events("sb-worker", 50, 30.0)
    assert {"post.published", "post.expired", "post.failed"} <= {e["type"] for e in events}
    finished = await store.finish_events(
        [{"id": e["id"], "attempt": e["attempt"], "error": None} for e in events])
    assert finished == {"delivered": len(events), "retrying": 0, "given_up": 0}

    # Preflight: a post due within a day, its account taken for a token check, what was
    # found written onto the post with its event.
    ahead = await insert_post(db, account_id=account, content=" ",
                              scheduled_at=sql("now() + interval '20 hours'"))
    [candidate] = await store.preflight_candidates(24.0, 10, ids=None, changed_only=True)
    assert candidate["id"] == ahead
    [taken] = await store.preflight_accounts(24.0, 5, every_seconds=3600.0, account_ids=None)
    assert (taken["id"], taken["posts"]) == (account, 1)
    recorded = await store.record_preflight(
        [{"id": ahead, "updated_at": candidate["updated_at"], "problem": "needs text"}],
        [{"account_id": account, "problem": None}], hours=24.0)
    assert (recorded["posts"], recorded["events"]) == (1, 1)

    assert {name for name, _ in postgrest.calls} == set(FUNCTIONS)
    for name, body in postgrest.calls:
        assert list(body) == [p for p, _ in FUNCTIONS[name].params]


async def test_emulator_rejects_a_misnamed_parameter(supabase_client: Any,
                                                     postgrest: PostgrestEmulator) -> None:
    """A body whose keys are not the function's arguments is refused as PostgREST would."""
    with pytest.raises(APIError) as caught:
        await supabase_client.rpc("claim_due_posts", {"p_worker": "w"}).execute()
    assert caught.value.code == "PGRST202"
    assert postgrest.problems == [
        "claim_due_posts: body keys ['p_worker'] but the function takes "
        "['p_worker', 'p_limits', 'p_lease_seconds']"]
    postgrest.problems.clear()  # expected here; any other problem fails the test


async def test_database_error_becomes_store_error(supabase_store: Store,
                                                  db: asyncpg.Connection) -> None:
    """A function that fails in the database raises StoreError naming the function."""
    post = await insert_post(db)
    [claimed] = await supabase_store.claim("w", {"facebook": 1}, 60)
    with pytest.raises(StoreError, match="record_outcomes failed through Supabase"):
        await supabase_store.record("w", [OutcomeRow(
            id=post, attempt=claimed.attempt, status="not-a-status", outcome="published")])
    assert (await fetch_post(db, post))["status"] == "publishing"


async def test_connect_sends_the_key_and_accepts_a_null_void_result() -> None:
    """connect() sends both key headers; a void function's 200 `null` works as 204 does."""
    account = "0b6f8a4e-7d1c-4c5e-8f0a-5a1f4d2c9e11"
    async with respx.mock(assert_all_mocked=True) as router:
        route = router.post(f"{SUPABASE_URL}/rest/v1/rpc/pause_account").mock(
            return_value=httpx.Response(200, json=None))
        store = Store(await SupabaseTransport.connect(SUPABASE_URL, SERVICE_ROLE_KEY))
        await store.pause_account(account, 30, "throttled")
        await store.close()
    request = route.calls.last.request
    assert request.headers["apikey"] == SERVICE_ROLE_KEY
    assert request.headers["authorization"] == f"Bearer {SERVICE_ROLE_KEY}"
    assert json.loads(request.content) == {
        "p_account_id": account, "p_seconds": 30, "p_reason": "throttled"}


async def test_unreachable_supabase_is_a_store_error() -> None:
    """A connection failure surfaces as StoreError naming the function, not a raw error."""
    async with respx.mock(assert_all_mocked=True) as router:
        router.post(url__regex=RPC).mock(side_effect=httpx.ConnectError("refused"))
        store = Store(await SupabaseTransport.connect(SUPABASE_URL, SERVICE_ROLE_KEY))
        with pytest.raises(StoreError, match="publisher_status"):
            await store.status()
