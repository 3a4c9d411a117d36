"""Every row of the Meta error table (shared/platforms.md sections 6 and 7), via the adapter.

Error bodies follow Meta's shape, {"error": {"message", "type", "code", "error_subcode",
"is_transient", "fbtrace_id"}}; throttles carry X-Business-Use-Case-Usage, whose
estimated_time_to_regain_access is in minutes.

Never twice (issue 11): on the publishing call (/feed here) codes 1/2, is_transient and a 5xx
do not prove the post was not made, so they are UNKNOWN; on a preparation call (an
unpublished photo upload) the same answers are RETRY.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext, publish_masked
from publisher.platforms.facebook.adapter import FacebookAdapter
from publisher.platforms.meta.errors import (
    DEFAULT_THROTTLE_SECONDS,
    ERROR_TABLE,
    POLICY_BLOCK_SECONDS,
    TRANSIENT,
    classify_meta_error,
)

ADAPTER = FacebookAdapter()
PostFactory = Callable[..., ClaimedPost]
IMAGES = ("https://cdn.example.com/a.jpg", "https://cdn.example.com/b.jpg")
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
TOKEN_MARK = "{token}"  # replaced by the fake access token when the response is built


def meta(code: int, message: str = "An error occurred", *, subcode: int | None = None,
         transient: bool = False, status: int = 400, **fields: Any) -> dict[str, Any]:
    """A Graph API error body, as Meta sends it."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "is_transient": transient, "fbtrace_id": "AbCdEf123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": {**error, **fields}}


def buc(*minutes: float) -> dict[str, str]:
    """An X-Business-Use-Case-Usage header with one entry per estimate (minutes)."""
    usage = {f"10485760012{n}": [{"type": "pages", "call_count": 100, "total_cputime": 20,
                                  "total_time": 30, "estimated_time_to_regain_access": m}]
             for n, m in enumerate(minutes)}
    return {"X-Business-Use-Case-Usage": json.dumps(usage)}


@dataclass(frozen=True)
class Case:
    """One response and the outcome it must come to."""

    status: int
    body: dict[str, Any] | bytes | None
    kind: OutcomeKind
    headers: dict[str, str] = field(default_factory=dict)
    wait: float | None = None      # expected retry_after
    says: tuple[str, ...] = ()     # substrings the reason must contain
    app_wide: bool = False         # DEFER: the platform pauses too (the app's budget)

    def response(self, token: str) -> httpx.Response:
        headers = {k: v.replace(TOKEN_MARK, token) for k, v in self.headers.items()}
        if isinstance(self.body, dict):
            content = json.dumps(self.body).replace(TOKEN_MARK, token).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            content = (self.body or b"").replace(TOKEN_MARK.encode(), token.encode())
        return httpx.Response(self.status, content=content, headers=headers)

    @property
    def code(self) -> int | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return int(self.body["error"]["code"])
        return None


def assert_outcome(outcome: Outcome, case: Case, token: str) -> None:
    """The outcome matches the case, and no part of it carries the token."""
    assert outcome.kind is case.kind, outcome
    for text in case.says:
        assert text in (outcome.reason or ""), outcome.reason
    if case.kind is OutcomeKind.DEFER:
        assert outcome.retry_after == case.wait
        assert outcome.pause_account is True
        assert outcome.pause_platform is case.app_wide
    if case.code is not None:
        assert outcome.detail["code"] == case.code
        assert outcome.detail["http_status"] == case.status
    assert token not in (outcome.reason or "")
    assert token not in repr(outcome.detail)
    assert token not in repr(outcome)


THROTTLE_CODES = (4, 17, 32, 613, 341, 80001, 80002)
APP_WIDE = frozenset({4, 341})   # the app's own budget: every account of the app waits

# Meta's answers that say "wait and retry", which on the publishing call prove nothing.
SERVER_TROUBLE = {
    "code-1-unknown": (500, meta(1, "An unknown error has occurred."),
                       ("An unknown error has occurred.", "code 1")),
    "code-1-on-400": (400, meta(1, "An unknown error has occurred."), ()),
    "code-2-service": (503, meta(2, "Service temporarily unavailable", transient=True),
                       ("Service temporarily unavailable",)),
    "code-2-on-400": (400, meta(2, "An unexpected error has occurred.", transient=True), ()),
    "is-transient-overrides-code": (400, meta(100, "Please retry", transient=True),
                                    ("Please retry",)),
    "http-500-meta-body": (500, meta(9999, "Internal server hiccup"),
                           ("Internal server hiccup",)),
}

