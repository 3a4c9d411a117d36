"""Secrets are masked before any platform text is cut (publisher.redact).

Two levels: the masking rules in a table, and end to end through Publisher against a scripted
platform that echoes the secret of the call (access token, refresh token, client secret) at
every offset around each cut (the 300-character message, the 120-byte body snippet, YouTube's
200 and 40), in JSON, as raw text and URL-encoded, on every platform's error path and token
refresh path. No six characters in a row of a secret may reach the database.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

import asyncpg
import httpx
import pytest

from helpers import insert_account, insert_post, sql
from publisher import redact
from publisher.crypto import TokenCipher, generate_key, parse_key
from publisher.models import Outcome, OutcomeKind
from publisher.platforms import build_adapters
from publisher.platforms.http import send, snippet
from publisher.run import Publisher
from publisher.settings import OAuthClient, Settings
from publisher.store import Store

RUN = 6  # the longest run of a secret the tests tolerate is RUN - 1
TOKEN = "EAABq8Zr2LkP+Xy7Vb/Nw3Qs9T"  # "+" and "/" change when the token is encoded
CIPHER = TokenCipher(parse_key(generate_key()))
ALPHABET = string.ascii_letters + string.digits
MEDIA_HOST = "media.redact.test"
CLIENT_SECRET = "GOCSPX-c7Hd2Lq9Zt4Wm8Rk1Ys"


def runs(secret: str) -> set[str]:
    """Every RUN characters in a row of the secret, plain and URL-encoded."""
    return {form[i:i + RUN] for form in (secret, quote(secret, safe=""))
            for i in range(len(form) - RUN + 1)}


def leaks(text: str | None, *secrets: str) -> list[str]:
    """The runs of the secrets found in text."""
    return sorted(run for secret in secrets for run in runs(secret) if run in (text or ""))


# -- the rules ---------------------------------------------------------------------------

MASKED = [
    pytest.param(f"Malformed access token {TOKEN}", "Malformed access token ***", id="whole"),
    pytest.param(json.dumps({"m": TOKEN}).replace("/", "\\/"), '{"m": "***"}',
                 id="json-escaped-slash"),
    pytest.param(f"access_token={quote(TOKEN, safe='')}&x=1", "access_token=***&x=1",
                 id="url-encoded"),
    pytest.param(f"access_token={quote(TOKEN, safe='').replace('%2B', '%2b')}",
                 "access_token=***", id="url-encoded-lower-case"),
    pytest.param(f"a={TOKEN.replace('+', '%2B').replace('/', '%2F')} b={TOKEN}", "a=*** b=***",
                 id="two-forms"),
    pytest.param(f"cut here: {TOKEN[:6]}", "cut here: ***", id="trailing-prefix-6"),
    pytest.param(f"cut here: {TOKEN[:20]}", "cut here: ***", id="trailing-prefix-20"),
    pytest.param(f"{TOKEN[-6:]} and on", "*** and on", id="leading-suffix-6"),
    pytest.param(f"shows {TOKEN[3:17]} in the middle", "shows *** in the middle",
                 id="middle-run-of-14"),
    pytest.param(f"{TOKEN}{TOKEN}", "******", id="adjacent"),
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_mask(text: str, expected: str) -> None:
    """Every form and every piece a cut can leave is masked."""
    with redact.guard(TOKEN):
        assert redact.mask(text) == expected


KEPT = [
    pytest.param("LinkedIn refused: the member must reconnect LinkedIn",
                 "AQVfakeLinkedInMemberToken0123456789SECRET", id="words-in-a-test-token"),
    pytest.param(f"only {TOKEN[2:7]} here", TOKEN, id="five-characters"),
    pytest.param(f"middle {TOKEN[4:14]} of the text", TOKEN, id="middle-run-of-10"),
    pytest.param("nothing", "abc", id="secret-too-short"),
]


@pytest.mark.parametrize(("text", "secret"), KEPT)
def test_ordinary_text_is_kept(text: str, secret: str) -> None:
    """Words a test token shares with messages, and short pieces inside a text, stay."""
    assert redact.mask(text, [secret]) == text


@pytest.mark.parametrize("form", [TOKEN, quote(TOKEN, safe=""), TOKEN.replace("/", "\\/")],
                         ids=["plain", "url-encoded", "json-escaped"])
def test_clip_masks_before_it_cuts(form: str) -> None:
    """Wherever the secret sits and wherever the cut falls, no run of it survives."""
    with redact.guard(TOKEN):
        for offset in range(0, 60):
            text = "=" * offset + form + " and the rest of the message"
            for limit in range(0, len(text) + 1):
                clipped = redact.clip(text, limit)
                assert len(clipped) <= limit
                assert leaks(clipped, TOKEN) == [], (offset, limit, clipped)


def test_clip_outside_a_guard_only_cuts() -> None:
    """No secrets known, nothing masked: clip is a cut."""
    assert redact.clip(f"x {TOKEN}", 10) == f"x {TOKEN}"[:10]
    assert redact.current() == ()


async def test_guards_nest_and_end() -> None:
    """An inner guard adds to the outer one; leaving it restores the outer secrets."""
    with redact.guard(TOKEN):
        with redact.guard(CLIENT_SECRET, None, "") as inner:
            redact.remember("refresh-token-123")
            assert inner == [TOKEN, CLIENT_SECRET, "refresh-token-123"]
        assert redact.current() == (TOKEN,)
    assert redact.current() == ()
    redact.remember("ignored-outside-any-guard")
    assert redact.current() == ()


def test_mask_outcome_walks_reason_detail_and_state() -> None:
    """The safety net masks nested dicts and lists and leaves everything else alone."""
    outcome = Outcome(kind=OutcomeKind.FAILED, reason=f"bad {TOKEN[:9]}",
                      detail={"code": 100, "said": [f"x {TOKEN} y", {"deep": TOKEN}]},
                      state={"container": f"c-{TOKEN}"})
    masked = redact.mask_outcome(outcome, [TOKEN])
    assert masked.reason == "bad ***"
    assert masked.detail == {"code": 100, "said": ["x *** y", {"deep": "***"}]}
    assert masked.state == {"container": "c-***"}
    published = Outcome.published("p1", "https://example.com/p1")
    assert redact.mask_outcome(published, [TOKEN]) is published


def test_snippet_masks_a_secret_across_its_cut() -> None:
    """The body snippet reads past its 120 bytes so a straddling secret is masked whole."""
    with redact.guard(TOKEN):
        for offset in range(120 - len(TOKEN) - 2, 123):
            response = httpx.Response(400, content=b"=" * offset + TOKEN.encode() + b" end")
            shown = snippet(response)
            assert len(shown) <= 120
            assert leaks(shown, TOKEN) == [], (offset, shown)


async def test_send_remembers_what_it_sends_as_a_credential() -> None:
    """The Authorization header and token form fields join the current guard's secrets."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    async with client:
        with redact.guard() as secrets:
            await send(client, "POST", "https://api.redact.test/x", irreversible=False,
                       headers={"Authorization": f"Bearer {TOKEN}"},
                       data={"refresh_token": "refresh-token-456",
                             "client_secret": CLIENT_SECRET, "grant_type": "refresh_token"})
            assert secrets == [TOKEN, "refresh-token-456", CLIENT_SECRET]


