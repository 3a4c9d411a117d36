"""Shared pieces of the YouTube adapter tests (no tests here): a respx model of the
resumable upload endpoint, a streaming media host, the sending gate, and fixtures.

The upload model follows shared/platforms.md section 4: POST .../videos?uploadType=
resumable opens a session (200 + Location); PUT <session> with Content-Range a-b/total
stores bytes and answers 308 + `Range: bytes=0-N`, or 200 with the video resource once the
last byte arrives; `Content-Range: bytes */total` probes; 404 once a session expired.

    youtube     FakeYouTube on a respx router (also mocks the media host and token endpoint)
    media       FakeMedia serving MEDIA_URL, honouring byte ranges (set .data / ... per test)
    gate        tests/gate.py's stand-in; sent_before: the chunks sent before each stamp
    context     PublishContext over a real AsyncClient, media host allowed
    make_post   factory for a youtube ClaimedPost
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from gate import Gate
from publisher.models import Account, ClaimedPost, Outcome
from publisher.platforms.base import PublishContext
from publisher.platforms.youtube.adapter import YouTubeAdapter
from publisher.settings import PlatformEndpoints

TOKEN = "ya29.a0FakeGoogleAccessToken-0123456789-SECRET"
Q = 256 * 1024                       # YouTube's chunk quantum; the tests' chunk size
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
UPLOAD_URL = "https://www.googleapis.com/upload/youtube/v3/videos"
MEDIA_HOST = "media.test"
MEDIA_URL = f"https://{MEDIA_HOST}/videos/clip.mp4"
CHANNEL = "UC0000000000000000000042"
_CHUNK_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def make_adapter(**overrides: Any) -> YouTubeAdapter:
    """The adapter under test: 256 KiB chunks, no backoff sleeps, a fixed clock."""
    values: dict[str, Any] = {"chunk_bytes": Q, "backoff": (0.0, 0.0, 0.0),
                              "clock": lambda: NOW, **overrides}
    return YouTubeAdapter(**values)


def video_bytes(size: int, seed: int = 7) -> bytes:
    """Deterministic pseudo-random video content."""
    return random.Random(seed).randbytes(size)


def google_error(status: int, reason: str, message: str = "Request failed",
                 domain: str = "youtube.video") -> dict[str, Any]:
    """A Google API error body."""
    return {"error": {"code": status, "message": message,
                      "errors": [{"domain": domain, "reason": reason, "message": message}]}}


def assert_no_token(outcome: Outcome) -> None:
    """Neither the reason nor the detail of an outcome carries the token."""
    assert TOKEN not in (outcome.reason or "")
    assert TOKEN not in repr(outcome.detail)


def ranges(youtube: FakeYouTube) -> list[tuple[int, int]]:
    """The (first, last) byte of every data PUT, in order."""
    return [(first, last) for _, first, last in youtube.chunks]


DESCRIBE = (0, 0)   # the one-byte range request that learns the media's size and type


def chunk_requests(start: int, total: int, chunk: int = Q) -> list[tuple[int, int | None]]:
    """The range requests (first, last byte) that fetch the media from `start`, one per
    chunk: what FakeMedia.requested holds after the chunks are sent."""
    return [(at, min(at + chunk, total) - 1) for at in range(start, total, chunk)]


def state_of(youtube: FakeYouTube, sid: str = "s1") -> dict[str, Any]:
    """The publish_state an outcome carries for session `sid`."""
    return {"upload_session": youtube.uri(sid), "total": youtube.session(sid).total}


# --- the upload endpoint ---------------------------------------------------------------------


@dataclass
class UploadSession:
    """One resumable session as the server keeps it."""

    sid: str
    total: int
    content_type: str
    metadata: dict[str, Any]
    keep_data: bool
    received: int = 0
    data: bytearray = field(default_factory=bytearray)
    digest: Any = field(default_factory=hashlib.sha256)
    video_id: str | None = None
    expired: bool = False


@dataclass
class Fault:
    """What the server does instead of a normal answer to one data PUT.

    kind: "before" raise `error` having stored nothing; "after" store the chunk, then
    raise `error` (the answer is lost); "partial" store only `keep` bytes, then raise
    `error` if given, else answer 308; "respond" answer `response` having stored nothing;
    "expire" the bearer token expires now: 401 authError, nothing stored, and that token is
    refused from then on (a token that expired during a long upload)."""

    kind: str
    error: Exception | None = None
    keep: int = 0
    response: httpx.Response | None = None


class FakeYouTube:
    """The resumable upload endpoint, on a respx router."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.sessions: dict[str, UploadSession] = {}
        self.opened: list[httpx.Request] = []
        self.open_responses: list[httpx.Response | Exception] = []  # scripted, FIFO
        self.chunks: list[tuple[str, int, int]] = []   # (session, first, last) per data PUT
        self.body_bytes = 0                             # every data PUT body, resends too
        self.probes: list[str] = []
        self.probe_faults: list[httpx.Response | Exception] = []   # FIFO, then the truth
        self.faults: dict[int, Fault] = {}             # data PUT index -> fault
        self.keep_data = True
        self.forget_calls = False                      # drop respx's call log (memory test)
        self.valid_tokens = {TOKEN}     # a bearer token not in it is refused: 401 authError
        self.refused: list[str] = []    # the tokens refused, in order
        self.open_route = router.post(UPLOAD_URL).mock(side_effect=self._open)
        self.put_route = router.put(UPLOAD_URL).mock(side_effect=self._put)

    def session(self, sid: str = "s1") -> UploadSession:
        return self.sessions[sid]

    def add_session(self, sid: str, total: int, received: int = 0,
                    data: bytes = b"") -> str:
        """A session a previous attempt opened; returns its URI."""
        session = UploadSession(sid, total, "video/mp4", {}, True, received=received)
        session.data += data[:received]
        self.sessions[sid] = session
        return self.uri(sid)

    @staticmethod
    def uri(sid: str) -> str:
        return f"{UPLOAD_URL}?uploadType=resumable&upload_id={sid}"

    def _denied(self, request: httpx.Request) -> httpx.Response | None:
        """401 authError for a token that is not (or no longer) valid."""
        token = request.headers["authorization"].removeprefix("Bearer ")
        if token in self.valid_tokens:
            return None
        self.refused.append(token)
        return httpx.Response(401, json=google_error(401, "authError", "Invalid Credentials",
                                                     domain="global"))

    def _open(self, request: httpx.Request) -> httpx.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        self.opened.append(request)
        if self.open_responses:
            scripted = self.open_responses.pop(0)
            if isinstance(scripted, Exception):
                raise scripted
            return scripted
        sid = f"s{len(self.sessions) + 1}"
        self.sessions[sid] = UploadSession(
            sid, int(request.headers["x-upload-content-length"]),
            request.headers["x-upload-content-type"], json.loads(request.content),
            self.keep_data)
        return httpx.Response(200, headers={"Location": self.uri(sid)})

    def _put(self, request: httpx.Request) -> httpx.Response:
        if self.forget_calls:
            self.router.reset()
        denied = self._denied(request)
        if denied is not None:
            return denied
        session = self.sessions[request.url.params["upload_id"]]
        content_range = request.headers["content-range"]
        if content_range.startswith("bytes */"):
            assert request.content == b""
            assert int(content_range.removeprefix("bytes */")) == session.total
            self.probes.append(session.sid)
            if self.probe_faults:
                scripted = self.probe_faults.pop(0)
                if isinstance(scripted, Exception):
                    raise scripted
                return scripted
            return self._state(session)
        return self._chunk(session, request, content_range)

    def _chunk(self, session: UploadSession, request: httpx.Request,
               content_range: str) -> httpx.Response:
        matched = _CHUNK_RANGE.fullmatch(content_range)
        assert matched is not None, content_range
        first, last, total = (int(g) for g in matched.groups())
        body = request.content
        assert total == session.total
        assert len(body) == last - first + 1
        assert last + 1 == total or len(body) % Q == 0, "non-final chunk not a 256 KiB multiple"
        assert request.headers["content-type"] == session.content_type
        index = len(self.chunks)
        self.chunks.append((session.sid, first, last))
        self.body_bytes += len(body)
        fault = self.faults.pop(index, None)
        if session.expired:
            return httpx.Response(404, text="Not Found")
        if fault is not None and fault.kind == "expire":
            self.valid_tokens.discard(request.headers["authorization"].removeprefix("Bearer "))
            denied = self._denied(request)
            assert denied is not None
            return denied
        if fault is not None and fault.kind in ("before", "respond"):
            if fault.error is not None:
                raise fault.error
            assert fault.response is not None
            return fault.response
        assert first == session.received, f"chunk starts at {first}, server has {session.received}"
        self._store(session, body[:fault.keep] if fault and fault.kind == "partial" else body)
        if fault is not None and fault.kind in ("after", "partial") and fault.error is not None:
            raise fault.error
        return self._state(session)

    def _store(self, session: UploadSession, body: bytes) -> None:
        session.received += len(body)
        session.digest.update(body)
        if session.keep_data:
            session.data += body
        if session.received == session.total:
            session.video_id = f"vid{session.sid}"

    def _state(self, session: UploadSession) -> httpx.Response:
        if session.expired:
            return httpx.Response(404, text="Not Found")
        if session.video_id is not None:
            return httpx.Response(200, json={
                "kind": "youtube#video", "id": session.video_id,
                "snippet": session.metadata.get("snippet", {}),
                "status": {**session.metadata.get("status", {}), "uploadStatus": "uploaded"}})
        headers = {"Range": f"bytes=0-{session.received - 1}"} if session.received else {}
        return httpx.Response(308, headers=headers)