PUBLISH_CASES = {
    # Server trouble after the post was sent: it may be live, so UNKNOWN, never a resend.
    **{name: Case(status, body, OutcomeKind.UNKNOWN, says=(*says, "may be live"))
       for name, (status, body, says) in SERVER_TROUBLE.items()},
    # Throttles: defer the account (and the platform for the app's budget); the wait comes
    # from BUC, Retry-After, or the default. Meta sends them as 400/403, not 429.
    **{f"throttle-{code}-buc": Case(400, meta(code, "Application request limit reached"),
                                    OutcomeKind.DEFER, headers=buc(7), wait=420.0,
                                    says=("throttled", "Application request limit reached"),
                                    app_wide=code in APP_WIDE)
       for code in THROTTLE_CODES},
    **{f"throttle-{code}-retry-after": Case(403, meta(code, "Calls to this api have exceeded "
                                                      "the rate limit."),
                                            OutcomeKind.DEFER, headers={"Retry-After": "90"},
                                            wait=90.0, app_wide=code in APP_WIDE)
       for code in THROTTLE_CODES},
    **{f"throttle-{code}-default": Case(400, meta(code, "User request limit reached"),
                                        OutcomeKind.DEFER, wait=DEFAULT_THROTTLE_SECONDS,
                                        app_wide=code in APP_WIDE)
       for code in THROTTLE_CODES},
    "throttle-4-app-usage": Case(403, meta(4, "(#4) Application request limit reached",
                                           transient=True), OutcomeKind.DEFER,
                                 headers={"X-App-Usage": json.dumps(
                                     {"call_count": 100, "total_time": 100,
                                      "total_cputime": 100})},
                                 wait=DEFAULT_THROTTLE_SECONDS, app_wide=True),
    "throttle-transient-is-still-a-throttle": Case(
        400, meta(613, "(#613) Calls to this api have exceeded the rate limit.",
                  transient=True), OutcomeKind.DEFER, headers=buc(2), wait=120.0),
    "posting-too-fast-1390008": Case(400, meta(368, "You're posting too fast",
                                               subcode=1390008),
                                     OutcomeKind.DEFER, wait=DEFAULT_THROTTLE_SECONDS,
                                     says=("posting too fast", "368/1390008")),
    "posting-too-fast-1390008-buc": Case(400, meta(368, "You're posting too fast",
                                                   subcode=1390008),
                                         OutcomeKind.DEFER, headers=buc(2), wait=120.0),
    # Policy block: an hour, carefully.
    "policy-block-368": Case(400, meta(368, "The action attempted has been deemed abusive"),
                             OutcomeKind.DEFER, wait=POLICY_BLOCK_SECONDS,
                             says=("temporarily blocked", "deemed abusive")),
    # Token expired or invalid: the user must reconnect.
    **{f"token-190-{sub}": Case(400, meta(190, "Error validating access token", subcode=sub),
                                OutcomeKind.REAUTH,
                                says=("access token is expired or invalid", f"190/{sub}"))
       for sub in (463, 467, 460)},
    "token-190-no-subcode": Case(401, meta(190, "Invalid OAuth access token."),
                                 OutcomeKind.REAUTH, says=("Invalid OAuth access token.",)),
    "session-102": Case(400, meta(102, "API Session"), OutcomeKind.REAUTH,
                        says=("access token is expired or invalid", "code 102")),
    # Permission missing: re-consent.
    **{f"permission-{code}": Case(403, meta(code, "Permissions error"), OutcomeKind.REAUTH,
                                  says=("permission", f"code {code}"))
       for code in (10, 200, 299, 3)},
    # Bad input: fails for good, with the platform's own message.
    "bad-input-100": Case(400, meta(100, "Invalid parameter"), OutcomeKind.FAILED,
                          says=("rejected", "Invalid parameter", "code 100")),
    "link-scrape-1609005": Case(400, meta(1609005, "Error posting link"), OutcomeKind.FAILED,
                                says=("Error posting link", "1609005")),
    "photo-too-big-1366046": Case(400, meta(1366046, "Photo is too big"), OutcomeKind.FAILED,
                                  says=("Photo is too big", "1366046")),
    # Duplicate: may already be live, so never resent.
    "duplicate-506": Case(400, meta(506, "Duplicate status message"), OutcomeKind.UNKNOWN,
                          says=("Duplicate status message", "may already be live")),
    # A code the table does not list: permanent, with the message.
    "unlisted-code": Case(400, meta(4242, "Something odd about this post"), OutcomeKind.FAILED,
                          says=("Something odd about this post", "code 4242")),
    "error-body-on-200": Case(200, meta(100, "Invalid parameter"), OutcomeKind.FAILED,
                              says=("Invalid parameter",)),
    # Bodies that are not Meta errors.
    "429-no-body-retry-after": Case(429, None, OutcomeKind.DEFER,
                                    headers={"Retry-After": "42"}, wait=42.0),
    "429-no-body-no-header": Case(429, None, OutcomeKind.DEFER, wait=DEFAULT_THROTTLE_SECONDS),
    "502-html-on-publish": Case(502, HTML_502, OutcomeKind.UNKNOWN,
                                headers={"Content-Type": "text/html"},
                                says=("502", "Bad Gateway")),
    "200-not-json-on-publish": Case(200, b"<html>OK</html>", OutcomeKind.UNKNOWN,
                                    says=("not JSON",)),
    "200-json-array-on-publish": Case(200, b'["104857600123_1"]', OutcomeKind.UNKNOWN),
    "200-json-without-id": Case(200, {"success": True}, OutcomeKind.UNKNOWN,
                                says=("no id",)),
    "400-unreadable-body": Case(400, b"Bad Request", OutcomeKind.FAILED, says=("HTTP 400",)),
    # The platform echoes the token back (Meta does, e.g. "Malformed access token EAA...").
    "token-echoed-in-message": Case(400, meta(190, f"Malformed access token {TOKEN_MARK}"),
                                    OutcomeKind.REAUTH, says=("Malformed access token",)),
    "token-echoed-in-html": Case(502, f"<html>bad gateway; Bearer {TOKEN_MARK}</html>".encode(),
                                 OutcomeKind.UNKNOWN, says=("bad gateway",)),
}

