"""YouTube ``videos.insert`` with the resumable upload protocol, and ``videos.list``.

POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status
     JSON {snippet, status}; X-Upload-Content-Length, X-Upload-Content-Type
     -> 200, ``Location: .../upload/youtube/v3/videos?uploadType=resumable&upload_id=S``
PUT  <Location>  ``Content-Range: bytes a-b/total`` (or the whole body): bytes are counted
     and dropped; 308 + ``Range: bytes=0-N`` until the last byte, then 200 + the video.
PUT  <Location>  ``Content-Range: bytes */total``, empty: probe (308, or 200 + the video).
GET  /youtube/v3/videos?id=a,b&part=snippet,status

The channel is ``snippet.channelId`` when the client sends it (read-only, so ignored by the
real API), else the bearer token's text after its last ``token-`` (``yt-token-UC1`` ->
``UC1``), else the whole token. Faults hit the call that carries the last byte;
``upload_interrupt`` and ``upload_token_expired`` hit any chunk. Errors are Google-shaped.

A chunk PUT or probe may go without a token (the session URI is the credential); one that
carries a token has it checked: expired or revoked, or of another channel than the token that
opened the session (``channel_of``), is 401 authError, as a token that expired during a long
upload is. A token expired by ``upload_token_expired`` stays expired for every call; a token
refreshed from it (``POST /token``) works.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from publisher.simulator.base import (
    Abort,
    Outcome,
    Request,
    Response,
    Route,
    base64_number,
    json_body,
    json_response,
    route,
)
from publisher.simulator.oauth import channel_of
from publisher.simulator.state import GENERIC_FAULTS, SimState

UPLOAD = r"/upload/youtube/v3/videos"
PACIFIC = ZoneInfo("America/Los_Angeles")
PRIVACY = frozenset({"public", "unlisted", "private"})
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
UPLOAD_FAULTS = ("upload_interrupt", "upload_token_expired")
_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")


def google_error(
    status: int,
    reason: str,
    message: str,
    domain: str = "global",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    """A Google API error body."""
    detail: dict[str, Any] = {"message": message, "domain": domain, "reason": reason}
    if status == 401:
        detail |= {"location": "Authorization", "locationType": "header"}
    error = {
        "code": status,
        "message": message,
        "errors": [detail],
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    return json_response({"error": error}, status, headers)


def _bad(reason: str, message: str) -> Response:
    return google_error(400, reason, message, "youtube.video")


@dataclass(slots=True, kw_only=True)
class Session:
    """One resumable upload: its metadata, size and how many bytes arrived."""

    id: str
    channel: str
    snippet: dict[str, Any]
    status: dict[str, Any]
    total: int
    created: float
    opened_by: str = ""
    """The channel of the token that opened the session (chunks must carry the same)."""
    offset: int = 0
    video: dict[str, Any] | None = field(default=None)


class YouTube:
    """The simulated YouTube Data API v3 (uploads)."""

    name = "youtube"

    def __init__(self, state: SimState) -> None:
        """Serve YouTube from ``state``."""
        self.state = state
        self.sessions: dict[str, Session] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self.inserts: Counter[tuple[str, date]] = Counter()
        self.uploads: Counter[tuple[str, date]] = Counter()
        state.on_reset.append(self._clear)

    def _clear(self) -> None:
        self.sessions.clear()
        self.videos.clear()
        self.inserts.clear()
        self.uploads.clear()

    def routes(self) -> Sequence[Route]:
        """Open a session, send bytes (or probe), list videos."""
        return [
            route(self, "POST", UPLOAD, self.open_session),
            route(
                self,
                "PUT",
                UPLOAD,
                self.put,
                publishing=self.completes,
                faults=(*GENERIC_FAULTS, *UPLOAD_FAULTS),
                idle_faults=UPLOAD_FAULTS,
                streaming=True,
            ),
            route(self, "GET", r"/youtube/v3/videos", self.list_videos),
        ]

    # -- platform hooks -------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Bearer token; on the session URI only when one is sent, and then it must be valid
        and of the channel that opened the session."""
        token = request.bearer()
        if request.method == "PUT":
            session = self.sessions.get(request.params.get("upload_id", ""))
            if not token or session is None:
                return None
            if self._refused(token) or channel_of(token) != session.opened_by:
                return google_error(401, "authError", "Invalid Credentials")
            return None
        if not token:
            return google_error(401, "required", "Login Required.")
        if self._refused(token):
            return google_error(401, "authError", "Invalid Credentials")
        return None

    def _refused(self, token: str) -> bool:
        return "revoked" in token or "expired" in token or token in self.state.expired_tokens

    def account_of(self, request: Request) -> str:
        """The channel: the session's, ``snippet.channelId``, or from the token."""
        if request.method == "PUT":
            session = self.sessions.get(request.params.get("upload_id", ""))
            return session.channel if session is not None else ""
        snippet = (json_body(request) or {}).get("snippet")
        channel = snippet.get("channelId") if isinstance(snippet, dict) else None
        return channel if isinstance(channel, str) and channel else channel_of(request.bearer())

    def fault(self, kind: str, request: Request) -> Response:
        """Google's answer for each fault kind."""
        if kind == "throttle":
            return google_error(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
        if kind == "rate_limit_429":
            retry = str(self.state.config.retry_after).encode()
            return google_error(
                429,
                "rateLimitExceeded",
                "Rate Limit Exceeded",
                "usageLimits",
                headers=[(b"retry-after", retry)],
            )
        if kind == "token_expired":
            return google_error(401, "authError", "Invalid Credentials")
        if kind == "permission":
            return google_error(403, "forbidden", "Forbidden", "youtube.video")
        if kind == "bad_input":
            return google_error(400, "badRequest", "Bad Request")
        if kind == "upload_token_expired":
            token = request.bearer()
            if token:
                self.state.expired_tokens.add(token)
            return google_error(401, "authError", "Invalid Credentials")
        return google_error(500, "backendError", "Backend Error")  # also error_after_create

    def not_found(self, request: Request) -> Response:
        """404 in Google's shape."""
        return google_error(404, "notFound", f"Not Found: {request.path}")

    def decorate(self, request: Request, response: Response) -> None:
        """Google sends no usage headers."""

    # -- sessions -------------------------------------------------------------------

    def open_session(self, request: Request) -> Response:
        """Check the metadata and quotas; answer with the session URI."""
        params = request.params
        if params.get("uploadType") != "resumable":
            return google_error(400, "badRequest", "The simulator supports uploadType=resumable")
        if "snippet" not in params.get("part", "").split(","):
            return google_error(400, "required", "Required parameter: part (with snippet)")
        body = json_body(request)
        if body is None:
            return google_error(400, "parseError", "Parse Error")
        snippet, status = body.get("snippet"), body.get("status") or {}
        if not isinstance(snippet, dict) or not isinstance(status, dict):
            return _bad("invalidVideoMetadata", "snippet and status must be objects")
        invalid = _check_metadata(snippet, status)
        if invalid is not None:
            return invalid
        try:
            total = int(request.headers.get("x-upload-content-length", ""))
        except ValueError:
            total = 0
        if total <= 0:
            return google_error(400, "badContent", "X-Upload-Content-Length must be > 0")
        kind = request.headers.get("x-upload-content-type", "video/*")
        if not kind.startswith("video/") and kind != "application/octet-stream":
            return google_error(400, "badContent", f"Media type '{kind}' is not supported.")
        channel = self.account_of(request)
        day = datetime.now(PACIFIC).date()
        config = self.state.config
        if self.inserts[(channel, day)] >= config.youtube_daily_uploads:
            return google_error(
                403,
                "quotaExceeded",
                "The request cannot be completed because you have exceeded your quota.",
                "youtube.quota",
            )
        limit = config.youtube_channel_uploads
        if limit is not None and self.uploads[(channel, day)] >= limit:
            return _bad(
                "uploadLimitExceeded", "The user has exceeded the number of videos they may upload."
            )
        self.inserts[(channel, day)] += 1
        session = Session(
            id=secrets.token_urlsafe(18),
            channel=channel,
            snippet=snippet,
            status=status,
            total=total,
            created=time.time(),
            opened_by=channel_of(request.bearer()),
        )
        self.sessions[session.id] = session
        location = f"{request.base_url}{UPLOAD}?uploadType=resumable&upload_id={session.id}"
        headers = [(b"location", location.encode()), (b"x-guploader-uploadid", session.id.encode())]
        return Response(status=200, headers=headers)

    def _session(self, request: Request) -> Session | None:
        session = self.sessions.get(request.params.get("upload_id", ""))
        if session is None:
            return None
        if time.time() > session.created + self.state.config.youtube_session_ttl:
            del self.sessions[session.id]
            return None
        return session

    def _span(self, request: Request, session: Session) -> tuple[int, int] | Response | None:
        """The chunk's ``(first, end)`` byte offsets, None for a probe, or a 400."""
        header = request.headers.get("content-range")
        if header is None:
            if request.received > session.total:
                return google_error(400, "badRequest", "The body is longer than the upload")
            return (0, request.received) if request.received else None
        match = _RANGE.fullmatch(header.strip())
        if match is None or match.group(3) not in ("*", str(session.total)):
            return google_error(400, "badRequest", f"Invalid Content-Range {header!r}")
        if match.group(1) is None:
            return None
        first, last = int(match.group(1)), int(match.group(2))
        if first != session.offset:
            return google_error(
                400,
                "badRequest",
                f"Content-Range starts at {first} but {session.offset} bytes were received",
            )
        if last - first + 1 != request.received or last >= session.total:
            return google_error(400, "badRequest", f"Content-Range {header!r} does not match body")
        return first, last + 1

    def completes(self, request: Request) -> bool:
        """Whether this PUT carries the upload's last byte (a publishing call)."""
        session = self.sessions.get(request.params.get("upload_id", ""))
        if session is None or session.video is not None:
            return False
        span = self._span(request, session)
        return isinstance(span, tuple) and span[1] == session.total

    def put(self, request: Request) -> Outcome:
        """Take a chunk (or answer a probe): 308 until complete, then 200 + the video."""
        session = self._session(request)
        if session is None:
            return google_error(404, "notFound", "The upload session does not exist or expired.")
        if session.video is not None:
            return json_response(session.video)
        span = self._span(request, session)
        if isinstance(span, Response):
            return span
        if span is not None:
            first, end = span
            if request.fault == "upload_interrupt":
                session.offset = first + (end - first) // 2
                return Abort()
            session.offset = end
        if session.offset < session.total:
            headers = [(b"x-guploader-uploadid", session.id.encode())]
            if session.offset:
                headers.append((b"range", f"bytes=0-{session.offset - 1}".encode()))
            return Response(status=308, headers=headers)
        return json_response(self._complete(session))

    def _complete(self, session: Session) -> dict[str, Any]:
        """Create the video from a complete session and record it."""
        video_id = _video_id(self.state.new_id())
        now = time.time()
        snippet = session.snippet
        status = {
            "uploadStatus": "uploaded",
            "privacyStatus": session.status.get("privacyStatus", "public"),
            "license": "youtube",
            "embeddable": True,
            "publicStatsViewable": True,
            "selfDeclaredMadeForKids": bool(session.status.get("selfDeclaredMadeForKids")),
        }
        if session.status.get("publishAt"):
            status["publishAt"] = session.status["publishAt"]
        video = {
            "kind": "youtube#video",
            "etag": secrets.token_urlsafe(12),
            "id": video_id,
            "snippet": {
                "publishedAt": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "channelId": session.channel,
                "title": snippet["title"],
                "description": snippet.get("description", ""),
                "tags": snippet.get("tags", []),
                "categoryId": str(snippet.get("categoryId", "22")),
                "liveBroadcastContent": "none",
            },
            "status": status,
        }
        session.video = video
        self.videos[video_id] = video
        self.uploads[(session.channel, datetime.now(PACIFIC).date())] += 1
        self.state.record(
            platform=self.name,
            account=session.channel,
            post_id=video_id,
            message=snippet["title"],
            title=snippet["title"],
            description=snippet.get("description") or None,
        )
        return video

    def list_videos(self, request: Request) -> Response:
        """``GET /youtube/v3/videos?id=a,b``: the known ones."""
        ids = [i for i in request.params.get("id", "").split(",") if i]
        if not ids:
            return google_error(400, "missingRequiredParameter", "No filter selected.")
        items = [self.videos[i] for i in ids if i in self.videos]
        page = {"totalResults": len(items), "resultsPerPage": len(items)}
        return json_response(
            {"kind": "youtube#videoListResponse", "items": items, "pageInfo": page}
        )


def _check_metadata(snippet: dict[str, Any], status: dict[str, Any]) -> Response | None:
    """A 400 for an invalid title, description, privacy status or publishAt."""
    title = snippet.get("title")
    if (
        not isinstance(title, str)
        or not title.strip()
        or len(title) > 100
        or "<" in title
        or ">" in title
    ):
        return _bad("invalidTitle", "The request metadata specifies an invalid video title.")
    description = snippet.get("description", "")
    if (
        not isinstance(description, str)
        or len(description.encode()) > 5000
        or ("<" in description or ">" in description)
    ):
        return _bad(
            "invalidDescription", "The request metadata specifies an invalid video description."
        )
    privacy = status.get("privacyStatus", "public")
    if privacy not in PRIVACY:
        return _bad("invalidPrivacyStatus", f"Invalid privacyStatus {privacy!r}.")
    publish_at = status.get("publishAt")
    if publish_at is None:
        return None
    message = "The request metadata specifies an invalid scheduled publishing time."
    if privacy != "private" or not isinstance(publish_at, str):
        return _bad("invalidPublishAt", message + " publishAt needs privacyStatus private.")
    try:
        when = datetime.fromisoformat(publish_at.replace("Z", "+00:00"))
    except ValueError:
        return _bad("invalidPublishAt", message)
    if when.tzinfo is None or when.timestamp() <= time.time():
        return _bad("invalidPublishAt", message + " It must be a future time with a zone.")
    return None


def _video_id(number: str) -> str:
    """An 11-character video id from a numeric id."""
    return base64_number(int(number)).rjust(11, "A")[-11:]
