"""YouTube's resumable upload for one post: open a session, stream chunks, probe, resume.

The video comes into existence only when its last byte arrives, so the PUT of the final
chunk is the one irreversible call; every earlier request is invisible and safe to repeat.
The session URI is the upload's idempotency token: it travels in the outcome's `state`, and
a later attempt probes it (PUT, `Content-Range: bytes */total`, empty body) before sending
anything: 200/201 means the video exists, 308 + Range says where to resume, 404/410 means
the session expired and the upload starts over, unless the state also says
`final_chunk_sent` (the last chunk went unanswered): then the outcome stays UNKNOWN.

Memory stays flat in the file size: the media is streamed from its URL and at most one
chunk is buffered, as the pieces it was downloaded in (READ_BYTES each), which httpx
sends one by one. No buffer the size of a chunk is ever built: one 8 MiB buffer (and
its copies) per chunk lifts glibc's mmap threshold and fragments the C heap, which grew
a 400 MB upload's RSS to 440 MB on a CI machine while Python held 43 MB. Resuming at an
offset re-opens the media with a Range request.

As google-api-python-client's MediaUpload does (googleapiclient/http.py next_chunk and
_process_response): a 308 that names a new `Location` moves the session there (kept in
publish_state); media typed `application/octet-stream` is accepted as the discovery
document's mediaUpload.accept says. As google-auth's AuthorizedSession does
(google/auth/transport/requests.py): a 401 in the middle of the upload (the token expired
during a long upload) gets one fresh token from the token manager
(PublishContext.renew_token), then the upload resumes from the offset the session reports.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from publisher import redact
from publisher.models import Outcome, OutcomeKind
from publisher.platforms.base import PublishContext
from publisher.platforms.http import json_body, send, snippet
from publisher.platforms.media import MediaStream
from publisher.platforms.youtube.errors import (
    classify_youtube_error,
    has_google_error,
    is_dead_token,
)

CHUNK_QUANTUM = 256 * 1024               # YouTube wants chunks in multiples of this
DEFAULT_CHUNK_BYTES = 32 * CHUNK_QUANTUM  # 8 MiB
READ_BYTES = 1 << 20                     # what we ask the media download for at a time
UPLOAD_PATH = "/upload/youtube/v3/videos"
# The discovery document's videos.insert mediaUpload.accept: video/*, application/octet-stream
OCTET_STREAM = "application/octet-stream"
CLEARED_STATE: dict[str, Any] = {"upload_session": None, "total": None,
                                 "final_chunk_sent": None}
_RANGE = re.compile(r"bytes=0-(\d+)")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class Probe(enum.Enum):
    """What a probe or chunk answer says when it is neither an offset nor an outcome."""

    EXPIRED = "expired"   # 404/410: the session is gone
    FAILED = "failed"     # no usable answer (transport error, 5xx)


@dataclass(frozen=True, slots=True)
class Session:
    """An open upload session: where to send the bytes, and how many there are."""

    uri: str
    total: int
    final_sent: bool = False  # the last chunk may have arrived: never start over blindly

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"upload_session": self.uri, "total": self.total}
        if self.final_sent:
            state["final_chunk_sent"] = True
        return state


def same_origin(url: str, base: str) -> bool:
    """True when url is on the API's own scheme and host: only there may the token go."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def stored_session(state: dict[str, Any], base: str) -> Session | None:
    """The session a previous attempt left in publish_state, if it is usable."""
    uri, total = state.get("upload_session"), state.get("total")
    if isinstance(uri, str) and isinstance(total, int) and total > 0 and same_origin(uri,
                                                                                     base):
        return Session(uri, total, final_sent=state.get("final_chunk_sent") is True)
    return None


def _media_type(stream: MediaStream) -> str:
    return stream.content_type.split(";")[0].strip().lower()