UPLOAD_CASES = {
    # The same server trouble on an invisible upload: safe to try again.
    **{f"{name}-on-upload": Case(status, body, OutcomeKind.RETRY, says=says)
       for name, (status, body, says) in SERVER_TROUBLE.items()},
    "502-html-on-upload": Case(502, HTML_502, OutcomeKind.RETRY, says=("502",)),
    "200-not-json-on-upload": Case(200, b"<html>OK</html>", OutcomeKind.RETRY),
    "200-json-without-id-on-upload": Case(200, {"success": True}, OutcomeKind.RETRY),
    "throttle-on-upload": Case(400, meta(80001, "There have been too many calls"),
                               OutcomeKind.DEFER, headers=buc(3), wait=180.0),
    "429-on-upload": Case(429, None, OutcomeKind.DEFER, headers={"Retry-After": "15"},
                          wait=15.0),
    "token-on-upload": Case(400, meta(190, "Error validating access token", subcode=463),
                            OutcomeKind.REAUTH),
    "permission-on-upload": Case(403, meta(200, "Permissions error"), OutcomeKind.REAUTH),
    "photo-too-big-on-upload": Case(400, meta(1366046, "Photo is too big"), OutcomeKind.FAILED,
                                    says=("Photo is too big",)),
    "duplicate-on-upload": Case(400, meta(506, "Duplicate status message"),
                                OutcomeKind.UNKNOWN),
    "token-echoed-on-upload": Case(400, meta(190, f"Malformed access token {TOKEN_MARK}"),
                                   OutcomeKind.REAUTH),
}


@pytest.mark.parametrize("case", PUBLISH_CASES.values(), ids=PUBLISH_CASES.keys())
async def test_publishing_call_error(
        graph: respx.MockRouter, context: PublishContext, gate: Any, token: str,
        make_post: PostFactory, case: Case) -> None:
    """An answer to the publishing call (/feed) comes to the table's outcome."""
    feed = graph.post("/feed").mock(return_value=case.response(token))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert feed.call_count == 1
    assert gate.calls == 1
    assert_outcome(outcome, case, token)


