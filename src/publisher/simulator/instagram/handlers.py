"""Instagram content publishing through the Graph API: containers, publish, quota, media.

POST /{v}/{ig-user}/media                     create a container -> {"id"}
GET  /{v}/{container}?fields=status_code,status
POST /{v}/{ig-user}/media_publish?creation_id  publish a FINISHED container -> {"id"}
GET  /{v}/{ig-media}?fields=permalink,...
GET  /{v}/{ig-user}/media?fields=id,caption,timestamp,permalink
GET  /{v}/{ig-user}/content_publishing_limit?fields=quota_usage,config

Each path is served twice: at the root as graph.facebook.com (Instagram API with Facebook
Login, Facebook tokens) and under ``/_ig`` as graph.instagram.com (Instagram API with
Instagram Login, ``IG`` tokens); each refuses the other kind of token with code 190.

Container states: ``IN_PROGRESS`` (video, for ``video_processing_seconds``), ``FINISHED``,
``PUBLISHED``, ``EXPIRED`` (after ``instagram_container_ttl``) and ``ERROR`` (the
``container_error`` fault, subcode 2207001 in ``status``). Errors are Meta-shaped.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from publisher.simulator.base import (
    Request,
    Response,
    Route,
    base64_number,
    flag,
    json_response,
    route,
)
from publisher.simulator.meta import graph as meta
from publisher.simulator.meta.graph import VERSION, bad_param, meta_error
from publisher.simulator.state import SimState

ACCOUNT = r"(?P<account>[^/]+)"
WINDOW = 86400
MAX_CAPTION = 2200
CONTAINER_ERROR_SUBCODE = 2207001
MEDIA_FIELDS = ("id", "caption", "media_type", "media_product_type", "permalink", "timestamp")
CONTAINER_FIELDS = ("id", "status_code", "status")
STATUS_TEXT = {
    "IN_PROGRESS": "In Progress: Media is still being processed.",
    "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
    "PUBLISHED": "Published: Media has been successfully published.",
    "EXPIRED": "Expired: Media was not published within 24 hours.",
}
REFUSED: dict[str, tuple[int, int | None, str, str]] = {
    "PUBLISHED": (9007, None, "Already published", "The container is already published."),
    "IN_PROGRESS": (9007, 2207027, "Media ID is not available", "The media is not ready."),
    "EXPIRED": (-2, 2207020, "Media expired", "The container expired (24 h unpublished)."),
    "ERROR": (-1, CONTAINER_ERROR_SUBCODE, "Media failed", "Processing failed; recreate it."),
}
"""``media_publish`` refusals by container status: code, subcode, title, message."""


@dataclass(slots=True, kw_only=True)
class Container:
    """One media container: made by ``POST /media``, consumed by ``media_publish``."""

    id: str
    account: str
    media_type: str
    """IMAGE, VIDEO, REELS, STORIES or CAROUSEL."""
    carousel_item: bool
    video: bool
    caption: str | None
    urls: tuple[str, ...]
    created: float
    ready_at: float
    children: tuple[str, ...] = ()
    error_subcode: int | None = None
    media_id: str | None = None


def shortcode(media_id: str) -> str:
    """The permalink shortcode of a media id (base64 of the number, as Instagram does)."""
    return base64_number(int(media_id))


def _ids(raw: str) -> list[str]:
    """``children`` as ``a,b,c`` or a JSON list."""
    if raw.strip().startswith("["):
        try:
            decoded = json.loads(raw)
        except ValueError:
            return []
        return [str(v) for v in decoded] if isinstance(decoded, list) else []
    return [part.strip() for part in raw.split(",") if part.strip()]


class Instagram:
    """The simulated Instagram Graph API (professional accounts)."""

    name = "instagram"

    def __init__(self, state: SimState) -> None:
        """Serve Instagram from ``state``."""
        self.state = state
        self.containers: dict[str, Container] = {}
        self.media_types: dict[str, tuple[str, bool]] = {}
        """Published media id -> (container media_type, is a video)."""
        self.published: dict[str, deque[float]] = {}
        state.on_reset.append(self._clear)

    def _clear(self) -> None:
        self.containers.clear()
        self.media_types.clear()
        self.published.clear()

    def routes(self) -> Sequence[Route]:
        """Containers, publishing, quota, media listing and object lookup, on both hosts:
        graph.facebook.com (the root) and graph.instagram.com (``meta.INSTAGRAM_HOST``)."""
        return [
            r for host in ("", re.escape(meta.INSTAGRAM_HOST)) for r in self._host_routes(host)
        ]

    def _host_routes(self, host: str) -> list[Route]:
        base = rf"{host}{VERSION}/{ACCOUNT}"
        return [
            route(
                self,
                "POST",
                rf"{base}/media",
                self.create,
                idle_faults=("container_error", "meta_throttle"),
            ),
            route(
                self,
                "POST",
                rf"{base}/media_publish",
                self.publish,
                publishing=True,
                faults=meta.PUBLISHING_FAULTS,
            ),
            route(self, "GET", rf"{base}/media", self.list_media),
            route(self, "GET", rf"{base}/content_publishing_limit", self.limit),
            route(self, "GET", rf"{host}{VERSION}/(?P<object_id>[^/]+)", self.get_object),
        ]

    # -- platform hooks -------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Meta's token rules; each host refuses the other login type's tokens."""
        return meta.authenticate(request)

    def account_of(self, request: Request) -> str:
        """The IG user from the path, or the owner of a container or media object."""
        account = request.match.get("account")
        if account is not None:
            return account
        object_id = request.match.get("object_id", "")
        container = self.containers.get(object_id)
        if container is not None:
            return container.account
        rec = self.state.by_id.get(object_id)
        return rec.account if rec is not None and rec.platform == self.name else ""

    def fault(self, kind: str, request: Request) -> Response:
        """Meta's answers, with Instagram's throttle (80002) and server error (-1)."""
        if kind == "throttle":
            account = self.account_of(request)
            regain = self.state.config.regain_minutes
            return meta_error(
                400,
                80002,
                "(#80002) There have been too many calls to this Instagram account. Wait a "
                "bit and try again.",
                transient=True,
                headers=[meta.buc_header("instagram", account, 100, regain)],
            )
        if kind == "rate_limit_429":
            return meta.rate_limited(self.state.config.retry_after)
        if kind == "token_expired":
            return meta.expired()
        if kind == "permission":
            return meta_error(403, 10, "(#10) Application does not have permission for this action")
        if kind == "bad_input":
            return bad_param("(#100) Invalid parameter")
        if kind == "meta_throttle":
            nth = self.state.faults_injected[kind] - 1
            return meta.throttled(self.state, "instagram", self.account_of(request), nth)
        if kind == "meta_error_after_create":
            return meta.error_after_create(self.state.faults_injected[kind] - 1)
        return meta_error(  # transient, timeout_before, error_after_create: a 5xx
            500,
            -1,
            "An unexpected error has occurred. Please retry your request later.",
            subcode=CONTAINER_ERROR_SUBCODE,
            transient=True,
        )

    def not_found(self, request: Request) -> Response:
        """Meta's answer for an unknown object."""
        return meta.unknown_object(request)

    def decorate(self, request: Request, response: Response) -> None:
        """Meta usage headers, business use case type ``instagram``."""
        meta.decorate(self.state, self.name, "instagram", self.account_of(request), response)

    # -- containers -----------------------------------------------------------------

    def create(self, request: Request) -> Response:
        """``POST /{ig-user}/media``: image, reel, story, carousel item or carousel."""
        params = request.params
        account = request.match["account"]
        media_type = (params.get("media_type") or "IMAGE").upper()
        item = flag(params.get("is_carousel_item"), default=False)
        caption = params.get("caption") or None
        if caption is not None and len(caption) > MAX_CAPTION:
            return meta_error(400, 100, "The caption is too long.", subcode=2207010)
        if media_type == "CAROUSEL":
            return self._carousel(request, account, caption)
        image, video = params.get("image_url"), params.get("video_url")
        if media_type == "IMAGE":
            if not image:
                return bad_param("(#100) The parameter image_url is required.")
            urls = (image,)
        elif media_type in ("REELS", "VIDEO", "STORIES"):
            if media_type == "VIDEO" and not item:
                return bad_param(
                    "(#100) The media_type VIDEO is no longer supported for feed posts; use REELS."
                )
            if media_type != "STORIES" and not video:
                return bad_param("(#100) The parameter video_url is required.")
            if media_type == "STORIES" and not (image or video):
                return bad_param("(#100) The parameter image_url or video_url is required.")
            urls = (video or image or "",)
        else:
            return bad_param(f"(#100) Invalid media_type {media_type}.")
        if item and media_type not in ("IMAGE", "VIDEO"):
            return bad_param("(#100) Carousel items must be images or VIDEO.")
        is_video = bool(video) and media_type != "IMAGE"
        return self._new(request, account, media_type, item, caption, urls, is_video, ())

    def _carousel(self, request: Request, account: str, caption: str | None) -> Response:
        children = _ids(request.params.get("children", ""))
        if not 2 <= len(children) <= 10:
            return bad_param("(#100) A carousel needs between 2 and 10 children.")
        urls: list[str] = []
        for child_id in children:
            child = self.containers.get(child_id)
            if child is None or child.account != account or not child.carousel_item:
                return bad_param(f"(#100) Invalid carousel child {child_id}.")
            urls.extend(child.urls)
        return self._new(
            request, account, "CAROUSEL", False, caption, tuple(urls), False, tuple(children)
        )

    def _new(
        self,
        request: Request,
        account: str,
        media_type: str,
        item: bool,
        caption: str | None,
        urls: tuple[str, ...],
        is_video: bool,
        children: tuple[str, ...],
    ) -> Response:
        now = time.time()
        delay = self.state.config.video_processing_seconds if is_video else 0.0
        container = Container(
            id=self.state.new_id(),
            account=account,
            media_type=media_type,
            carousel_item=item,
            video=is_video,
            caption=caption,
            urls=urls,
            created=now,
            ready_at=now + delay,
            children=children,
            error_subcode=CONTAINER_ERROR_SUBCODE if request.fault == "container_error" else None,
        )
        self.containers[container.id] = container
        return json_response({"id": container.id})

    def status_of(self, container: Container) -> str:
        """The container's ``status_code`` now."""
        if container.media_id is not None:
            return "PUBLISHED"
        if container.error_subcode is not None:
            return "ERROR"
        now = time.time()
        if now >= container.created + self.state.config.instagram_container_ttl:
            return "EXPIRED"
        states = {self.status_of(self.containers[c]) for c in container.children}
        if "ERROR" in states:
            return "ERROR"
        if now < container.ready_at or "IN_PROGRESS" in states:
            return "IN_PROGRESS"
        return "FINISHED"

    def _error_subcode(self, container: Container) -> int:
        """The subcode of a container (or of its first failed child) in ERROR."""
        failed = [self.containers[c].error_subcode for c in container.children]
        return next((c for c in [container.error_subcode, *failed] if c), CONTAINER_ERROR_SUBCODE)

    def _status_text(self, container: Container, code: str) -> str:
        if code != "ERROR":
            return STATUS_TEXT[code]
        return f"Error: Media upload has failed with error code {self._error_subcode(container)}"

    # -- publishing -----------------------------------------------------------------

    def publish(self, request: Request) -> Response:
        """``POST /{ig-user}/media_publish``: a FINISHED container becomes a post."""
        account = request.match["account"]
        container = self.containers.get(request.params.get("creation_id", ""))
        if container is None or container.account != account:
            return bad_param("(#100) Param creation_id is not a valid container of this user.")
        if container.carousel_item:
            return bad_param("(#100) A carousel item cannot be published on its own.")
        code = self.status_of(container)
        if code in REFUSED:
            number, subcode, title, message = REFUSED[code]
            if code == "ERROR":
                subcode = self._error_subcode(container)
            return meta_error(400, number, message, subcode=subcode, user_title=title)
        if self._usage(account) >= self.state.config.instagram_quota:
            return meta_error(
                400,
                9,
                "(#9) The user has reached the limit of posts that can be published in 24 hours.",
                subcode=2207042,
                user_title="Content publishing limit reached",
            )
        media_id = self.state.new_id()
        container.media_id = media_id
        self.media_types[media_id] = (container.media_type, container.video)
        self.published.setdefault(account, deque()).append(time.time())
        self.state.record(
            platform=self.name,
            account=account,
            post_id=media_id,
            message=container.caption,
            media=container.urls,
        )
        return json_response({"id": media_id})

    def _usage(self, account: str) -> int:
        """Posts published by ``account`` in the last 24 h."""
        times = self.published.get(account)
        if not times:
            return 0
        cutoff = time.time() - WINDOW
        while times and times[0] <= cutoff:
            times.popleft()
        return len(times)

    def limit(self, request: Request) -> Response:
        """``GET /{ig-user}/content_publishing_limit``."""
        usage = self._usage(request.match["account"])
        config = {"quota_total": self.state.config.instagram_quota, "quota_duration": WINDOW}
        fields = request.params.get("fields") or "quota_usage,config"
        entry: dict[str, Any] = {}
        if "quota_usage" in fields:
            entry["quota_usage"] = usage
        if "config" in fields:
            entry["config"] = config
        return json_response({"data": [entry]})

    # -- reading --------------------------------------------------------------------

    def get_object(self, request: Request) -> Response | None:
        """A container's status or a media object's fields, ``GET /me``; None (not mine)
        otherwise."""
        object_id = request.match["object_id"]
        if object_id == "me":
            return meta.me(request)
        container = self.containers.get(object_id)
        if container is not None:
            fields = meta.fields_of(request, CONTAINER_FIELDS, ("id",), "ShadowIGMediaBuilder")
            if isinstance(fields, Response):
                return fields
            code = self.status_of(container)
            values = {
                "id": object_id,
                "status_code": code,
                "status": self._status_text(container, code),
            }
            return json_response(meta.pick(values, fields))
        if object_id not in self.media_types:
            return None
        fields = meta.fields_of(request, MEDIA_FIELDS, ("id",), "IGMedia")
        if isinstance(fields, Response):
            return fields
        return json_response(meta.pick(self._media_json(object_id), fields))

    def list_media(self, request: Request) -> Response:
        """``GET /{ig-user}/media``: published media, newest first, paged."""
        fields = meta.fields_of(request, MEDIA_FIELDS, ("id",), "IGMedia")
        if isinstance(fields, Response):
            return fields
        records = self.state.by_account.get((self.name, request.match["account"]), [])
        paged = meta.page(request, [rec.post_id for rec in reversed(records)])
        if isinstance(paged, Response):
            return paged
        window, paging = paged
        data = [meta.pick(self._media_json(media_id), fields) for media_id in window]
        return json_response({"data": data, "paging": paging})

    def _media_json(self, media_id: str) -> dict[str, Any]:
        rec = self.state.by_id[media_id]
        kind, video = self.media_types[media_id]
        code = shortcode(media_id)
        product = {"REELS": "REELS", "STORIES": "STORY"}.get(kind, "FEED")
        media_type = "CAROUSEL_ALBUM" if kind == "CAROUSEL" else "VIDEO" if video else "IMAGE"
        path = "reel" if kind == "REELS" else "p"
        return {
            "id": media_id,
            "caption": rec.message,
            "media_type": media_type,
            "media_product_type": product,
            "permalink": f"https://www.instagram.com/{path}/{code}/",
            "timestamp": meta.graph_time(rec.accepted_at),
        }
