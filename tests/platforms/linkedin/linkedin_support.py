"""Shared pieces for the LinkedIn adapter tests (no tests here): a respx-mocked LinkedIn,
a PublishContext, a post factory and the response shapes of shared/platforms.md section 3.

    harness()      async context manager -> LinkedIn: router, gate, context, route helpers
    make_post()    a ClaimedPost on the organization author (or `author=PERSON`)
    image_urn(n)   the URN initializeUpload hands out for the n-th image (1-based)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import respx

from gate import Gate
from publisher.models import Account, ClaimedPost, Outcome
from publisher.platforms.base import PublishContext
from publisher.platforms.linkedin.adapter import LinkedInAdapter
from publisher.settings import PlatformEndpoints

TOKEN = "AQVfakeLinkedInMemberToken0123456789SECRET"
ORG = "urn:li:organization:2414183"
PERSON = "urn:li:person:8675309aBc-_x"
API = "https://api.linkedin.com"
UPLOAD = "https://www.linkedin.com/dms-uploads/sp/D4E10AQ/uploaded-image/0"
CDN = "https://cdn.example.com"
IMAGES = tuple(f"{CDN}/img/{n}.jpg" for n in range(1, 21))
SHARE = "urn:li:share:7263012345678901234"
NOW = datetime(2026, 3, 10, 18, 30, tzinfo=UTC)   # 5 h 30 min before midnight UTC


def image_urn(n: int) -> str:
    """The image URN initializeUpload returns for the n-th upload (1-based)."""
    return f"urn:li:image:C4D10AQ{n:04d}"


def image_bytes(n: int) -> bytes:
    """Some bytes that stand in for the n-th image."""
    return f"\x89PNG-image-{n}-".encode() * 50


def adapter() -> LinkedInAdapter:
    """The adapter with no waiting between image checks and a fixed clock."""
    return LinkedInAdapter(image_check_seconds=0.0, clock=lambda: NOW)


def describe(request: httpx.Request) -> str:
    """'METHOD host/path' of a request, for asserting the order of calls."""
    return f"{request.method} {request.url.host}{request.url.path}"


@dataclass
class LinkedIn:
    """The mocked LinkedIn and everything a test needs around it."""

    router: respx.MockRouter
    gate: Gate
    context: PublishContext

    def posts(self, status: int = 201, urn: str | None = SHARE, **kwargs: Any) -> respx.Route:
        """POST /rest/posts answering `status` with the URN in x-restli-id."""
        headers = {"x-restli-id": urn} if urn else {}
        return self.router.post(f"{API}/rest/posts").respond(status, headers=headers, **kwargs)

    def initialize(self, count: int = 20) -> respx.Route:
        """initializeUpload handing out image_urn(1), image_urn(2), ... in order."""
        return self.router.post(f"{API}/rest/images", params={"action": "initializeUpload"}).mock(
            side_effect=[httpx.Response(200, json={"value": {
                "uploadUrlExpiresAt": 1773200000000, "uploadUrl": f"{UPLOAD}?n={n}",
                "image": image_urn(n)}}) for n in range(1, count + 1)])

    def upload(self, status: int = 201) -> respx.Route:
        """The PUT of the image bytes to uploadUrl."""
        return self.router.put(url__startswith=UPLOAD).respond(status)

    def media(self, url: str, content: bytes, content_type: str = "image/png",
              **headers: str) -> respx.Route:
        """The image at its public URL."""
        return self.router.get(url).respond(200, content=content,
                                            headers={"Content-Type": content_type, **headers})

    def all_media(self, count: int) -> list[respx.Route]:
        return [self.media(IMAGES[n - 1], image_bytes(n)) for n in range(1, count + 1)]

    def status(self, *statuses: str | int) -> respx.Route:
        """GET /rest/images/{urn}: each item a status name (200) or an HTTP status."""
        answers = [httpx.Response(s) if isinstance(s, int) else
                   httpx.Response(200, json={"status": s, "owner": ORG}) for s in statuses]
        route = self.router.get(url__startswith=f"{API}/rest/images/")
        return route.mock(side_effect=answers) if len(answers) > 1 else route.mock(
            return_value=answers[0])


@asynccontextmanager
async def harness() -> AsyncIterator[LinkedIn]:
    """A LinkedIn mocked with respx; requests to anything unmocked fail the test."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        async with httpx.AsyncClient(timeout=5) as client:
            gate = Gate(lambda: [describe(call.request) for call in router.calls])
            context = PublishContext(client=client, access_token=TOKEN,
                                     endpoints=PlatformEndpoints(), begin_sending=gate,
                                     media_hosts=frozenset({"cdn.example.com"}))
            yield LinkedIn(router, gate, context)


def make_post(post_type: str = "text", content: str | None = "Hello from the scheduler",
              *, author: str = ORG, media_urls: tuple[str, ...] = (),
              **overrides: Any) -> ClaimedPost:
    """A claimed LinkedIn post by `author`."""
    account = Account(id="acct-li-1", platform="linkedin", external_id=author, status="active",
                      status_reason=None, access_token_encrypted="v1:encrypted",
                      refresh_token_encrypted=None, token_expires_at=None)
    values: dict[str, Any] = {
        "id": 7, "attempt": 1, "max_attempts": 5, "platform": "linkedin",
        "post_type": post_type, "content": content, "title": None, "link_url": None,
        "media_urls": media_urls, "options": {}, "priority": 0, "scheduled_at": None,
        "account": account, **overrides}
    return ClaimedPost(**values)


def body_of(request: httpx.Request) -> Any:
    """The JSON body of a request."""
    return json.loads(request.content)


def assert_linkedin_headers(request: httpx.Request) -> None:
    """Every REST call carries the bearer token, the version and the Rest.li protocol."""
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["linkedin-version"] == PlatformEndpoints().linkedin_version
    assert request.headers["x-restli-protocol-version"] == "2.0.0"
    assert request.headers["content-type"] == "application/json"
    assert TOKEN not in str(request.url)


def assert_no_token(outcome: Outcome) -> None:
    """Neither the reason nor the detail of an outcome carries the token."""
    assert TOKEN not in repr(outcome)