# --- the media host --------------------------------------------------------------------------


class FakeMedia:
    """Streams the video from MEDIA_URL in small pieces, honouring `Range: bytes=N-M`.

    Every GET is noted in `requested` as the (first, last) byte its Range header asks for
    (last None for an open range, the entry None for no Range at all). A ranged answer is
    206 with `Content-Range: bytes N-M/TOTAL`; with honour_range False the host answers 200
    with the whole file, as hosts without range support do."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.data = video_bytes(4 * Q + 1000)
        self.size: int | None = None            # set with `blocks` for generated content
        self.blocks: Callable[[int], AsyncIterator[bytes]] | None = None  # offset -> body
        self.content_type = "video/mp4"
        self.with_length = True
        self.honour_range = True
        self.requested: list[tuple[int, int | None] | None] = []
        self.route = router.get(MEDIA_URL).mock(side_effect=self._get)

    @property
    def total(self) -> int:
        return self.size if self.size is not None else len(self.data)

    async def _pieces(self, start: int) -> AsyncIterator[bytes]:
        for at in range(start, len(self.data), 64 * 1024):
            yield self.data[at:at + 64 * 1024]

    def _get(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("range")
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", header or "")
        assert header is None or wanted is not None, f"not a single byte range: {header}"
        self.requested.append(None if wanted is None else (
            int(wanted.group(1)), int(wanted.group(2)) if wanted.group(2) else None))
        total = self.total
        start, end, status = 0, total - 1, 200
        headers = {"Content-Type": self.content_type}
        # An empty file has no satisfiable range: it is answered whole (200, no bytes).
        if wanted is not None and self.honour_range and total > 0:
            start = int(wanted.group(1))
            if start >= total:
                return httpx.Response(416, headers={"Content-Range": f"bytes */{total}"})
            if wanted.group(2):
                end = min(int(wanted.group(2)), total - 1)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        if self.with_length:
            headers["Content-Length"] = str(end - start + 1)
        body = self.blocks(start) if self.blocks is not None else self._pieces(start)
        return httpx.Response(status, headers=headers, content=_upto(body, end - start + 1))


async def _upto(body: AsyncIterator[bytes], length: int) -> AsyncIterator[bytes]:
    """The first `length` bytes of a streamed body; nothing more is pulled from it."""
    if length <= 0:
        return
    async for piece in body:
        yield piece[:length]
        length -= len(piece)
        if length <= 0:
            break


# --- the sending gate ------------------------------------------------------------------------


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router; any request it has no route for fails the test."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mocked:
        yield mocked


@pytest.fixture
def youtube(router: respx.MockRouter) -> FakeYouTube:
    """The upload endpoint."""
    return FakeYouTube(router)


@pytest.fixture
def media(router: respx.MockRouter) -> FakeMedia:
    """The media host serving MEDIA_URL."""
    return FakeMedia(router)


@pytest.fixture
def gate(youtube: FakeYouTube) -> Gate:
    """The begin_sending coroutine the adapter gets."""
    return Gate(lambda: list(youtube.chunks))


@pytest.fixture
async def context(router: respx.MockRouter, gate: Gate) -> AsyncIterator[PublishContext]:
    """A PublishContext over a real AsyncClient whose transport respx mocks."""
    async with httpx.AsyncClient(timeout=5) as client:
        yield PublishContext(client=client, access_token=TOKEN, endpoints=PlatformEndpoints(),
                             begin_sending=gate, media_hosts=frozenset({MEDIA_HOST}))


@pytest.fixture
def make_post() -> Callable[..., ClaimedPost]:
    """Factory: make_post(title=..., content=..., options=..., publish_state=...)."""

    def make(**overrides: Any) -> ClaimedPost:
        account = Account(id="acct-yt-1", platform="youtube", external_id=CHANNEL,
                          status="active", status_reason=None,
                          access_token_encrypted="v1:encrypted",
                          refresh_token_encrypted="v1:refresh", token_expires_at=None)
        values: dict[str, Any] = {
            "id": 7, "attempt": 1, "max_attempts": 5, "platform": "youtube",
            "post_type": "video", "content": "A short film about scheduling.",
            "title": "Scheduling, the movie", "link_url": None, "media_urls": (MEDIA_URL,),
            "options": {}, "priority": 0, "scheduled_at": None, "account": account,
            **overrides}
        return ClaimedPost(**values)

    return make