@pytest.mark.parametrize("case", UPLOAD_CASES.values(), ids=UPLOAD_CASES.keys())
async def test_preparation_upload_error(
        graph: respx.MockRouter, context: PublishContext, gate: Any, token: str,
        make_post: PostFactory, case: Case) -> None:
    """An answer to an unpublished upload stops the post before anything is sent."""
    photos = graph.post("/photos").mock(return_value=case.response(token))
    feed = graph.post("/feed")

    outcome = await publish_masked(ADAPTER, make_post("photos", media_urls=IMAGES), context)

    assert photos.call_count == 1
    assert feed.call_count == 0
    assert gate.calls == 0
    assert_outcome(outcome, case, token)


@pytest.mark.parametrize(("headers", "wait"), [
    pytest.param({**buc(5), "Retry-After": "30"}, 300.0, id="buc-beats-retry-after"),
    pytest.param(buc(1, 12, 3), 720.0, id="longest-estimate"),
    pytest.param({**buc(0), "Retry-After": "30"}, 30.0, id="zero-estimate-uses-retry-after"),
    pytest.param({"X-Business-Use-Case-Usage": "not json", "Retry-After": "30"}, 30.0,
                 id="malformed-buc-uses-retry-after"),
    pytest.param({"X-Business-Use-Case-Usage": '{"1": "oops"}'}, DEFAULT_THROTTLE_SECONDS,
                 id="odd-buc-uses-default"),
    pytest.param({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, DEFAULT_THROTTLE_SECONDS,
                 id="date-retry-after-uses-default"),
])
async def test_throttle_wait_sources(
        graph: respx.MockRouter, context: PublishContext, token: str, make_post: PostFactory,
        headers: dict[str, str], wait: float) -> None:
    """The throttle wait prefers BUC's estimate, then Retry-After, then the default."""
    case = Case(400, meta(80001, "There have been too many calls to this Page"),
                OutcomeKind.DEFER, headers=headers, wait=wait)
    graph.post("/feed").mock(return_value=case.response(token))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert_outcome(outcome, case, token)


async def test_single_photo_502_is_unknown(
        graph: respx.MockRouter, context: PublishContext, make_post: PostFactory) -> None:
    """For a photo post the published /photos call is the irreversible one: 502 is UNKNOWN."""
    graph.post("/photos").respond(502, content=HTML_502)

    outcome = await publish_masked(ADAPTER, make_post("photo", media_urls=IMAGES[:1]), context)

    assert outcome.kind is OutcomeKind.UNKNOWN


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_one_table_for_both_kinds_of_call(code: int) -> None:
    """Each row's outcome on a preparation call and on the publishing call; only the
    server-trouble rows differ, and there the publishing call is UNKNOWN."""
    row = ERROR_TABLE[code]
    response = httpx.Response(400, json=meta(code, "Some answer"))

    prepared = classify_meta_error(response, irreversible=False)
    published = classify_meta_error(response, irreversible=True)

    assert prepared.kind is row.kind
    if row is TRANSIENT:
        assert (prepared.kind, published.kind) == (OutcomeKind.RETRY, OutcomeKind.UNKNOWN)
    else:
        assert published.kind is row.kind
        assert published.reason == prepared.reason


@pytest.mark.parametrize(("code", "status"), [(4, 403), (17, 400), (32, 403), (613, 400)])
async def test_meta_throttle_as_the_simulator_sends_it(
        graph: respx.MockRouter, context: PublishContext, gate: Any, make_post: PostFactory,
        code: int, status: int) -> None:
    """The simulator's meta_throttle answers (400/403, usage headers, is_transient true) defer:
    the platform for code 4 (the app's budget), the account for 17, 32 and 613."""
    headers = ({"X-App-Usage": '{"call_count": 100, "total_time": 100, "total_cputime": 100}'}
               if code == 4 else buc(1))
    graph.post("/feed").respond(status, json=meta(code, "Rate limited", transient=True),
                                headers=headers)

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is OutcomeKind.DEFER
    assert outcome.pause_account is True
    assert outcome.pause_platform is (code == 4)
    assert outcome.retry_after == (DEFAULT_THROTTLE_SECONDS if code == 4 else 60.0)