# -- end to end: every platform's error and refresh paths, the real database ---------------

@dataclass(frozen=True)
class Path:
    name: str
    platform: str
    refresh: bool
    message_cut: int   # where the platform's message (or error_description) is cut
    body_cut: int      # where the body snippet is cut


PATHS = [
    Path("facebook", "facebook", False, 300, 120),
    Path("instagram", "instagram", False, 300, 120),
    Path("linkedin", "linkedin", False, 300, 120),
    Path("youtube", "youtube", False, 300, 120),
    Path("linkedin-refresh", "linkedin", True, 300, 120),
    Path("youtube-refresh", "youtube", True, 200, 40),
    Path("instagram-refresh", "instagram", True, 300, 120),
]


@dataclass(frozen=True)
class Echo:
    mode: str      # message (in the JSON error), body (raw text) or encoded (URL-encoded)
    offset: int    # where the echoed secret starts
    secret: str    # the secret the platform echoes (the one this post's call sends)


def secret(rng: random.Random, prefix: str) -> str:
    def pick(n: int) -> str:
        return "".join(rng.choice(ALPHABET) for _ in range(n))
    return f"{prefix}{pick(8)}+{pick(6)}/{pick(6)}"


def echoes(path: Path, rng: random.Random) -> list[Echo]:
    """One echo per offset at which the secret straddles (or just misses) the cut."""
    found = []
    for mode, cut in (("message", path.message_cut), ("body", path.body_cut),
                      ("encoded", path.body_cut)):
        length = 30 if mode == "encoded" else 26  # "+" and "/" take 3 characters encoded
        for offset in range(max(0, cut - length - 2), cut + 3):
            found.append(Echo(mode, offset, secret(rng, "EAAB" if not path.refresh else "1//0")))
    return found


def said(path: Path, echo: Echo) -> str:
    shown = echo.secret
    if path.refresh and path.platform in ("linkedin", "youtube"):
        shown = f"{shown} {CLIENT_SECRET}"  # the app's secret is in the same form
    if echo.mode == "encoded":
        shown = quote(shown, safe="")
    return "=" * echo.offset + shown + " end"


def error_body(path: Path, message: str) -> dict[str, Any]:
    if path.refresh and path.platform in ("linkedin", "youtube"):
        return {"error": "invalid_grant", "error_description": message}
    if path.platform in ("facebook", "instagram"):
        return {"error": {"message": message, "type": "OAuthException", "code": 100}}
    if path.platform == "linkedin":
        return {"message": message, "status": 400}
    return {"error": {"code": 400, "message": message,
                      "errors": [{"reason": "badRequest", "message": message}]}}


