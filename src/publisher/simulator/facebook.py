"""Facebook Pages through the Graph API: feed posts, photos, permalinks, feed listing.

Paths carry the API version as a prefix (``/v25.0/...``, any ``v<major>.<minor>``).
Errors use Meta's body shape, ``{"error": {"message", "type", "code", ...}}``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from publisher.simulator.base import Request, Response, Route, flag, json_response, route
from publisher.simulator.state import MediaObject, PostRecord, SimState

VERSION = r"/v\d+\.\d+"
ACCOUNT = r"(?P<account>[^/]+)"
POST_FIELDS = ("id", "message", "created_time", "permalink_url", "link")
DEFAULT_FIELDS = ("id", "message", "created_time")
_INDEXED = re.compile(r"attached_media\[(\d+)\]")


def meta_error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    transient: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    """A Graph API error response."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = transient
    error["fbtrace_id"] = secrets.token_urlsafe(8)
    return json_response({"error": error}, status, headers)


def token_error(message: str, subcode: int | None = None) -> Response:
    """A 190 (invalid token) error, with the header Meta sends alongside it."""
    auth = f'OAuth "Facebook Platform" "invalid_token" "{message}"'.encode()
    return meta_error(400, 190, message, subcode=subcode, headers=[(b"www-authenticate", auth)])


def bad_param(message: str) -> Response:
    """A code 100 (invalid parameter) error."""
    return meta_error(400, 100, message)


def _expired() -> Response:
    return token_error("Error validating access token: Session has expired.", 463)


def _created_time(rec: PostRecord) -> str:
    return datetime.fromtimestamp(rec.accepted_at, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _unix(value: str) -> float:
    """A Graph time parameter: unix seconds or an ISO-8601 string."""
    try:
        return float(value)
    except ValueError:
        parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class Facebook:
    """The simulated Facebook Pages Graph API."""

    name = "facebook"

    def __init__(self, state: SimState) -> None:
        """Serve Facebook from ``state``."""
        self.state = state

    def routes(self) -> Sequence[Route]:
        """Feed and photo posts, feed listing, object lookup."""
        return [
            route(self, "POST", rf"{VERSION}/{ACCOUNT}/feed", self.post_feed, publishing=True),
            route(self, "POST", rf"{VERSION}/{ACCOUNT}/photos", self.post_photo, publishing=True),
            route(self, "GET", rf"{VERSION}/{ACCOUNT}/feed", self.list_feed),
            route(self, "GET", rf"{VERSION}/(?P<object_id>[^/]+)", self.get_object),
        ]

    # -- platform hooks -------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Bearer/OAuth header or ``access_token``; ``revoked``/``expired`` in it fail."""
        token = request.params.get("access_token", "")
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value.strip():
            token = value.strip()
        if not token:
            return token_error("An access token is required to request this resource.")
        if "revoked" in token:
            return token_error(
                "Error validating access token: The session has been invalidated because "
                "the user changed their password or Facebook has changed the session for "
                "security reasons.",
                460,
            )
        if "expired" in token:
            return _expired()
        return None

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
            retry = str(self.state.config.retry_after).encode()
            return meta_error(
                429,
                4,
                "(#4) Application request limit reached",
                transient=True,
                headers=[(b"retry-after", retry)],
            )
        if kind == "token_expired":
            return _expired()
        if kind == "permission":
            return meta_error(
                403, 200, "(#200) Requires pages_manage_posts permission to manage the object"
            )
        if kind == "bad_input":
            return bad_param("(#100) Invalid parameter")
        return meta_error(
            500,
            2,
            "An unexpected error has occurred. Please retry your request later.",
            transient=True,
        )

    def not_found(self, request: Request) -> Response:
        """Meta's answer for an unknown object."""
        obj = request.match.get("object_id", request.path)
        return bad_param(
            f"Unsupported get request. Object with ID '{obj}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation."
        )

    def decorate(self, request: Request, response: Response) -> None:
        """Add ``X-App-Usage`` and (for a page) ``X-Business-Use-Case-Usage``."""
        pct = self.state.app_usage_percent()
        app = {"call_count": pct, "total_time": pct, "total_cputime": pct}
        response.headers.append((b"x-app-usage", json.dumps(app).encode()))
        account = self.account_of(request)
        if account and not any(k == b"x-business-use-case-usage" for k, _ in response.headers):
            usage = self.state.usage_percent(self.name, account)
            response.headers.append(self._buc_header(account, usage, 0))

    def _buc_header(self, account: str, pct: int, regain: int) -> tuple[bytes, bytes]:
        usage = {
            account: [
                {
                    "type": "pages",
                    "call_count": pct,
                    "total_cputime": pct,
                    "total_time": pct,
                    "estimated_time_to_regain_access": regain,
                }
            ]
        }
        return (b"x-business-use-case-usage", json.dumps(usage).encode())

    def _throttled(self, request: Request) -> Response:
        account = self.account_of(request)
        header = self._buc_header(account, 100, self.state.config.regain_minutes)
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

    def get_object(self, request: Request) -> Response | None:
        """``GET /{post-id}?fields=...``; None (not mine) for an unknown id."""
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
            since = _unix(params["since"]) if params.get("since") else None
            until = _unix(params["until"]) if params.get("until") else None
            limit = max(1, min(100, int(params.get("limit") or 25)))
            offset = int(params.get("after") or 0)
        except ValueError:
            return bad_param("(#100) Invalid since, until, limit or after parameter")
        posts = [
            rec
            for rec in reversed(self.state.by_account.get((self.name, page), []))
            if (since is None or rec.accepted_at >= since)
            and (until is None or rec.accepted_at <= until)
        ]
        window = posts[offset : offset + limit]
        payload: dict[str, Any] = {"data": [self._post_json(rec, fields) for rec in window]}
        paging: dict[str, Any] = {
            "cursors": {"before": str(offset), "after": str(offset + len(window))}
        }
        if offset + limit < len(posts):
            query = {k: v for k, v in params.items() if k != "access_token"}
            query["after"] = str(offset + limit)
            host = request.headers.get("host", "127.0.0.1")
            paging["next"] = f"http://{host}{request.path}?{urlencode(query)}"
        payload["paging"] = paging
        return json_response(payload)

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
        raw = request.params.get("fields")
        if not raw:
            return DEFAULT_FIELDS
        fields = tuple(f.strip() for f in raw.split(",") if f.strip())
        for name in fields:
            if name not in POST_FIELDS:
                return bad_param(
                    f"(#100) Tried accessing nonexisting field ({name}) on node type (Post)"
                )
        return fields

    @staticmethod
    def _post_json(rec: PostRecord, fields: tuple[str, ...]) -> dict[str, Any]:
        page, _, post = rec.post_id.partition("_")
        values: dict[str, Any] = {
            "id": rec.post_id,
            "message": rec.message,
            "link": rec.link,
            "created_time": _created_time(rec),
            "permalink_url": f"https://www.facebook.com/{page}/posts/{post}",
        }
        out: dict[str, Any] = {"id": rec.post_id}
        out.update((name, values[name]) for name in fields if values[name] is not None)
        return out
