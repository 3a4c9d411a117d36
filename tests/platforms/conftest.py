"""Fixtures for adapter tests: a respx-mocked Graph API, a PublishContext, a post factory.

    token       the fake page access token every request carries
    graph       respx router for https://graph.facebook.com/{version}/{page} (routes: "/feed")
    gate        the begin_sending stand-in: counts calls, records what was sent before each
    context     PublishContext over a real httpx.AsyncClient (mocked by `graph`) and `gate`
    make_post   factory for a ClaimedPost on the facebook page
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from gate import Gate
from publisher.models import Account, ClaimedPost
from publisher.platforms.base import PublishContext
from publisher.settings import PlatformEndpoints

TOKEN = "EAAGfakePageToken0123456789abcdefSECRET"
PAGE_ID = "104857600123"


@pytest.fixture
def token() -> str:
    """The fake access token."""
    return TOKEN


@pytest.fixture
def page_id() -> str:
    """The facebook page the posts go to."""
    return PAGE_ID


@pytest.fixture
def endpoints() -> PlatformEndpoints:
    """The default (real) platform base URLs; respx intercepts them."""
    return PlatformEndpoints()


@pytest.fixture
def page_path(endpoints: PlatformEndpoints) -> str:
    """The URL path of the page's edges: /{version}/{page}."""
    return f"/{endpoints.facebook_api_version}/{PAGE_ID}"


@pytest.fixture
def graph(endpoints: PlatformEndpoints, page_path: str) -> Iterator[respx.MockRouter]:
    """A respx router for the page's Graph API edges; unmatched requests fail the test."""
    base = f"{endpoints.facebook}{page_path}"
    with respx.mock(base_url=base, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def gate(graph: respx.MockRouter) -> Gate:
    """The begin_sending coroutine the adapter gets."""
    return Gate(lambda: [call.request.url.path for call in graph.calls])


@pytest.fixture
async def context(graph: respx.MockRouter, gate: Gate,
                  endpoints: PlatformEndpoints) -> AsyncIterator[PublishContext]:
    """A PublishContext over a real AsyncClient whose transport respx mocks."""
    async with httpx.AsyncClient(timeout=5) as client:
        yield PublishContext(client=client, access_token=TOKEN, endpoints=endpoints,
                             begin_sending=gate)


@pytest.fixture
def make_post() -> Callable[..., ClaimedPost]:
    """Factory: make_post(post_type="text", content=..., link_url=..., media_urls=...)."""

    def make(post_type: str = "text", content: str | None = "Hello from the scheduler",
             link_url: str | None = None, media_urls: tuple[str, ...] = (),
             **overrides: Any) -> ClaimedPost:
        account = Account(id="acct-fb-1", platform="facebook", external_id=PAGE_ID,
                          status="active", status_reason=None,
                          access_token_encrypted="v1:encrypted", refresh_token_encrypted=None,
                          token_expires_at=None)
        values: dict[str, Any] = {
            "id": 42, "attempt": 1, "max_attempts": 5, "platform": "facebook",
            "post_type": post_type, "content": content, "title": None, "link_url": link_url,
            "media_urls": media_urls, "options": {}, "priority": 0, "scheduled_at": None,
            "account": account, **overrides}
        return ClaimedPost(**values)

    return make
