"""Facebook Pages through the Graph API: feed posts, photos, videos, permalinks, feed listing.

Paths carry the API version as a prefix (``/v25.0/...``, any ``v<major>.<minor>``).
Errors use Meta's body shape, ``{"error": {"message", "type", "code", ...}}``.

A video's id comes back at once; ``GET /{video-id}?fields=status`` then tells its
``status.video_status``: ``processing`` for ``video_processing_seconds``, then ``ready``, or
``error`` (with ``processing_phase.errors``) for a video drawn the ``video_error`` fault, which
never goes live and is recorded as no post
(developers.facebook.com/docs/graph-api/reference/video-status).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from publisher.simulator.base import (
    Handler,
    Request,
    Response,
    Route,
    flag,
    json_response,
    route,
)
from publisher.simulator.meta import graph as meta
from publisher.simulator.meta.graph import VERSION, bad_param, meta_error
from publisher.simulator.state import MediaObject, PostRecord, SimState

ACCOUNT = r"(?P<account>[^/]+)"
POST_FIELDS = ("id", "message", "created_time", "permalink_url", "link")
DEFAULT_FIELDS = ("id", "message", "created_time")
VIDEO_FIELDS = ("id", "status", "description", "title", "created_time", "permalink_url")
VIDEO_ERROR = {"code": 1363130, "message": "The video could not be processed."}


@dataclass(frozen=True, slots=True)
class Video:
    """A video ``POST /{page}/videos`` accepted, as its status reads later."""

    page: str
    created: float
    ready_at: float
    failed: bool
    description: str | None
    title: str | None
_INDEXED = re.compile(r"attached_media\[(\d+)\]")


class Facebook:
    """The simulated Facebook Pages Graph API."""

    name = "facebook"

    def __init__(self, state: SimState) -> None:
        """Serve Facebook from ``state``."""
        self.state = state
        self.videos: dict[str, Video] = {}
        state.on_reset.append(self.videos.clear)

    def routes(self) -> Sequence[Route]:
        """Feed and photo posts, feed listing, object lookup."""
        return [
            self._publishing("feed", self.post_feed),
            self._publishing("photos", self.post_photo),
            self._publishing("videos", self.post_video, "video_error"),
            route(self, "GET", rf"{VERSION}/{ACCOUNT}/feed", self.list_feed),
            route(self, "GET", rf"{VERSION}/(?P<object_id>[^/]+)", self.get_object),
        ]

    def _publishing(self, edge: str, handler: Handler, *own: str) -> Route:
        """A publishing edge of the page: every generic fault, Meta's own and the edge's."""
        return route(self, "POST", rf"{VERSION}/{ACCOUNT}/{edge}", handler, publishing=True,
                     faults=(*meta.PUBLISHING_FAULTS, *own))

    # -- platform hooks -------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Bearer/OAuth header or ``access_token``; ``revoked``/``expired`` in it fail."""
        return meta.authenticate(request)

    def account_of(self, request: Request) -> str:
        """The page id from the path (or the page part of a ``page_post`` object id)."""
        account = request.match.get("account")
        if account is not None:
            return account
        return request.match.get("object_id", "").partition("_")[0]

    def fault(self, kind: str, request: Request) -> Response:
        """Meta's answer for each HTTP-shaped fault kind."""
        if kind == "throttle":
            return self._throttled(request)
        if kind == "rate_limit_429":
            return meta.rate_limited(self.state.config.retry_after)
        if kind == "token_expired":
            return meta.expired()
        if kind == "permission":
            return meta_error(
                403, 200, "(#200) Requires pages_manage_posts permission to manage the object"
            )
        if kind == "bad_input":
            return bad_param("(#100) Invalid parameter")
        if kind == "meta_throttle":
            nth = self.state.faults_injected[kind] - 1
            return meta.throttled(self.state, "pages", self.account_of(request), nth)
        if kind == "meta_error_after_create":
            return meta.error_after_create(self.state.faults_injected[kind] - 1)
        return meta_error(  # transient, timeout_before, error_after_create: a 5xx
            500,
            2,
            "An unexpected error has occurred. Please retry your request later.",
            transient=True,
        )

    def not_found(self, request: Request) -> Response:
        """Meta's answer for an unknown object."""
        return meta.unknown_object(request)

    def decorate(self, request: Request, response: Response) -> None:
        """Add ``X-App-Usage`` and (for a page) ``X-Business-Use-Case-Usage``."""
        meta.decorate(self.state, self.name, "pages", self.account_of(request), response)

    def _throttled(self, request: Request) -> Response:
        account = self.account_of(request)
        header = meta.buc_header("pages", account, 100, self.state.config.regain_minutes)
        return meta_error(
            400,
            80001,
            "(#80001) There have been too many calls to this Page account. Wait a bit and "
            "try again. For more info, please refer to "
            "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
            transient=True,
            headers=[header],
        )

    # -- handlers -------------------------------------------------------------------

    def post_feed(self, request: Request) -> Response:
        """``POST /{page}/feed``: message, link, attached_media -> ``{"id": page_post}``."""
        page = request.match["account"]
        params = request.params
        try:
            media = self._attached(page, params)
        except ValueError as exc:
            return bad_param(str(exc))
        message = params.get("message") or None
        link = params.get("link") or None
        if not (message or link or media):
            return bad_param("(#100) Missing message or attachment")
        post_id = f"{page}_{self.state.new_id()}"
        self.state.record(
            platform=self.name,
            account=page,
            post_id=post_id,
            message=message,
            link=link,
            media=media,
        )
        return json_response({"id": post_id})

    def post_photo(self, request: Request) -> Response:
        """``POST /{page}/photos``: published makes a post, unpublished keeps the photo."""
        page = request.match["account"]
        params = request.params
        url = params.get("url")
        if not url:
            return meta_error(400, 324, "(#324) Requires upload file")
        photo_id = self.state.new_id()
        if not flag(params.get("published"), default=True):
            self.state.media[photo_id] = MediaObject(
                platform=self.name, account=page, object_id=photo_id, url=url
            )
            return json_response({"id": photo_id})
        post_id = f"{page}_{photo_id}"
        self.state.record(
            platform=self.name,
            account=page,
            post_id=post_id,
            message=params.get("caption") or params.get("message") or None,
            media=(url,),
        )
        return json_response({"id": photo_id, "post_id": post_id})

    def post_video(self, request: Request) -> Response:
        """``POST /{page}/videos`` (graph-video host): file_url, description, title. Under
        ``video_error`` the video is accepted, then fails processing: never a post."""
        page = request.match["account"]
        params = request.params
        url = params.get("file_url")
        if not url:
            return meta_error(400, 100, "(#100) Requires file_url or an upload")
        video_id = self.state.new_id()
        now = time.time()
        failed = request.fault == "video_error"
        self.videos[video_id] = Video(
            page=page,
            created=now,
            ready_at=now + self.state.config.video_processing_seconds,
            failed=failed,
            description=params.get("description") or None,
            title=params.get("title") or None,
        )
        if failed:
            return json_response({"id": video_id})
        self.state.record(
            platform=self.name,
            account=page,
            post_id=video_id,
            message=params.get("description") or params.get("title") or None,
            media=(url,),
        )
        return json_response({"id": video_id})

    def get_object(self, request: Request) -> Response | None:
        """``GET /{post-id}?fields=...`` (a video's too), ``GET /me``; None (not mine) for
        an unknown id."""
        if request.match["object_id"] == "me":
            return meta.me(request)
        video = self.videos.get(request.match["object_id"])
        if video is not None:
            return self._video(request, video)
        rec = self.state.by_id.get(request.match["object_id"])
        if rec is None or rec.platform != self.name:
            return None
        fields = self._fields(request)
        if isinstance(fields, Response):
            return fields
        return json_response(self._post_json(rec, fields))

    def list_feed(self, request: Request) -> Response:
        """``GET /{page}/feed``: the page's posts, newest first, with ``since``/``until``."""
        page = request.match["account"]
        params = request.params
        fields = self._fields(request)
        if isinstance(fields, Response):
            return fields
        try:
            since = meta.unix(params["since"]) if params.get("since") else None
            until = meta.unix(params["until"]) if params.get("until") else None
        except ValueError:
            return bad_param("(#100) Invalid since or until parameter")
        posts = [
            rec
            for rec in reversed(self.state.by_account.get((self.name, page), []))
            if (since is None or rec.accepted_at >= since)
            and (until is None or rec.accepted_at <= until)
        ]
        paged = meta.page(request, posts)
        if isinstance(paged, Response):
            return paged
        window, paging = paged
        data = [self._post_json(rec, fields) for rec in window]
        return json_response({"data": data, "paging": paging})

    def _video(self, request: Request, video: Video) -> Response:
        """A video node: ``status`` is ``{"video_status", "processing_phase"}``."""
        fields = meta.fields_of(request, VIDEO_FIELDS, ("id", "description"), "Video")
        if isinstance(fields, Response):
            return fields
        video_id = request.match["object_id"]
        if video.failed:
            status: dict[str, Any] = {"video_status": "error", "processing_phase": {
                "status": "error", "errors": [VIDEO_ERROR]}}
        elif time.time() < video.ready_at:
            status = {"video_status": "processing",
                      "processing_phase": {"status": "in_progress"}}
        else:
            status = {"video_status": "ready", "processing_phase": {"status": "complete"}}
        values: dict[str, Any] = {
            "id": video_id,
            "status": status,
            "description": video.description,
            "title": video.title,
            "created_time": meta.graph_time(video.created),
            "permalink_url": f"/{video.page}/videos/{video_id}/",
        }
        return json_response(meta.pick(values, fields))

    # -- helpers --------------------------------------------------------------------

    def _attached(self, page: str, params: dict[str, str]) -> tuple[str, ...]:
        """The URLs of the unpublished photos named by ``attached_media``."""
        items: list[Any] = []
        raw = params.get("attached_media")
        if raw:
            try:
                decoded = json.loads(raw)
            except ValueError:
                raise ValueError("(#100) param attached_media must be a JSON array") from None
            items = decoded if isinstance(decoded, list) else [decoded]
        indexed = sorted(
            (int(m.group(1)), value)
            for key, value in params.items()
            if (m := _INDEXED.fullmatch(key))
        )
        for _, value in indexed:
            try:
                items.append(json.loads(value))
            except ValueError:
                raise ValueError("(#100) param attached_media must hold JSON objects") from None
        return tuple(self._media_url(page, i, item) for i, item in enumerate(items))

    def _media_url(self, page: str, index: int, item: Any) -> str:
        fbid = str(item.get("media_fbid", "")) if isinstance(item, dict) else ""
        media = self.state.media.get(fbid)
        if media is None or media.platform != self.name or media.account != page:
            raise ValueError(f"(#100) attached_media[{index}] is not a valid media_fbid")
        return media.url

    @staticmethod
    def _fields(request: Request) -> tuple[str, ...] | Response:
        return meta.fields_of(request, POST_FIELDS, DEFAULT_FIELDS, "Post")

    @staticmethod
    def _post_json(rec: PostRecord, fields: tuple[str, ...]) -> dict[str, Any]:
        page, _, post = rec.post_id.partition("_")
        values: dict[str, Any] = {
            "id": rec.post_id,
            "message": rec.message,
            "link": rec.link,
            "created_time": meta.graph_time(rec.accepted_at),
            "permalink_url": f"https://www.facebook.com/{page}/posts/{post}",
        }
        return meta.pick(values, fields)
