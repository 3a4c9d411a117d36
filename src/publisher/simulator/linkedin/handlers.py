"""LinkedIn's Posts and Images APIs (``/rest/...``, versioned, Rest.li 2.0).

POST /rest/posts                          JSON post -> 201, ``x-restli-id: urn:li:share:N``
GET  /rest/posts?q=author&author=<urn>    the author's posts, newest first
GET  /rest/posts/{urn}                    one post
POST /rest/images?action=initializeUpload {"initializeUploadRequest": {"owner": urn}}
PUT  /_upload/linkedin/{image id}         the image bytes (counted, not kept) -> 201
GET  /rest/images/{urn}                   status WAITING_UPLOAD, then AVAILABLE
GET  /v2/userinfo                         OpenID Connect: the member behind the token

``/rest/`` calls need ``Authorization: Bearer``, ``LinkedIn-Version: YYYYMM`` (older than
``linkedin_sunset_before`` -> 426) and ``X-Restli-Protocol-Version: 2.0.0``. Errors look like
``{"status", "serviceErrorCode", "code", "message"}``; 429s carry no ``Retry-After``.

A post that repeats a live post of the same author (same commentary and content) is refused
with 422 "... Content is a duplicate of urn:li:share:N" (code ``DUPLICATE_POST`` in
``errorDetails.inputErrors``), as LinkedIn does (``linkedin_refuse_duplicates``); such
refusals are counted as ``duplicates_refused``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from publisher.simulator.base import (
    Request,
    Response,
    Route,
    json_body,
    json_response,
    route,
)
from publisher.simulator.state import GENERIC_FAULTS, SimState

AUTHOR = re.compile(r"urn:li:(person|organization):[A-Za-z0-9_-]+")
VERSION = re.compile(r"(\d{6})(\.\d{2})?")
VISIBILITIES = frozenset({"PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER"})
FEEDS = frozenset({"MAIN_FEED", "NONE"})
MAX_COMMENTARY = 3000
UPLOAD_URL_SECONDS = 86400
URN = r"(?P<urn>[^/]+)"
ContentKey = tuple[str, str, str | None, tuple[str, ...]]


def li_error(status: int, code: str, message: str, service: int | None = None) -> Response:
    """A LinkedIn error body."""
    body = {
        "status": status,
        "serviceErrorCode": status if service is None else service,
        "code": code,
        "message": message,
    }
    return json_response(body, status)


def invalid(message: str) -> Response:
    """A 422 validation error."""
    return li_error(422, "UNPROCESSABLE_ENTITY", message)


def duplicate(urn: str) -> Response:
    """LinkedIn's refusal of a post that repeats a live one: 422 naming that one, in the
    shape LinkedIn sends (a validation error: the code sits in errorDetails.inputErrors,
    there is no top-level code or serviceErrorCode), as captured from the real API in
    github.com/Arisamiga/Linkedin-RSS/issues/5."""
    body = {
        "errorDetailType": "com.linkedin.common.error.BadRequest",
        "message": "com.linkedin.content.common.exception.BadRequestResponseException: "
        f"Content is a duplicate of {urn}",
        "errorDetails": {
            "inputErrors": [
                {"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}
            ]
        },
        "status": 422,
    }
    return json_response(body, 422)


@dataclass(slots=True, kw_only=True)
class Image:
    """An image upload: initialized, then uploaded."""

    id: str
    owner: str
    expires_ms: int
    size: int | None = None

    @property
    def urn(self) -> str:
        """``urn:li:image:{id}``."""
        return f"urn:li:image:{self.id}"


class LinkedIn:
    """The simulated LinkedIn REST API."""

    name = "linkedin"

    def __init__(self, state: SimState) -> None:
        """Serve LinkedIn from ``state``."""
        self.state = state
        self.images: dict[str, Image] = {}
        self.posts: dict[str, dict[str, Any]] = {}
        self.by_content: dict[ContentKey, str] = {}
        """(author, commentary, link, media) -> the urn of the live post."""
        state.on_reset.append(self._clear)

    def _clear(self) -> None:
        self.images.clear()
        self.posts.clear()
        self.by_content.clear()

    def routes(self) -> Sequence[Route]:
        """Posts, image uploads and reads."""
        return [
            route(
                self,
                "POST",
                r"/rest/posts",
                self.create_post,
                publishing=True,
                faults=(*GENERIC_FAULTS, "linkedin_duplicate"),
            ),
            route(self, "GET", r"/rest/posts", self.list_posts),
            route(self, "GET", rf"/rest/posts/{URN}", self.get_post),
            route(self, "POST", r"/rest/images", self.initialize_upload),
            route(self, "GET", rf"/rest/images/{URN}", self.get_image),
            route(self, "PUT", r"/_upload/linkedin/(?P<image>[^/]+)", self.upload, streaming=True),
            route(self, "GET", r"/v2/userinfo", self.userinfo),
        ]

    # -- platform hooks -------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Bearer token first; then, for ``/rest/``, the version and protocol headers."""
        denied = self._token(request.bearer())
        if denied is not None or not request.path.startswith("/rest/"):
            return denied
        version = request.headers.get("linkedin-version", "").strip()
        if not version:
            return li_error(
                400,
                "VERSION_MISSING",
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
            )
        match = VERSION.fullmatch(version)
        if match is None:
            return li_error(400, "INVALID_VERSION", f"Invalid version {version}: use YYYYMM")
        if match.group(1) < self.state.config.linkedin_sunset_before:
            return li_error(
                426, "NONEXISTENT_VERSION", f"Requested version {version} is not active"
            )
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return li_error(
                400, "INVALID_PROTOCOL_VERSION", "X-Restli-Protocol-Version must be 2.0.0"
            )
        return None

    @staticmethod
    def _token(token: str) -> Response | None:
        if not token:
            return li_error(401, "EMPTY_ACCESS_TOKEN", "Empty oauth2_access_token", 65604)
        if "revoked" in token:
            return li_error(
                401,
                "REVOKED_ACCESS_TOKEN",
                "The token used in the request has been revoked by the user",
                65601,
            )
        if "expired" in token:
            return li_error(
                401, "INVALID_ACCESS_TOKEN", "The token used in the request has expired", 65600
            )
        return None

    def account_of(self, request: Request) -> str:
        """The author (posts), the owner (images) or the uploading image's owner."""
        image = self.images.get(request.match.get("image", ""))
        if image is not None:
            return image.owner
        author = request.params.get("author")
        if author:
            return author
        body = json_body(request) or {}
        owner = (body.get("initializeUploadRequest") or {}).get("owner")
        return owner if isinstance(owner, str) else ""

    def fault(self, kind: str, request: Request) -> Response:
        """LinkedIn's answer for each fault kind (429s without ``Retry-After``)."""
        if kind == "throttle":
            return li_error(
                429,
                "TOO_MANY_REQUESTS",
                "Resource level throttle MEMBER DAY limit for calls to this resource is reached.",
            )
        if kind == "rate_limit_429":
            return li_error(
                429,
                "TOO_MANY_REQUESTS",
                "Resource level throttle APPLICATION DAY limit for calls to this resource "
                "is reached.",
            )
        if kind == "token_expired":
            return self._token("expired") or invalid("expired")
        if kind == "permission":
            return li_error(
                403,
                "ACCESS_DENIED",
                "Not enough permissions to access: partnerApiPostsExternal.CREATE.20240101",
                100,
            )
        if kind == "bad_input":
            return invalid("ERROR :: /commentary :: invalid request body")
        if kind == "linkedin_duplicate":
            return duplicate(request.created or "urn:li:share:0")
        # transient, timeout_before, error_after_create: a 5xx, 500 and 503 in turn
        if self.state.faults_injected[kind] % 2:
            return li_error(500, "INTERNAL_SERVER_ERROR", "Internal Server Error")
        return li_error(503, "SERVICE_UNAVAILABLE", "Service Unavailable")

    def not_found(self, request: Request) -> Response:
        """404 in LinkedIn's shape."""
        return li_error(404, "NOT_FOUND", f"Not found: {request.path}")

    def decorate(self, request: Request, response: Response) -> None:
        """LinkedIn documents no usage headers."""

    # -- posts ----------------------------------------------------------------------

    def create_post(self, request: Request) -> Response:
        """``POST /rest/posts``: validate, record, 201 with ``x-restli-id``."""
        body = json_body(request)
        if body is None:
            return invalid("The request body must be a JSON object")
        author = body.get("author")
        if not isinstance(author, str) or not AUTHOR.fullmatch(author):
            return invalid(f"ERROR :: /author :: {author!r} is not a person or organization urn")
        commentary = body.get("commentary", "")
        if not isinstance(commentary, str) or len(commentary) > MAX_COMMENTARY:
            return invalid(f"ERROR :: /commentary :: must be text of at most {MAX_COMMENTARY}")
        if body.get("visibility") not in VISIBILITIES:
            return invalid("ERROR :: /visibility :: must be one of " + ", ".join(VISIBILITIES))
        distribution = body.get("distribution")
        if not isinstance(distribution, dict) or distribution.get("feedDistribution") not in FEEDS:
            return invalid("ERROR :: /distribution/feedDistribution :: missing or invalid")
        if body.get("lifecycleState") != "PUBLISHED":
            return invalid("ERROR :: /lifecycleState :: must be PUBLISHED")
        content = body.get("content")
        parsed = self._content(author, content) if content is not None else (None, ())
        if isinstance(parsed, Response):
            return parsed
        link, media = parsed
        if not commentary and content is None:
            return invalid("ERROR :: /commentary :: a post needs commentary or content")
        key: ContentKey = (author, commentary, link, media)
        earlier = self.by_content.get(key)
        if earlier is not None and self.state.config.linkedin_refuse_duplicates:
            self.state.duplicates_refused += 1
            return duplicate(earlier)
        urn = f"urn:li:share:{self.state.new_id()}"
        self.by_content.setdefault(key, urn)
        now_ms = int(time.time() * 1000)
        self.posts[urn] = body | {
            "id": urn,
            "createdAt": now_ms,
            "publishedAt": now_ms,
            "lastModifiedAt": now_ms,
        }
        self.state.record(
            platform=self.name,
            account=author,
            post_id=urn,
            message=commentary or None,
            link=link,
            media=media,
        )
        headers = [(b"x-restli-id", urn.encode()), (b"location", f"/rest/posts/{urn}".encode())]
        return Response(status=201, headers=headers)

    def _content(self, author: str, content: Any) -> tuple[str | None, tuple[str, ...]] | Response:
        """The article link and image urns of ``content``, or a 422."""
        if not isinstance(content, dict) or len(content) != 1:
            return invalid("ERROR :: /content :: must hold one of article, media, multiImage")
        if "article" in content:
            article = content["article"]
            source = article.get("source") if isinstance(article, dict) else None
            if not isinstance(source, str) or not source.startswith(("http://", "https://")):
                return invalid("ERROR :: /content/article/source :: must be a URL")
            thumb = article.get("thumbnail")
            if thumb is not None and (error := self._uploaded(author, thumb, "article/thumbnail")):
                return error
            return source, ()
        if "media" in content:
            media = content["media"]
            urn = media.get("id") if isinstance(media, dict) else None
            error = self._uploaded(author, urn, "media/id")
            return error if error is not None else (None, (str(urn),))
        if "multiImage" in content:
            multi = content["multiImage"]
            images = multi.get("images") if isinstance(multi, dict) else None
            if not isinstance(images, list) or not 2 <= len(images) <= 20:
                return invalid("ERROR :: /content/multiImage/images :: needs 2 to 20 images")
            urns = [i.get("id") if isinstance(i, dict) else None for i in images]
            for n, urn in enumerate(urns):
                if error := self._uploaded(author, urn, f"multiImage/images/{n}/id"):
                    return error
            return None, tuple(str(u) for u in urns)
        return invalid("ERROR :: /content :: must hold one of article, media, multiImage")

    def _uploaded(self, author: str, urn: Any, where: str) -> Response | None:
        """A 422 unless ``urn`` is an image this author uploaded."""
        image_id = urn.removeprefix("urn:li:image:") if isinstance(urn, str) else ""
        image = self.images.get(image_id)
        if image is None or not urn.startswith("urn:li:image:"):
            return invalid(f"ERROR :: /content/{where} :: unknown image {urn!r}")
        if image.size is None:
            return invalid(f"ERROR :: /content/{where} :: image {urn} has not been uploaded")
        if image.owner != author:
            return invalid(f"ERROR :: /content/{where} :: image {urn} belongs to another owner")
        return None

    def list_posts(self, request: Request) -> Response:
        """``GET /rest/posts?q=author&author=<urn>&start&count``, newest first."""
        params = request.params
        if params.get("q") != "author" or not params.get("author"):
            return li_error(400, "ILLEGAL_ARGUMENT", "Use q=author with an author urn")
        try:
            start = max(0, int(params.get("start") or 0))
            count = max(1, min(100, int(params.get("count") or 10)))
        except ValueError:
            return li_error(400, "ILLEGAL_ARGUMENT", "start and count must be integers")
        records = self.state.by_account.get((self.name, params["author"]), [])
        ids = [rec.post_id for rec in reversed(records)]
        elements = [self.posts[urn] for urn in ids[start : start + count]]
        paging = {"start": start, "count": count, "total": len(ids), "links": []}
        return json_response({"elements": elements, "paging": paging})

    def userinfo(self, request: Request) -> Response:
        """``GET /v2/userinfo``, reached only once ``authenticate`` took the token (a revoked
        or expired one is 401 there). The member's id is made from the token."""
        member = hashlib.sha256(request.bearer().encode()).hexdigest()[:12]
        return json_response({"sub": member, "name": "Simulated member",
                              "email_verified": True,
                              "locale": {"country": "US", "language": "en"}})

    def get_post(self, request: Request) -> Response:
        """``GET /rest/posts/{urn}``."""
        post = self.posts.get(request.match["urn"])
        return json_response(post) if post is not None else self.not_found(request)

    # -- images ---------------------------------------------------------------------

    def initialize_upload(self, request: Request) -> Response:
        """``POST /rest/images?action=initializeUpload`` -> upload URL and image urn."""
        if request.params.get("action") != "initializeUpload":
            return li_error(400, "ILLEGAL_ARGUMENT", "Unsupported action; use initializeUpload")
        body = json_body(request) or {}
        init = body.get("initializeUploadRequest")
        owner = init.get("owner") if isinstance(init, dict) else None
        if not isinstance(owner, str) or not AUTHOR.fullmatch(owner):
            return invalid("ERROR :: /initializeUploadRequest/owner :: invalid owner urn")
        expires_ms = int((time.time() + UPLOAD_URL_SECONDS) * 1000)
        image = Image(id=f"D4E10AQ{self.state.new_id()}", owner=owner, expires_ms=expires_ms)
        self.images[image.id] = image
        value = {
            "uploadUrl": f"{request.base_url}/_upload/linkedin/{image.id}",
            "uploadUrlExpiresAt": expires_ms,
            "image": image.urn,
        }
        return json_response({"value": value})

    def upload(self, request: Request) -> Response:
        """``PUT`` the image bytes: 201 once the whole image arrived."""
        image = self.images.get(request.match["image"])
        if image is None:
            return self.not_found(request)
        if time.time() * 1000 > image.expires_ms:
            return li_error(400, "UPLOAD_URL_EXPIRED", "The upload URL has expired")
        if request.received == 0:
            return li_error(400, "ILLEGAL_ARGUMENT", "The upload body is empty")
        image.size = request.received
        return Response(status=201)

    def get_image(self, request: Request) -> Response:
        """``GET /rest/images/{urn}``: its owner and status."""
        image = self.images.get(request.match["urn"].removeprefix("urn:li:image:"))
        if image is None:
            return self.not_found(request)
        value: dict[str, Any] = {
            "id": image.urn,
            "owner": image.owner,
            "status": "WAITING_UPLOAD" if image.size is None else "AVAILABLE",
        }
        if image.size is not None:
            value["downloadUrl"] = f"{request.base_url}/_media/{image.id}.jpg?size={image.size}"
        return json_response(value)
