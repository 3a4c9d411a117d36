"""Instagram's two login types: each account's calls go to its own host, and only
Instagram Login tokens are refreshed (at graph.instagram.com/refresh_access_token)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import pytest
import respx
from instagram_support import (
    ENDPOINTS,
    TOKEN,
    USER,
    VERSION,
    PostFactory,
    form_of,
    make_post_fixture,
    quota,
)

from publisher.models import Account, ClaimedPost, OutcomeKind
from publisher.platforms.base import PublishContext, TokenGrant
from publisher.platforms.instagram.adapter import InstagramAdapter, graph_host

# The shared fixture: importing it here registers it under its short name (make_post).
FIXTURES = (make_post_fixture,)

FACEBOOK_HOST = ENDPOINTS.instagram           # graph.facebook.com's stand-in
INSTAGRAM_HOST = ENDPOINTS.instagram_graph    # graph.instagram.com's stand-in
CANNOT_PARSE = {"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                          "type": "OAuthException", "code": 190, "fbtrace_id": "Abc"}}
MEDIA_ID = "18000000000000001"


def with_login(post: ClaimedPost, login_type: str | None) -> ClaimedPost:
    assert post.account is not None
    return replace(post, account=replace(post.account, login_type=login_type))


class Hosts:
    """The Graph API answering on the expected host; the other host refuses the token, as
    the real one does, and counts what reached it."""

    def __init__(self, router: respx.MockRouter, expected: str) -> None:
        other = INSTAGRAM_HOST if expected == FACEBOOK_HOST else FACEBOOK_HOST
        self.wrong = router.route(host=urlsplit(other).hostname).respond(400, json=CANNOT_PARSE)
        base = f"{expected}/{VERSION}"
        self.quota = router.get(f"{base}/{USER}/content_publishing_limit").mock(
            return_value=quota(1))
        self.create = router.post(f"{base}/{USER}/media").respond(200, json={"id": "c1"})
        self.status = router.get(f"{base}/c1").respond(
            200, json={"id": "c1", "status_code": "FINISHED", "status": ""})
        self.publish = router.post(f"{base}/{USER}/media_publish").respond(
            200, json={"id": MEDIA_ID})
        self.permalink = router.get(f"{base}/{MEDIA_ID}").respond(
            200, json={"id": MEDIA_ID, "permalink": "https://www.instagram.com/p/ABC/"})


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """Both hosts mocked; a request to anything else fails the test."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mocked:
        yield mocked


@pytest.fixture
async def context() -> AsyncIterator[PublishContext]:
    async def begin_sending(state: object = None) -> bool:
        return True

    async with httpx.AsyncClient(timeout=5) as client:
        yield PublishContext(client=client, access_token=TOKEN, endpoints=ENDPOINTS,
                             begin_sending=begin_sending)


@pytest.mark.parametrize(("login_type", "host"), [
    pytest.param(None, FACEBOOK_HOST, id="unsaid-is-facebook"),
    pytest.param("facebook", FACEBOOK_HOST, id="facebook-login"),
    pytest.param("instagram", INSTAGRAM_HOST, id="instagram-login"),
])
async def test_publish_goes_to_the_accounts_host(
        router: respx.MockRouter, context: PublishContext, make_post: PostFactory,
        login_type: str | None, host: str) -> None:
    """Every call of a publish (quota, container, status, media_publish, permalink) goes to
    the login type's host, with the same versioned paths; none to the other host."""
    api = Hosts(router, host)
    adapter = InstagramAdapter(image_checks=(0.0,), video_checks=(0.0,))

    outcome = await adapter.publish(with_login(make_post(), login_type), context)

    assert (outcome.kind, outcome.platform_post_id) == (OutcomeKind.PUBLISHED, MEDIA_ID)
    assert not api.wrong.called
    for route in (api.quota, api.create, api.status, api.publish, api.permalink):
        assert route.call_count == 1
        assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"
    assert form_of(api.publish.calls.last.request) == {"creation_id": "c1"}


@pytest.mark.parametrize(("login_type", "host"), [
    pytest.param("facebook", FACEBOOK_HOST, id="facebook-login"),
    pytest.param("instagram", INSTAGRAM_HOST, id="instagram-login"),
])
async def test_reconcile_reads_the_container_on_the_accounts_host(
        router: respx.MockRouter, context: PublishContext, make_post: PostFactory,
        login_type: str, host: str) -> None:
    """The container a post under review left behind is looked up where it was made."""
    api = Hosts(router, host)
    api.status.respond(200, json={"id": "c1", "status_code": "ERROR", "status": "x"})
    post = with_login(make_post(publish_state={"container_id": "c1"}), login_type)

    outcome = await InstagramAdapter().reconcile(post, context)

    assert api.status.call_count == 1
    assert not api.wrong.called
    assert "never went out" in (outcome.reason or "")


def test_graph_host_by_login_type() -> None:
    """Only 'instagram' selects graph.instagram.com; anything else is Facebook Login."""
    account = Account(id="a", platform="instagram", external_id=USER, status="active",
                      status_reason=None, access_token_encrypted=None,
                      refresh_token_encrypted=None, token_expires_at=None)
    assert graph_host(ENDPOINTS, account) == FACEBOOK_HOST
    assert graph_host(ENDPOINTS, replace(account, login_type="facebook")) == FACEBOOK_HOST
    assert graph_host(ENDPOINTS, replace(account, login_type="instagram")) == INSTAGRAM_HOST


@pytest.mark.parametrize(("login_type", "refreshed"), [
    pytest.param(None, False, id="unsaid"),
    pytest.param("facebook", False, id="facebook-login"),
    pytest.param("instagram", True, id="instagram-login"),
])
def test_only_instagram_login_tokens_are_refreshed(login_type: str | None,
                                                   refreshed: bool) -> None:
    """A Facebook Login account holds a Page token that does not expire: never refreshed."""
    account = Account(id="a", platform="instagram", external_id=USER, status="active",
                      status_reason=None, access_token_encrypted=None,
                      refresh_token_encrypted=None, token_expires_at=None,
                      login_type=login_type)
    assert InstagramAdapter().refreshes(account) is refreshed


async def test_refresh_goes_to_graph_instagram_com(router: respx.MockRouter) -> None:
    """The refresh is GET {instagram_graph}/refresh_access_token, unversioned, with
    grant_type=ig_refresh_token; graph.facebook.com is never asked."""
    wrong = router.route(host=urlsplit(FACEBOOK_HOST).hostname).respond(400, json=CANNOT_PARSE)
    route = router.get(f"{INSTAGRAM_HOST}/refresh_access_token").respond(200, json={
        "access_token": "IGQVJnew", "token_type": "bearer", "expires_in": 5183944})
    async with httpx.AsyncClient(timeout=5) as client:
        grant = await InstagramAdapter().refresh_token(
            client, ENDPOINTS, access_token=TOKEN, refresh_token=None, oauth=None)
    assert isinstance(grant, TokenGrant)
    assert grant.access_token == "IGQVJnew"
    assert route.calls.last.request.url.params["grant_type"] == "ig_refresh_token"
    assert not wrong.called
