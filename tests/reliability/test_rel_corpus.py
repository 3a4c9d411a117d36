"""The bad-input corpus: each malformed post, account, token, schedule or platform answer ends
in one exact status with a reason the user can act on.

Two tables. CASES run together in one run against a scripted platform (an httpx
MockTransport answering per page, so each case gets exactly the answer it names);
SIM_FAULTS run one at a time against the simulator answering every call with one fault.
To add a case, add a row. Rows for a platform whose adapter is not registered in
publisher.platforms.build_adapters() are skipped, saying so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import httpx
import pytest
import relkit

from helpers import DUE, insert_account, insert_post, sql
from publisher.app import run_once
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.platforms import build_adapters
from publisher.run import Publisher
from publisher.settings import PlatformEndpoints, Settings
from publisher.store import open_store

REGISTERED = frozenset(build_adapters())
FACEBOOK = "https://graph.corpus.test"
LINKEDIN = "https://api.corpus.test"
SECRET = "EAAB-plaintext-token-never-echoed"
OTHER_KEY = TokenCipher(parse_key(generate_key()))

Answer = Callable[[httpx.Request], httpx.Response]


def respond(status: int = 200, body: Any = None, *, text: str | None = None,
            headers: Mapping[str, str] | None = None) -> Answer:
    """The platform answers with this status and body (JSON unless text is given)."""
    def answer(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=dict(headers or {}))
        return httpx.Response(status, json=body, headers=dict(headers or {}))
    return answer


def meta(code: int, message: str, status: int = 400, **extra: Any) -> Answer:
    """A Graph API error body."""
    return respond(status, {"error": {"message": message, "type": "OAuthException",
                                      "code": code, **extra}})


def echo_token(request: httpx.Request) -> httpx.Response:
    """Some Graph errors quote the token they refuse."""
    token = request.headers["authorization"].removeprefix("Bearer ")
    return meta(100, f"Malformed access token {token}")(request)


def fails_with(error: type[httpx.TransportError]) -> Answer:
    """The request fails in transport (connect, read timeout, reset)."""
    def answer(request: httpx.Request) -> httpx.Response:
        raise error("scripted transport failure", request=request)
    return answer


@dataclass(frozen=True)
class Case:
    name: str
    status: str                      # the exact final status
    reason: str | None               # in last_error (None: no error at all)
    platform: str = "facebook"
    post: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    account: str = "ok"              # ok, none, deleted, <platform>, needs_reauth, ...
    token: Callable[[], str | None] | None = None  # what access_token_encrypted holds
    answer: Answer | None = None     # the publishing call's answer (default: success)
    upload: Answer | None = None     # the unpublished-photo uploads' answer
    calls: int | None = None         # platform calls this case may cost (0: none at all)
    absent: str | None = None        # must never appear in the error
    account_after: str | None = None  # the account's status afterwards


def case(name: str, status: str, reason: str | None, **options: Any) -> Any:
    row = Case(name, status, reason, **options)
    missing = row.platform in ("linkedin", "instagram", "youtube") and \
        row.platform not in REGISTERED
    return pytest.param(row, id=name, marks=pytest.mark.skipif(
        missing, reason=f"no {row.platform} adapter registered in build_adapters()"))


def text(n: int) -> str:
    return ("corpus " * (n // 7 + 1))[:n]


def https(n: int, ext: str = "jpg") -> list[str]:
    return [f"https://cdn.corpus.test/{i}.{ext}" for i in range(n)]


LOCAL_NOW = sql("(now() at time zone 'Europe/Berlin') - interval '1 minute'")
NO_TIME = {"scheduled_at": None}
VALID_SEALED = relkit.CIPHER.encrypt("corpus-token")

CASES = [
    # -- the post itself (the adapter's validation: no call is spent) -------------------
    case("empty text", "failed", "a facebook text post needs text", post={"content": ""},
         calls=0),
    case("whitespace-only text", "failed", "needs text", post={"content": " \n\t "}, calls=0),
    case("no text at all (null)", "failed", "needs text", post={"content": None}, calls=0),
    case("text one over the limit", "failed", "63207 characters; the limit is 63206",
         post={"content": text(63_207)}, calls=0),
    case("text exactly at the limit", "published", None, post={"content": text(63_206)}),
    case("link post without a link", "failed", "needs an http(s) link_url",
         post={"post_type": "link"}, calls=0),
    case("link post with an ftp link", "failed", "needs an http(s) link_url",
         post={"post_type": "link", "link_url": "ftp://example.com/a"}, calls=0),
    case("link post with a bare domain", "failed", "needs an http(s) link_url",
         post={"post_type": "link", "link_url": "example.com/a"}, calls=0),
    case("link post with a javascript: link", "failed", "needs an http(s) link_url",
         post={"post_type": "link", "link_url": "javascript:alert(1)"}, calls=0),
    case("photo with no image", "failed", "exactly 1 image URL, got 0",
         post={"post_type": "photo"}, calls=0),
    case("photo with two images", "failed", "exactly 1 image URL, got 2",
         post={"post_type": "photo", "media_urls": https(2)}, calls=0),
    case("photos with no image", "failed", "needs 2-10 image URLs, got 0",
         post={"post_type": "photos"}, calls=0),
    case("photos with one image", "failed", "needs 2-10 image URLs, got 1",
         post={"post_type": "photos", "media_urls": https(1)}, calls=0),
    case("photos with eleven images", "failed", "needs 2-10 image URLs, got 11",
         post={"post_type": "photos", "media_urls": https(11)}, calls=0),
    case("photo over plain http", "failed", "is not a public https URL",
         post={"post_type": "photo", "media_urls": ["http://cdn.corpus.test/a.jpg"]}, calls=0),
    case("photos with one http image among https", "failed", "is not a public https URL",
         post={"post_type": "photos",
               "media_urls": [*https(2), "http://cdn.corpus.test/x.jpg"]}, calls=0),
    case("photo from a file: URL", "failed", "is not a public https URL",
         post={"post_type": "photo", "media_urls": ["file:///etc/passwd"]}, calls=0),
    case("photo from an https URL with no host", "failed", "is not a public https URL",
         post={"post_type": "photo", "media_urls": ["https:///a.jpg"]}, calls=0),
    case("unsupported post type reel", "failed", "does not support post type 'reel'",
         post={"post_type": "reel"}, calls=0),
    case("unsupported post type story", "failed", "does not support post type 'story'",
         post={"post_type": "story"}, calls=0),
    case("unsupported post type carousel", "failed", "does not support post type 'carousel'",
         post={"post_type": "carousel", "media_urls": https(3)}, calls=0),
    case("valid link post", "published", None,
         post={"post_type": "link", "link_url": "https://example.com/a"}),
    case("valid photo post", "published", None,
         post={"post_type": "photo", "media_urls": https(1)}),
    case("valid ten-photo post", "published", None,
         post={"post_type": "photos", "media_urls": https(10)}),
    # -- the account -------------------------------------------------------------------
    case("no account", "failed", "no connected account", account="none", calls=0),
    case("deleted account", "failed", "no connected account", account="deleted", calls=0),
    case("account of another platform (linkedin)", "failed",
         "the post is for facebook but its account is a linkedin account", account="linkedin",
         calls=0),
    case("account of another platform (youtube)", "failed", "youtube account",
         account="youtube", calls=0),
    case("account needs re-authorization", "failed",
         "the account is needs_reauth: token revoked by the user", account="needs_reauth",
         calls=0),
    case("account disconnected", "failed", "the account is disconnected",
         account="disconnected", calls=0),
    case("account throttled for an hour (not claimed)", "scheduled", None, account="paused",
         calls=0),
    # -- the stored token --------------------------------------------------------------
    case("token is garbage", "failed", "stored token is not in the v1 encrypted format",
         token=lambda: "garbage", calls=0),
    case("token is an empty string", "failed", "the account has no access token stored",
         token=lambda: "", calls=0),
    case("token is missing (null)", "failed", "the account has no access token stored",
         token=lambda: None, calls=0),
    case("token sealed with another key", "failed", "neither ENCRYPTION_KEY nor in "
         "ENCRYPTION_KEYS_PREVIOUS", token=lambda: OTHER_KEY.encrypt("t"), calls=0),
    case("token names a key id that is not one", "failed", "sealed with an unknown key",
         token=lambda: "v1:not-a-key:AAAA", calls=0),
    case("token truncated", "failed", "corrupt or was tampered with",
         token=lambda: VALID_SEALED[:-12], calls=0),
    case("token tampered with", "failed", "corrupt or was tampered with",
         token=lambda: VALID_SEALED[:-6] + ("A" if VALID_SEALED[-6] != "A" else "B")
         + VALID_SEALED[-5:], calls=0),
    case("token in a future format", "failed", "not in the v1 encrypted format",
         token=lambda: "v2:00000000:AAAA", calls=0),
    case("token stored in plain text", "failed", "not in the v1 encrypted format",
         token=lambda: SECRET, absent=SECRET, calls=0),
    # -- when, and where ---------------------------------------------------------------
    case("unknown platform", "failed", "unknown platform 'tiktok'",
         post={"platform": "tiktok"}, account="tiktok", calls=0),
    case("platform name in capitals", "failed", "unknown platform 'Facebook'",
         post={"platform": "Facebook"}, calls=0),
    case("empty platform name", "failed", "unknown platform ''", post={"platform": ""},
         calls=0),
    case("invalid time zone", "failed", "unknown time zone 'Mars/Olympus'",
         post={**NO_TIME, "scheduled_local": LOCAL_NOW, "scheduled_timezone": "Mars/Olympus"},
         calls=0),
    case("time zone that is a path", "failed", "unknown time zone '../../etc/passwd'",
         post={**NO_TIME, "scheduled_local": LOCAL_NOW,
               "scheduled_timezone": "../../etc/passwd"}, calls=0),
    case("local time without a zone", "failed", "scheduled_timezone is empty",
         post={**NO_TIME, "scheduled_local": LOCAL_NOW}, calls=0),
    case("local time with an empty zone", "failed", "scheduled_timezone is empty",
         post={**NO_TIME, "scheduled_local": LOCAL_NOW, "scheduled_timezone": ""}, calls=0),
    case("neither scheduled_at nor a local time", "failed",
         "neither scheduled_at nor scheduled_local", post=NO_TIME, calls=0),
    case("valid local time and zone", "published", None,
         post={**NO_TIME, "scheduled_local": LOCAL_NOW, "scheduled_timezone": "Europe/Berlin"}),
    case("more than 24 hours late", "expired", "not published within 24",
         post={"scheduled_at": sql("now() - interval '25 hours'")}, calls=0),
    case("due tomorrow (left alone)", "scheduled", None,
         post={"scheduled_at": sql("now() + interval '1 day'")}, calls=0),
    # -- what the platform answers to the publishing call --------------------------------
    case("answer: 200 JSON without an id", "needs_review", "returned no id",
         answer=respond(200, {"success": True})),
    case("answer: 200 HTML", "needs_review", "not JSON",
         answer=respond(200, text="<html>ok</html>")),
    case("answer: 200 empty body", "needs_review", "not JSON", answer=respond(200, text="")),
    case("answer: 200 JSON array", "needs_review", "outcome unknown",
         answer=respond(200, [{"id": "1"}])),
    case("answer: 200 with an error object", "failed", "Invalid parameter (code 100)",
         answer=meta(100, "Invalid parameter", status=200)),
    case("answer: 500 without a body", "needs_review", "no error body",
         answer=respond(500, text="")),
    case("answer: 502 gateway HTML", "needs_review", "HTTP 502",
         answer=respond(502, text="<html>Bad Gateway</html>")),
    case("answer: 400 with an unknown code", "failed", "(code 12345)",
         answer=meta(12345, "Something new")),
    case("answer: 400 unreadable body", "failed", "unreadable body",
         answer=respond(400, text="nope")),
    case("answer: 403 HTML", "failed", "HTTP 403 with an unreadable body",
         answer=respond(403, text="<html>Forbidden</html>")),
    case("answer: 429 without a body", "scheduled", "throttled (HTTP 429)",
         answer=respond(429, text="", headers={"Retry-After": "7"})),
    case("answer: token invalid (190)", "failed", "re-authorization",
         answer=meta(190, "Error validating access token"), account_after="needs_reauth"),
    case("answer: permission missing (10)", "failed", "re-authorization",
         answer=meta(10, "(#10) Application does not have permission"),
         account_after="needs_reauth"),
    case("answer: policy block (368)", "scheduled", "temporarily blocked",
         answer=meta(368, "It looks like you were misusing this feature")),
    case("answer: duplicate status (506)", "needs_review", "may already be live",
         answer=meta(506, "Duplicate status message")),
    # On the publishing call it may follow a made post: review, never a resend (issue 11).
    case("answer: transient (code 2)", "needs_review", "temporary platform error in answer",
         answer=meta(2, "Service temporarily unavailable", status=500, is_transient=True)),
    case("answer: 200 with a null id", "needs_review", "returned no id",
         answer=respond(200, {"id": None})),
    case("answer: page rate limit (80001)", "scheduled", "throttled",
         answer=meta(80001, "There have been too many calls to this Page account")),
    case("answer: numeric id", "published", None, answer=respond(200, {"id": 12345})),
    case("answer: error echoing the token", "failed", "Malformed access token ***",
         answer=echo_token, absent="token-corpus"),
    case("answer: cannot connect", "retrying", "nothing was sent",
         answer=fails_with(httpx.ConnectError)),
    case("answer: read timeout", "needs_review", "ReadTimeout",
         answer=fails_with(httpx.ReadTimeout)),
    case("answer: connection reset", "needs_review", "after the request was sent",
         answer=fails_with(httpx.RemoteProtocolError)),
    case("upload answers HTML (nothing public yet)", "retrying", "not JSON",
         post={"post_type": "photos", "media_urls": https(2)},
         upload=respond(200, text="<html>")),
    case("upload times out (nothing public yet)", "retrying", "no answer",
         post={"post_type": "photos", "media_urls": https(2)},
         upload=fails_with(httpx.ReadTimeout)),
    case("upload refused as bad input", "failed", "(code 100)",
         post={"post_type": "photos", "media_urls": https(2)},
         upload=meta(100, "(#100) Invalid image")),
    # -- LinkedIn (only while its adapter is registered) ---------------------------------
    case("linkedin: empty commentary", "failed", "a linkedin text post needs commentary text",
         platform="linkedin", post={"content": ""}, calls=0),
    case("linkedin: commentary over 3,000", "failed", "3001 characters; the limit is 3000",
         platform="linkedin", post={"content": text(3001)}, calls=0),
    case("linkedin: account id is not an author URN", "failed", "is not an author URN",
         platform="linkedin", account="linkedin-bad-urn", calls=0),
    case("linkedin: unsupported post type", "failed", "does not support post type 'photo'",
         platform="linkedin", post={"post_type": "photo", "media_urls": https(1)}, calls=0),
    case("linkedin: multi-image with one image", "failed", "needs 2-20 image URLs, got 1",
         platform="linkedin", post={"post_type": "images", "media_urls": https(1)}, calls=0),
]


@dataclass
class Outcomes:
    rows: dict[str, asyncpg.Record]
    accounts: dict[str, str | None]
    calls: Counter[str]


async def _account(conn: asyncpg.Connection, row: Case, page: str) -> str | None:
    sealed = row.token() if row.token else relkit.CIPHER.encrypt(f"token-{page}")
    if row.account == "none":
        return None
    platform = {"linkedin": "linkedin", "youtube": "youtube", "tiktok": "tiktok"}.get(
        row.account, row.platform)
    if row.platform == "linkedin" and row.account != "linkedin-bad-urn":
        page = f"urn:li:person:{page}"
    columns: dict[str, Any] = {"access_token_encrypted": sealed}
    if row.account in ("needs_reauth", "disconnected"):
        columns.update(status=row.account, status_reason="token revoked by the user")
    if row.account == "paused":
        columns.update(paused_until=sql("now() + interval '1 hour'"))
    account = await insert_account(conn, platform=platform, external_id=page, **columns)
    return account


def _platform(answers: dict[str, Case], calls: Counter[str]) -> httpx.MockTransport:
    """A Graph API (and LinkedIn) that answers each case's page as its row says."""
    ids = iter(range(10**6))

    def handle(request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        page = parts[1] if request.url.host == "graph.corpus.test" else "linkedin"
        calls[page] += 1
        row = answers.get(page)
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        upload = parts[-1] == "photos" and form.get("published") == "false"
        scripted = (row.upload if upload else row.answer) if row else None
        if scripted is not None:
            return scripted(request)
        n = next(ids)
        if upload:
            return httpx.Response(200, json={"id": f"media{n}"})
        if parts[-1] == "photos":
            return httpx.Response(200, json={"id": f"photo{n}", "post_id": f"{page}_{n}"})
        return httpx.Response(200, json={"id": f"{page}_{n}"})

    return httpx.MockTransport(handle)


@pytest.fixture(scope="module")
async def corpus(make_database: Callable[..., Awaitable[str]]) -> AsyncIterator[Outcomes]:
    """Every CASES row in one database, one run against the scripted platform."""
    url = await make_database()
    conn = await asyncpg.connect(url)
    rows = [p.values[0] for p in CASES if not any(m.name == "skipif" and m.args[0]
                                                     for m in p.marks)]
    ids: dict[str, int] = {}
    accounts: dict[str, str | None] = {}
    answers: dict[str, Case] = {}
    try:
        for i, row in enumerate(rows):
            page = f"corpus{i}"
            answers[page] = row
            accounts[row.name] = await _account(conn, row, page)
            columns: dict[str, Any] = {"content": f"corpus {i}: {row.name}",
                                       "scheduled_at": DUE, **row.post}
            if accounts[row.name] is not None:
                columns["account_id"] = accounts[row.name]
            columns.setdefault("platform", row.platform)
            ids[row.name] = await insert_post(conn, **columns)
            if row.account == "deleted":  # the post's account_id becomes null
                await conn.execute("delete from social_accounts where id = $1",
                                   accounts[row.name])
        settings = Settings(
            database_url=url, encryption_key=relkit.KEY, worker_id="corpus",
            endpoints=PlatformEndpoints(facebook=FACEBOOK, linkedin=LINKEDIN),
            run_deadline_seconds=60, http_timeout_seconds=5, retry_base_seconds=60,
            max_concurrency=64, platform_concurrency={"facebook": 32, "linkedin": 4},
            account_concurrency=2)
        calls: Counter[str] = Counter()
        store = await open_store(settings)
        try:
            async with httpx.AsyncClient(transport=_platform(answers, calls)) as client:
                await Publisher(settings, store, client, build_adapters(), relkit.CIPHER).run()
        finally:
            await store.close()
        found = {r["id"]: r for r in await conn.fetch(
            "select c.*, a.status as account_status from created_content c "
            "left join social_accounts a on a.id = c.account_id")}
        page_calls = Counter({row.name: calls[f"corpus{i}"] for i, row in enumerate(rows)})
        yield Outcomes({name: found[post_id] for name, post_id in ids.items()}, accounts,
                       page_calls)
    finally:
        await conn.close()


def test_corpus_has_at_least_fifty_cases() -> None:
    """The table is the corpus: at least 50 rows, each named once."""
    names = [p.values[0].name for p in CASES]
    assert len(names) >= 50
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("row", CASES)
def test_corpus_case(row: Case, corpus: Outcomes) -> None:
    """The post ends in its exact status, with its reason, costing only the calls it may."""
    post = corpus.rows[row.name]
    shown = f"{row.name}: status {post['status']!r}, last_error {post['last_error']!r}"
    assert post["status"] == row.status, shown
    if row.reason is None:
        assert post["last_error"] is None, shown
    else:
        assert post["last_error"] is not None, shown
        assert row.reason in post["last_error"], shown
        if post["status"] in ("failed", "needs_review", "expired"):
            # What the product shows its user (the seed's god_mode_metadata.publish_error).
            metadata = json.loads(post["god_mode_metadata"])
            assert metadata.get("publish_error"), shown
    if row.absent is not None:
        assert row.absent not in (post["last_error"] or ""), shown
        assert row.absent not in post["god_mode_metadata"], shown
    if row.calls is not None:
        assert corpus.calls[row.name] <= row.calls, (shown, corpus.calls[row.name])
    if row.account_after is not None:
        assert post["account_status"] == row.account_after, shown
    if row.status == "published":
        assert post["platform_post_id"], shown
        assert post["published_at"] is not None, shown
    assert post["locked_by"] is None, shown


# -- the simulator's own nonsense: one fault kind answering every publishing call ----------

SIM_FAULTS = [
    pytest.param("transient", "needs_review", "temporary platform error in answer",
                 id="sim transient"),
    pytest.param("throttle", "scheduled", "throttled by the platform", id="sim throttle"),
    pytest.param("rate_limit_429", "scheduled", "throttled", id="sim 429"),
    pytest.param("token_expired", "failed", "re-authorization", id="sim token expired"),
    pytest.param("permission", "failed", "re-authorization", id="sim permission"),
    pytest.param("bad_input", "failed", "(#100) Invalid parameter", id="sim bad input"),
    pytest.param("timeout_before", "needs_review", "ReadTimeout", id="sim timeout before"),
    pytest.param("timeout_after", "needs_review", "ReadTimeout", id="sim timeout after"),
    pytest.param("malformed", "needs_review", "not JSON", id="sim malformed"),
    pytest.param("reset", "needs_review", "after the request was sent", id="sim reset"),
]


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[str]:
    async with relkit.simulator(relkit.SimConfig()) as url:
        yield url


@pytest.mark.parametrize(("kind", "status", "reason"), SIM_FAULTS)
async def test_simulator_fault_answer(kind: str, status: str, reason: str, database_url: str,
                                      db: asyncpg.Connection, sim: str) -> None:
    """Every call answered with one fault: the post's exact status and reason."""
    await relkit.sim_reset(sim, fault_rate=1.0, faults=[kind], hang_seconds=5.0,
                           retry_after=1, regain_minutes=1, latency=0.0)
    await relkit.seed_facebook(db, posts=1, accounts=1, tag="simfault")
    await db.execute("update created_content set post_type = 'text'")
    await run_once(relkit.fault_settings(database_url, sim, f"simfault-{kind}"))
    post = await db.fetchrow("select status, last_error, sending_started_at, attempts "
                             "from created_content")
    shown = f"{kind}: {dict(post)}"
    assert post["status"] == status, shown
    assert reason in post["last_error"], shown
    accepted = len(await relkit.sim_get(sim, "/_sim/posts"))
    # Only the faults that let the platform act leave a post there.
    assert accepted == (1 if kind in ("timeout_after", "malformed") else 0), shown
    if status == "needs_review":
        assert post["sending_started_at"] is not None, shown
    if status == "scheduled":
        assert post["attempts"] == 0, shown  # deferral uses no attempt
