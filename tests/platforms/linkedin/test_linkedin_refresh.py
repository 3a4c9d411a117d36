"""LinkedInAdapter.refresh_token: the refresh_token grant at /oauth/v2/accessToken.

Shapes from shared/platforms.md section 8: a form with grant_type, refresh_token, client_id
and client_secret; the answer {"access_token", "expires_in", "refresh_token",
"refresh_token_expires_in"}; refusals {"error": "invalid_grant", "error_description"}.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from linkedin_support import adapter

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.base import TokenGrant
from publisher.platforms.linkedin.errors import CONFIG_DEFER_SECONDS, THROTTLE_SECONDS
from publisher.settings import OAuthClient, PlatformEndpoints

ADAPTER = adapter()
ENDPOINTS = PlatformEndpoints()
TOKEN_URL = f"{ENDPOINTS.linkedin_oauth}/oauth/v2/accessToken"
OAUTH = OAuthClient(client_id="78abcdefgh", client_secret="WPL_AP1.clientSECRET.xyz")
ACCESS = "AQVoldAccessTokenSECRET"
REFRESH = "AQXrefreshTokenSECRET0123"
SECRETS = (ACCESS, REFRESH, OAUTH.client_secret)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An AsyncClient whose requests respx intercepts."""
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


@pytest.fixture
def oauth_api() -> Iterator[respx.MockRouter]:
    """respx over LinkedIn's OAuth host; anything unmocked fails the test."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


async def refresh(client: httpx.AsyncClient, *, refresh_token: str | None = REFRESH,
                  oauth: OAuthClient | None = OAUTH) -> TokenGrant | Outcome:
    return await ADAPTER.refresh_token(client, ENDPOINTS, access_token=ACCESS,
                                       refresh_token=refresh_token, oauth=oauth)


def assert_no_secret(outcome: Outcome) -> None:
    """No token or client secret reaches the outcome."""
    for secret in SECRETS:
        assert secret not in repr(outcome)


async def test_refresh_posts_the_form_and_returns_the_grant(
        client: httpx.AsyncClient, oauth_api: respx.MockRouter) -> None:
    """The grant goes as a form; the new tokens and lifetime come back."""
    route = oauth_api.post(TOKEN_URL).respond(200, json={
        "access_token": "AQVnewAccess", "expires_in": 5184000, "refresh_token": "AQXnewRefresh",
        "refresh_token_expires_in": 31535000, "scope": "w_member_social"})

    grant = await refresh(client)

    assert isinstance(grant, TokenGrant)
    assert (grant.access_token, grant.refresh_token, grant.expires_in) == (
        "AQVnewAccess", "AQXnewRefresh", 5184000.0)
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["refresh_token"], "refresh_token": [REFRESH],
        "client_id": [OAUTH.client_id], "client_secret": [OAUTH.client_secret]}
    assert REFRESH not in str(request.url)
    assert "AQVnewAccess" not in repr(grant)


async def test_answer_without_refresh_token_keeps_none(
        client: httpx.AsyncClient, oauth_api: respx.MockRouter) -> None:
    """An answer without refresh_token gives TokenGrant.refresh_token None (keep the old)."""
    oauth_api.post(TOKEN_URL).respond(200, json={"access_token": "AQVnew", "expires_in": "3600"})

    grant = await refresh(client)

    assert grant == TokenGrant(access_token="AQVnew", refresh_token=None, expires_in=3600.0)


async def test_answer_without_lifetime_has_no_expiry(
        client: httpx.AsyncClient, oauth_api: respx.MockRouter) -> None:
    """A missing or odd expires_in is None, not an error."""
    oauth_api.post(TOKEN_URL).respond(200, json={"access_token": "AQVnew", "expires_in": "soon",
                                                 "refresh_token": ""})

    grant = await refresh(client)

    assert grant == TokenGrant(access_token="AQVnew", refresh_token=None, expires_in=None)


@pytest.mark.parametrize(("refresh_token", "oauth", "says"), [
    pytest.param(None, OAUTH, "no refresh token", id="no-refresh-token"),
    pytest.param("", OAUTH, "approved partner apps", id="empty-refresh-token"),
    pytest.param(REFRESH, None, "LINKEDIN_CLIENT_ID", id="no-oauth-app"),
])
async def test_refresh_impossible_asks_the_member_to_reconnect(
        client: httpx.AsyncClient, oauth_api: respx.MockRouter, refresh_token: str | None,
        oauth: OAuthClient | None, says: str) -> None:
    """Without an app or a refresh token nothing is called: REAUTH, saying why."""
    outcome = await refresh(client, refresh_token=refresh_token, oauth=oauth)

    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.REAUTH
    assert says in (outcome.reason or "")
    assert "member must reconnect" in (outcome.reason or "")
    assert len(oauth_api.calls) == 0


REFUSALS: dict[str, tuple[int, Any, OutcomeKind, tuple[str, ...]]] = {
    "400-invalid-grant": (400, {"error": "invalid_grant", "error_description":
                                "The provided authorization grant or refresh token is invalid, "
                                "expired or revoked."}, OutcomeKind.REAUTH,
                          ("invalid_grant", "expired or revoked", "reconnect")),
    "401-invalid-grant": (401, {"error": "invalid_grant", "error_description": "revoked"},
                          OutcomeKind.REAUTH, ("invalid_grant",)),
    "400-invalid-request": (400, {"error": "invalid_request", "error_description":
                                  "A required parameter \"refresh_token\" is missing"},
                            OutcomeKind.REAUTH, ("invalid_request",)),
    "401-invalid-client": (401, {"error": "invalid_client", "error_description":
                                 "Client authentication failed"}, OutcomeKind.DEFER,
                           ("LINKEDIN_CLIENT_SECRET",)),
    "400-not-json": (400, b"Bad Request", OutcomeKind.REAUTH, ("HTTP 400",)),
    "429": (429, {"error": "too_many_requests"}, OutcomeKind.DEFER, ("throttling",)),
    "500": (500, {"error": "server_error"}, OutcomeKind.RETRY, ("HTTP 500",)),
    "503-html": (503, b"<html>Service Unavailable</html>", OutcomeKind.RETRY,
                 ("Service Unavailable",)),
    "200-without-token": (200, {"expires_in": 3600}, OutcomeKind.RETRY, ("without an access",)),
    "200-not-json": (200, b"<html>ok</html>", OutcomeKind.RETRY, ("without an access",)),
    "secret-echoed": (400, {"error": "invalid_grant", "error_description":
                            f"bad token {REFRESH} for client secret {OAUTH.client_secret}"},
                      OutcomeKind.REAUTH, ("bad token ***",)),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
async def test_refused_or_failed_refresh(
        client: httpx.AsyncClient, oauth_api: respx.MockRouter,
        case: tuple[int, Any, OutcomeKind, tuple[str, ...]]) -> None:
    """Each token-endpoint answer comes to its outcome, without any secret in it."""
    status, body, kind, says = case
    response = (httpx.Response(status, json=body) if isinstance(body, dict)
                else httpx.Response(status, content=body))
    oauth_api.post(TOKEN_URL).mock(return_value=response)

    outcome = await refresh(client)

    assert isinstance(outcome, Outcome)
    assert outcome.kind is kind, outcome
    for text in says:
        assert text in (outcome.reason or ""), outcome.reason
    assert_no_secret(outcome)


async def test_throttle_and_config_waits(client: httpx.AsyncClient,
                                         oauth_api: respx.MockRouter) -> None:
    """429 waits Retry-After (else the default); bad app credentials name the setting."""
    oauth_api.post(TOKEN_URL).mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "45"}), httpx.Response(429),
        httpx.Response(401, json={"error": "invalid_client"})])

    waits = [await refresh(client) for _ in range(3)]

    assert [w.retry_after for w in waits if isinstance(w, Outcome)] == [
        45.0, THROTTLE_SECONDS, CONFIG_DEFER_SECONDS]
    assert [w.pause_account for w in waits if isinstance(w, Outcome)] == [True, True, False]
    last = waits[2]
    assert isinstance(last, Outcome)
    assert last.detail["config_error"] == "LINKEDIN_CLIENT_SECRET"


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout,
                                   httpx.RemoteProtocolError])
async def test_transport_error_is_retried(client: httpx.AsyncClient,
                                          oauth_api: respx.MockRouter,
                                          error: type[httpx.TransportError]) -> None:
    """A refresh is repeatable: any transport failure is RETRY."""
    oauth_api.post(TOKEN_URL).mock(side_effect=error("gone"))

    outcome = await refresh(client)

    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.RETRY
    assert_no_secret(outcome)
