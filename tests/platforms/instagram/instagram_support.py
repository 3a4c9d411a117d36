"""Fixtures and helpers for the Instagram adapter tests (no tests here).

    ig          respx router for {endpoints.instagram}/{version}; unmatched requests fail
    gate        the begin_sending stand-in: counts calls, records the requests before each
    context     PublishContext over a real httpx.AsyncClient that respx mocks
    make_post   factory for a ClaimedPost on the Instagram account USER

Test modules import the *_fixture functions (each registered under its short name, which
overrides the Facebook fixtures of the same name in conftest.py for those modules).

The Graph API is mocked from the shapes in shared/platforms.md section 2: containers answer
{"id"}, GET /{container}?fields=status_code,status answers {"status_code", "status", "id"},
media_publish answers {"id": media id}, GET /{media}?fields=permalink {"permalink"}.
Bases differ from the Facebook ones on purpose: a request to the wrong host fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from gate import Gate
from publisher.models import Account, ClaimedPost, Outcome
from publisher.platforms.base import PublishContext
from publisher.platforms.instagram.adapter import InstagramAdapter
from publisher.settings import PlatformEndpoints

TOKEN = "IGQVJfakeInstagramToken0123456789SECRET"
USER = "17841400000000001"
VERSION = "v99.0"
ENDPOINTS = PlatformEndpoints(facebook="https://graph.fb.test", instagram="https://graph.ig.test",
                              facebook_api_version=VERSION,
                              instagram_graph="https://graph.igl.test")
BASE = f"{ENDPOINTS.instagram}/{VERSION}"
IMAGE = "https://cdn.example.com/media/sunset.jpg"
VIDEO = "https://cdn.example.com/media/clip.mp4"
# In-process polls without the real pauses; the real delays are checked separately.
ADAPTER = InstagramAdapter(image_checks=(0.0, 0.0, 0.0), video_checks=(0.0,))
PostFactory = Callable[..., ClaimedPost]


def form_of(request: httpx.Request) -> dict[str, str]:
    """The urlencoded form fields of a request (each field once)."""
    fields = parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in fields.values()), fields
    return {name: values[0] for name, values in fields.items()}


def assert_authorized(request: httpx.Request) -> None:
    """The token travels in the Authorization header and nowhere in the URL or body."""
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(request.url)
    assert "access_token" not in str(request.url)
    assert TOKEN.encode() not in request.content


def assert_no_token(outcome: Outcome) -> None:
    """No part of an outcome carries the token."""
    assert TOKEN not in repr(outcome)


def status(code: str, text: str = "", container: str = "1790000001") -> httpx.Response:
    """A container status answer."""
    return httpx.Response(200, json={"status_code": code, "status": text, "id": container})


def quota(usage: int, total: int = 100) -> httpx.Response:
    """A content_publishing_limit answer."""
    return httpx.Response(200, json={"data": [{"quota_usage": usage, "config": {
        "quota_total": total, "quota_duration": 86400}}]})


def calls_to(router: respx.MockRouter, method: str, path: str) -> list[httpx.Request]:
    """The requests made to one method and path (path relative to BASE)."""
    full = f"/{VERSION}{path}"
    return [c.request for c in router.calls
            if c.request.method == method and c.request.url.path == full]


class Graph:
    """A scripted Instagram API on the `ig` router: containers c1, c2, ... as created."""

    def __init__(self, router: respx.MockRouter, *, usage: int = 3) -> None:
        self.router = router
        self.created = 0
        self.quota = router.get(f"/{USER}/content_publishing_limit").mock(
            return_value=quota(usage))
        self.create = router.post(f"/{USER}/media").mock(side_effect=self._create)
        self.publish = router.post(f"/{USER}/media_publish").respond(
            200, json={"id": "18000000000000001"})
        self.permalink = router.get("/18000000000000001").respond(
            200, json={"permalink": "https://www.instagram.com/p/ABC123/",
                       "id": "18000000000000001"})

    def _create(self, request: httpx.Request) -> httpx.Response:
        self.created += 1
        return httpx.Response(200, json={"id": f"c{self.created}"})

    def container(self, container_id: str, *answers: httpx.Response | str) -> respx.Route:
        """GET /{container}: one answer per poll (a string is a status_code)."""
        responses = [status(a, container=container_id) if isinstance(a, str) else a
                     for a in answers]
        return self.router.get(f"/{container_id}").mock(side_effect=responses)


@pytest.fixture(name="ig")
def ig_fixture() -> Iterator[respx.MockRouter]:
    """A respx router for the Instagram Graph API base; unmatched requests fail the test."""
    with respx.mock(base_url=BASE, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture(name="graph")
def graph_fixture(ig: respx.MockRouter) -> Graph:
    """The scripted API with quota room, container creation, media_publish and permalink."""
    ADAPTER._quotas.clear()  # each test scripts its own quota reading
    return Graph(ig)


@pytest.fixture(name="gate")
def gate_fixture(ig: respx.MockRouter) -> Gate:
    """The begin_sending coroutine the adapter gets."""
    return Gate(lambda: [f"{c.request.method} {c.request.url.path}" for c in ig.calls])


@pytest.fixture(name="context")
async def context_fixture(ig: respx.MockRouter, gate: Gate) -> AsyncIterator[PublishContext]:
    """A PublishContext over a real AsyncClient whose transport respx mocks."""
    async with httpx.AsyncClient(timeout=5) as client:
        yield PublishContext(client=client, access_token=TOKEN, endpoints=ENDPOINTS,
                             begin_sending=gate)


@pytest.fixture(name="make_post")
def make_post_fixture() -> PostFactory:
    """Factory: make_post(post_type="image", content=..., media_urls=..., options=...)."""

    def make(post_type: str = "image", content: str | None = "Golden hour #sunset",
             media_urls: tuple[str, ...] = (IMAGE,), **overrides: Any) -> ClaimedPost:
        account = Account(id="acct-ig-1", platform="instagram", external_id=USER,
                          status="active", status_reason=None,
                          access_token_encrypted="v1:encrypted", refresh_token_encrypted=None,
                          token_expires_at=None)
        values: dict[str, Any] = {
            "id": 7, "attempt": 1, "max_attempts": 5, "platform": "instagram",
            "post_type": post_type, "content": content, "title": None, "link_url": None,
            "media_urls": media_urls, "options": {}, "priority": 0, "scheduled_at": None,
            "account": account, **overrides}
        return ClaimedPost(**values)

    return make