def _release(response: httpx.Response) -> None:
    """A response and its stream refer to each other, so the request behind it, and the
    chunk in that request, would wait for the cycle collector: under load, many chunks at
    once. The body is already read; breaking the cycle frees the chunk right away."""
    response.stream = httpx.ByteStream(b"")


class Chunk:
    """One chunk of the video, kept as the pieces it was downloaded in. httpx sends it as
    a body of known length (the Content-Length header is ours), piece by piece; it can be
    sent again (a 401 in the middle of the upload repeats the request)."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces
        self.size = sum(len(piece) for piece in pieces)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


class ResumableUpload:
    """Uploads one post's video; lives for one publish call only."""

    def __init__(self, context: PublishContext, *, media_url: str, metadata: dict[str, Any],
                 watch_url: Callable[[str], str], chunk_bytes: int, backoff: Sequence[float],
                 clock: Callable[[], datetime], stored: Session | None) -> None:
        self._context = context
        self._media_url = media_url
        self._metadata = metadata
        self._watch_url = watch_url
        self._chunk_bytes = chunk_bytes
        self._backoff = tuple(backoff)
        self._probes_left = len(self._backoff)
        self._clock = clock
        self._base = context.endpoints.youtube_upload.rstrip("/")
        self._token = context.access_token
        self._auth = {"Authorization": f"Bearer {context.access_token}"}
        self._renewed = False  # the one token refresh this upload may ask for was used
        self._session = stored
        self._dropped = False  # a session we knew of is gone: clear it from the state
        self._media_type = "video/*"
        self._stamped = False  # begin_sending was called (once per attempt, at most)

    async def run(self) -> Outcome:
        position = 0
        if self._session is not None:
            probed = await self._probe_patiently()
            if isinstance(probed, Outcome):
                return probed
            if probed is Probe.FAILED:
                return self._keep(Outcome.retry("the stored upload session could not be "
                                                "probed; will probe it again"))
            if probed is Probe.EXPIRED and self._session.final_sent:
                return self._keep(Outcome.unknown(
                    "the upload session is gone and an earlier attempt may have delivered "
                    "its last chunk; the video may exist", stage="publish"))
            if probed is Probe.EXPIRED:
                self._start_over()
            elif self._session is not None and probed >= self._session.total:
                return self._keep(Outcome.retry("the upload session has every byte but no "
                                                "video yet; will probe it again"))
            else:  # 308 short of the end: the last chunk never arrived
                position = probed
                self._session = replace(self._session, final_sent=False)
        for _ in range(len(self._backoff) + 3):
            result = await self._round(position)
            if isinstance(result, Outcome):
                return result
            position = result
        return self._keep(Outcome.retry("the upload kept being interrupted; the next "
                                        "attempt resumes the session"))

    async def _round(self, position: int) -> int | Outcome:
        """Uploads from `position`; an int is where the next round starts."""
        described = await self._describe_media()
        if isinstance(described, Outcome):
            return self._keep(described)
        size, self._media_type = described
        if self._session is not None and size != self._session.total:
            # The media changed since the session opened: that session must never end.
            self._start_over()
        if self._session is None and position:
            return 0  # a new session starts from the first byte
        if self._session is None:
            opened = await self._open_session(size)
            if isinstance(opened, Outcome):
                return opened
            self._session = opened
        return await self._send_from(position)

    async def _describe_media(self) -> tuple[int, str] | Outcome:
        """The media's size and type, from a one-byte range request."""
        async with self._context.media().open(self._media_url, length=1) as stream:
            if isinstance(stream, Outcome):
                return stream
            ranged = _CONTENT_RANGE.match(stream.response.headers.get("content-range", ""))
            partial = stream.response.status_code == 206
            # A 206 states the size only in Content-Range; its Content-Length is the range's.
            size = int(ranged.group(3)) if ranged is not None else (
                None if partial else stream.length)
            problem = self._media_problem(_media_type(stream), stream.content_type, size)
            if problem is None and not partial and (size or 0) > self._chunk_bytes:
                problem = (f"the media host of {self._media_url!r} ignores Range requests, "
                           "which uploading a large video needs")
            if problem is not None:
                return Outcome.failed(problem, media_url=self._media_url)
            assert size is not None
            return size, _media_type(stream)

    def _media_problem(self, media_type: str, stated: str, size: int | None) -> str | None:
        if not (media_type.startswith("video/") or media_type == OCTET_STREAM):
            return (f"the media at {self._media_url!r} is {stated or 'untyped'!r}, "
                    f"not a video (video/* or {OCTET_STREAM})")
        if size is None:
            # The upload needs the size up front, and the size tells which chunk is the last
            # (irreversible) one. A host that streams without Content-Length does so by its
            # configuration, so retrying would not help.
            return (f"the media host did not state the size (Content-Length) of "
                    f"{self._media_url!r}; YouTube's resumable upload needs it up front")
        if size == 0:
            return f"the media at {self._media_url!r} is empty"
        return None

    async def _fetch(self, offset: int, length: int) -> Chunk | Outcome:
        """One chunk of the media, by a range request: what is in memory stays one chunk."""
        async with self._context.media().open(self._media_url, offset=offset,
                                              length=length) as stream:
            if isinstance(stream, Outcome):
                return stream
            if stream.response.status_code != 206:
                # The host ignores Range and sends everything: fine for a first small chunk.
                if offset or (stream.length or 0) > length:
                    return Outcome.failed(f"the media host of {self._media_url!r} ignores Range "
                                          "requests, which uploading a large video needs")
            else:
                ranged = _CONTENT_RANGE.match(stream.response.headers.get("content-range", ""))
                if ranged is None or int(ranged.group(1)) != offset:
                    return Outcome.retry(f"the media host answered another range than the "
                                         f"one asked for (from byte {offset})")
            pieces: list[bytes] = []
            received = 0
            try:
                async for piece in stream.chunks(READ_BYTES):
                    pieces.append(piece)
                    received += len(piece)
                    if received > length:
                        return Outcome.retry("the media host sent more than the range asked for")
            except httpx.HTTPError as exc:
                return Outcome.retry(f"the video download broke off at byte "
                                     f"{offset + received} ({type(exc).__name__})")
            if received != length:
                return Outcome.retry(f"the media host ended the video at byte "
                                     f"{offset + received}")
            return Chunk(pieces)

    async def _open_session(self, total: int) -> Session | Outcome:
        """POST the metadata; the session URI comes back in Location. Nothing is visible."""
        sent = await send(
            self._context.client, "POST", f"{self._base}{UPLOAD_PATH}", irreversible=False,
            params={"uploadType": "resumable", "part": "snippet,status"},
            content=json.dumps(self._metadata).encode(),
            headers={**self._auth, "Content-Type": "application/json; charset=UTF-8",
                     "X-Upload-Content-Length": str(total),
                     "X-Upload-Content-Type": self._media_type})
        if isinstance(sent, Outcome):
            return sent
        if sent.is_error:
            refused = classify_youtube_error(sent, now=self._clock())
            if is_dead_token(refused):
                renewed = await self._renew(refused)
                return renewed if renewed is not None else await self._open_session(total)
            return refused
        location = sent.headers.get("location")
        if not location:
            return Outcome.retry(f"YouTube opened no upload session (HTTP {sent.status_code}, "
                                 f"no Location): {snippet(sent)!r}")
        uri = urljoin(f"{self._base}/", location)
        if not same_origin(uri, self._base):
            return Outcome.retry(f"YouTube's upload session is on an unexpected host "
                                 f"({urlsplit(uri).netloc}); not sending the token there")
        return Session(uri, total)

    async def _send_from(self, offset: int) -> int | Outcome:
        """Sends the media from `offset`, chunk by chunk, each fetched just before it is sent."""
        assert self._session is not None
        total = self._session.total
        while offset < total:
            chunk = await self._fetch(offset, min(self._chunk_bytes, total - offset))
            if isinstance(chunk, Outcome):
                return self._keep(chunk)
            end = offset + chunk.size
            final = end == total
            if final and not self._stamped:
                # The session goes onto the row with the stamp, marked as possibly complete:
                # if this worker dies while the last chunk is out, the review check probes it.
                if not await self._context.begin_sending(
                        replace(self._session, final_sent=True).state()):
                    return self._keep(Outcome(kind=OutcomeKind.LEASE_LOST,
                                              reason="claim lost before sending"))
                self._stamped = True
            answer = await self._put_chunk(chunk, offset, final=final)
            del chunk
            if isinstance(answer, Outcome) or answer != end:
                return answer
            offset = end
        return self._keep(Outcome.retry(f"the upload stopped at byte {offset} of {total}"))

    async def _put_chunk(self, chunk: Chunk, offset: int, *, final: bool) -> int | Outcome:
        """Sends one chunk: the next offset YouTube expects, or an outcome."""
        assert self._session is not None
        last = offset + chunk.size - 1
        sent = await send(
            self._context.client, "PUT", self._session.uri, irreversible=final, content=chunk,
            headers={**self._auth, "Content-Type": self._media_type,
                     "Content-Length": str(chunk.size),
                     "Content-Range": f"bytes {offset}-{last}/{self._session.total}"})
        if isinstance(sent, Outcome):
            maybe_sent, why = sent.kind is OutcomeKind.UNKNOWN, sent.reason
        else:
            _release(sent)
            answer = self._answer(sent)
            if isinstance(answer, Outcome) and is_dead_token(answer):
                return await self._resume_with_new_token(answer)
            if final and sent.status_code >= 400 and not has_google_error(sent):
                # An error that is not the API's own (a proxy's 4xx) proves nothing about
                # the last byte: ask the session, as for a 5xx.
                answer = Probe.FAILED
            if answer is Probe.EXPIRED:
                return self._start_over()  # a definite 404/410: the last byte never landed
            # A 308 to the last chunk that says every byte is in, yet no video: ask again.
            if answer is not Probe.FAILED and not (final and answer == self._session.total):
                return answer
            maybe_sent, why = True, f"YouTube answered HTTP {sent.status_code}"
        if final and maybe_sent:
            self._session = replace(self._session, final_sent=True)
        return await self._recover(final=final and maybe_sent, why=why or "no answer")

    async def _recover(self, *, final: bool, why: str) -> int | Outcome:
        """After a failed chunk, ask the session where it stands. `final`: the last byte
        may have arrived, so a session that cannot say leaves the outcome unknown."""
        probed = await self._probe_patiently()
        if isinstance(probed, int) and self._session is not None:
            self._session = replace(self._session, final_sent=False)  # it did not arrive
        if isinstance(probed, int | Outcome):
            return probed
        if probed is Probe.EXPIRED and not final:
            return self._start_over()
        if final:
            return self._keep(Outcome.unknown(
                f"the last chunk of the video got no clear answer ({why}) and the upload "
                "session cannot tell whether it arrived; the video may exist", stage="publish"))
        return self._keep(Outcome.retry(f"the upload was interrupted ({why}); the next "
                                        "attempt resumes the session"))

    async def _renew(self, refused: Outcome) -> Outcome | None:
        """After a 401: one fresh token from the token manager, as google-auth's
        AuthorizedSession refreshes on a 401. None: renewed, repeat the request; else the
        outcome: the refusal itself when nothing can renew, why the refresh failed, or, for
        a token refused again right after its refresh, RETRY: the grant is alive (the refresh
        worked), so reconnecting would change nothing; the next attempt resumes."""
        renew = self._context.renew_token
        if renew is None or not is_dead_token(refused):
            return refused
        if self._renewed:
            return self._keep(Outcome.retry(
                "YouTube refused the access token again right after it was refreshed; the "
                "next attempt resumes the upload with a new token", **refused.detail))
        self._renewed = True
        fresh = await renew(self._token)
        if isinstance(fresh, Outcome):
            return self._keep(fresh)
        redact.remember(fresh)  # masked in whatever this upload reports
        self._token = fresh
        self._auth = {"Authorization": f"Bearer {fresh}"}
        return None

    async def _resume_with_new_token(self, refused: Outcome) -> int | Outcome:
        """A chunk refused with 401 (nothing of it was kept): the token expired during the
        upload. With a fresh token, the session says where to go on from."""
        renewed = await self._renew(refused)
        if renewed is not None:
            return renewed
        probed = await self._probe()
        if isinstance(probed, int | Outcome):
            return probed
        if probed is Probe.EXPIRED:
            return self._start_over()
        return await self._recover(final=False, why="the session did not answer after the "
                                                    "token was refreshed")

    def _start_over(self) -> int:
        self._session, self._dropped = None, True
        return 0

    async def _probe_patiently(self) -> int | Outcome | Probe:
        """Probes until the session answers clearly or the retry budget runs out."""
        while self._probes_left > 0:
            delay = self._backoff[len(self._backoff) - self._probes_left]
            self._probes_left -= 1
            if delay > 0:
                await asyncio.sleep(delay)
            probed = await self._probe()
            if probed is not Probe.FAILED:
                return probed
        return Probe.FAILED

    async def _probe(self) -> int | Outcome | Probe:
        assert self._session is not None
        sent = await send(self._context.client, "PUT", self._session.uri, irreversible=False,
                          content=b"", headers={
                              **self._auth, "Content-Range": f"bytes */{self._session.total}"})
        if isinstance(sent, Outcome):
            return Probe.FAILED
        answer = self._answer(sent)
        if isinstance(answer, Outcome) and is_dead_token(answer):
            renewed = await self._renew(answer)
            return renewed if renewed is not None else await self._probe()
        return answer

    def _answer(self, response: httpx.Response) -> int | Outcome | Probe:
        """What the session said: the next offset (308), the video (200/201), or not."""
        status = response.status_code
        if status == 308:
            moved = self._moved(response.headers.get("location"))
            if moved is not None:
                return moved
            matched = _RANGE.fullmatch(response.headers.get("range", "").strip())
            return int(matched.group(1)) + 1 if matched else 0
        if status in (200, 201):
            return self._video(response)
        if status in (404, 410):
            return Probe.EXPIRED
        if status >= 500 or status < 400:
            return Probe.FAILED  # no usable answer (an odd 2xx or 3xx included): ask again
        return self._keep(classify_youtube_error(response, now=self._clock()))

    def _moved(self, location: str | None) -> Outcome | None:
        """A 308 naming a new Location moves the session there (googleapiclient/http.py
        _process_response); the token goes only to the API's own origin."""
        if not location or self._session is None:
            return None
        uri = urljoin(self._session.uri, location)
        if not same_origin(uri, self._base):
            return self._keep(Outcome.retry(
                f"YouTube moved the upload session to an unexpected host "
                f"({urlsplit(uri).netloc}); not sending the token there"))
        self._session = replace(self._session, uri=uri)
        return None

    def _video(self, response: httpx.Response) -> Outcome:
        body = json_body(response)
        video_id = body.get("id") if body is not None else None
        if not isinstance(video_id, str) or not video_id:
            return self._keep(Outcome.unknown(
                f"YouTube says the upload is complete but sent no video id: "
                f"{snippet(response)!r}", http_status=response.status_code))
        return Outcome.published(video_id, self._watch_url(video_id))

    def _keep(self, outcome: Outcome) -> Outcome:
        """The outcome, carrying the session so the next attempt probes instead of
        starting over (or clearing it when the session is gone)."""
        if self._session is None:
            return replace(outcome, state={**outcome.state, **CLEARED_STATE}) \
                if self._dropped else outcome
        return replace(outcome, state={**outcome.state, **self._session.state()})