def answer(path: Path, echo: Echo) -> httpx.Response:
    """The platform's error answer, echoing the secret where the echo says."""
    text = said(path, echo)
    if echo.mode == "message":
        return httpx.Response(400, json=error_body(path, text))
    # A token endpoint answering 200 without a token shows the body (YouTube: 40 bytes).
    status = 200 if path.refresh and path.platform in ("youtube", "instagram") else 400
    return httpx.Response(status, text=text)


def sent_secret(request: httpx.Request) -> str | None:
    """What the request carries as its credential (header, form field or query)."""
    auth = str(request.headers.get("authorization") or "")
    if auth:
        return auth.removeprefix("Bearer ")
    form = parse_qs(request.content.decode(errors="replace"))
    if "refresh_token" in form:
        return form["refresh_token"][0]
    return str(request.url.params.get("access_token") or "") or None


def platform(path: Path, by_secret: dict[str, Echo]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == MEDIA_HOST:  # YouTube's video: 1 KiB, ranges honoured
            return httpx.Response(206, content=b"\0", headers={
                "content-type": "video/mp4", "content-range": "bytes 0-0/1024"})
        echo = by_secret.get(sent_secret(request) or "")
        if echo is None:
            return httpx.Response(500, text="unexpected request")
        return answer(path, echo)
    return httpx.MockTransport(handle)


POST_COLUMNS: dict[str, dict[str, Any]] = {
    "facebook": {"post_type": "text", "content": "hello"},
    "instagram": {"post_type": "image", "content": "hello",
                  "media_urls": [f"https://{MEDIA_HOST}/a.jpg"]},
    "linkedin": {"post_type": "text", "content": "hello"},
    "youtube": {"post_type": "video", "title": "A video", "content": "hello",
                "media_urls": [f"https://{MEDIA_HOST}/v.mp4"]},
}
EXTERNAL_ID = {"facebook": "page-{n}", "instagram": "1784{n:011d}",
               "linkedin": "urn:li:person:p{n}", "youtube": "UC{n:022d}"}


async def seed(db: asyncpg.Connection, path: Path, all_echoes: list[Echo]) -> dict[int, Echo]:
    """One account and one post per echo; the account's secret is the echo's."""
    posts = {}
    for n, echo in enumerate(all_echoes):
        columns: dict[str, Any] = {}
        if path.refresh:
            access = echo.secret if path.platform == "instagram" else secret(random.Random(n),
                                                                             "ya29")
            columns.update(access_token_encrypted=CIPHER.encrypt(access),
                           token_expires_at=sql("now() - interval '1 hour'"))
            if path.platform != "instagram":
                columns["refresh_token_encrypted"] = CIPHER.encrypt(echo.secret)
        else:
            columns["access_token_encrypted"] = CIPHER.encrypt(echo.secret)
        account = await insert_account(db, platform=path.platform,
                                       external_id=EXTERNAL_ID[path.platform].format(n=n),
                                       **columns)
        post = await insert_post(db, platform=path.platform, account_id=account,
                                 **POST_COLUMNS[path.platform])
        posts[post] = echo
    return posts


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
async def test_no_run_of_a_secret_is_stored(path: Path, database_url: str, store: Store,
                                            db: asyncpg.Connection) -> None:
    """Echoed at every offset around the cut, no 6 characters of a secret reach last_error,
    god_mode_metadata, publish_attempts or the account's status_reason."""
    all_echoes = echoes(path, random.Random(path.name))
    posts = await seed(db, path, all_echoes)
    settings = Settings(
        database_url=database_url, worker_id="redact", simulator_url=f"https://{MEDIA_HOST}",
        run_deadline_seconds=60, retry_base_seconds=600, max_concurrency=64,
        platform_concurrency=dict.fromkeys(POST_COLUMNS, 64), account_concurrency=4,
        oauth_clients={p: OAuthClient(client_id=f"{p}-app", client_secret=CLIENT_SECRET)
                       for p in ("linkedin", "youtube")})
    transport = platform(path, {echo.secret: echo for echo in all_echoes})
    async with httpx.AsyncClient(transport=transport) as client:
        await Publisher(settings, store, client, build_adapters(), CIPHER).run()

    rows = await db.fetch(
        "select c.id, c.status, c.last_error, c.god_mode_metadata::text as metadata, "
        "       a.status_reason, "
        "       (select json_agg(p)::text from publish_attempts p where p.post_id = c.id) "
        "         as attempts "
        "from created_content c join social_accounts a on a.id = c.account_id")
    assert len(rows) == len(posts)
    for row in rows:
        echo = posts[row["id"]]
        shown = f"{echo.mode} at {echo.offset}: {row['status']} {row['last_error']!r}"
        # The echo reached the stored reason: the cut was really exercised.
        assert row["status"] in ("failed", "retrying", "needs_review"), shown
        assert "=" * min(echo.offset, 3) in (row["last_error"] or ""), shown
        for column in ("last_error", "metadata", "attempts", "status_reason"):
            assert leaks(row[column], echo.secret, CLIENT_SECRET) == [], (column, shown)
