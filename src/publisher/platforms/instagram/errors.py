"""What Instagram refuses: the rules checked before any call, and its error answers.

post_problem() checks a post against Instagram's limits (caption, hashtags, media count,
formats) so that what can never work fails without spending a call.

Instagram reports a publishing problem two ways, both carrying a 2207xxx subcode:
an error body ({"error": {"code": 9, "error_subcode": 2207042, ...}}) on container creation
or media_publish, or a container whose status_code is ERROR with the subcode in its
`status` text. SUBCODE_TABLE maps both; any other error goes to the generic Meta table
(meta/errors.py, classify_meta_error). `recreate` says the container is useless now: the
adapter prepares a new one next time. After media_publish it keeps the old one in
publish_state's previous_containers: an error answer does not prove it was not published,
and it is the only evidence a later attempt can check for PUBLISHED.

The Instagram Login token refresh lives here too: it is one GET whose whole job is telling
a new token from REAUTH and RETRY.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx

from publisher import redact
from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms import post_rules as rules
from publisher.platforms.base import TokenGrant
from publisher.platforms.http import json_body, send, snippet
from publisher.platforms.meta.errors import classify_meta_error
from publisher.settings import PlatformEndpoints

POST_TYPES = ("image", "reel", "carousel", "story")
# What the adapter reads from platform_options, and where (any other option is refused).
OPTIONS = {"alt_text": rules.text("image"),
           "share_to_feed": rules.flag("reel"),
           "thumb_offset": rules.whole("reel", expects="a whole number of milliseconds >= 0")}
MAX_CAPTION_CHARS = 2_200
MAX_HASHTAGS = 30
MAX_MENTIONS = 20
CAROUSEL_ITEMS = (2, 10)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov"})
REFUSED_EXTENSIONS = frozenset({".png", ".gif", ".webp", ".heic", ".heif", ".bmp", ".tif",
                                ".tiff", ".avi", ".mkv", ".webm", ".wmv", ".flv", ".3gp"})
PUBLISH_LIMIT_SECONDS = 3600.0   # the 24 h window rolls and the API doesn't say when it frees
NOT_READY_SECONDS = 30.0
PUBLISH_LIMIT_CODE = 9           # code 9 comes with subcode 2207042 [U: platforms.md]
# "Unsupported get request. Object with ID ... does not exist, cannot be loaded due to missing
# permissions, or does not support this operation": not only "gone" (developers.facebook.com/
# docs/graph-api/guides/error-handling, code 100; a live object answered so for a missing
# permission: github.com/restfb/restfb/issues/1075).
MISSING_OBJECT = (100, 33)
_HASHTAG = re.compile(r"#\w+")
_MENTION = re.compile(r"@[\w.]+")
_SUBCODE = re.compile(r"\b(2207\d{3})\b")


def media_kind(url: str) -> str | None:
    """"image", "video", "refused" (a format Instagram rejects) or None (can't tell)."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return "refused" if suffix in REFUSED_EXTENSIONS else None


def _name(url: str) -> str:
    """The file name only: media URLs may carry signed query strings."""
    return PurePosixPath(urlsplit(url).path).name or "(no file name)"


def post_problem(post: ClaimedPost) -> str | None:
    """Why Instagram would refuse this post as it is (checked before any call), or None."""
    kind = post.post_type
    problem = (rules.post_type_problem("instagram", kind, POST_TYPES)
               or rules.options_problem("instagram", post, OPTIONS))
    if problem is not None:
        return problem
    caption = post.content or ""
    if len(caption) > MAX_CAPTION_CHARS:
        return (f"the instagram caption is {len(caption)} characters; the limit is "
                f"{MAX_CAPTION_CHARS}")
    if (tags := len(_HASHTAG.findall(caption))) > MAX_HASHTAGS:
        return f"the instagram caption has {tags} hashtags; the limit is {MAX_HASHTAGS}"
    if (mentions := len(_MENTION.findall(caption))) > MAX_MENTIONS:
        return (f"the instagram caption has {mentions} @mentions; the limit is "
                f"{MAX_MENTIONS}")
    if kind == "story" and caption.strip():
        return "an instagram story takes no caption: remove the text or post it as an image"
    count = len(post.media_urls)
    low, high = CAROUSEL_ITEMS if kind == "carousel" else (1, 1)
    if not low <= count <= high:
        wanted = f"{low}-{high} media URLs" if kind == "carousel" else "exactly 1 media URL"
        return f"an instagram {kind} post needs {wanted}, got {count}"
    return _media_problem(post) or _options_problem(post)


def _media_problem(post: ClaimedPost) -> str | None:
    for url in post.media_urls:
        media = media_kind(url)
        if media == "refused":
            return (f"{_name(url)} is not a format Instagram accepts: images must be "
                    "JPEG (.jpg/.jpeg), videos MP4 or MOV")
        if post.post_type == "image" and media == "video":
            return f"an instagram image post needs a JPEG image, got video {_name(url)}"
        if post.post_type == "reel" and media == "image":
            return f"an instagram reel needs an MP4 or MOV video, got image {_name(url)}"
        if post.post_type in ("carousel", "story") and media is None:
            return (f"cannot tell whether {_name(url)} is an image or a video: its path "
                    "should end in .jpg, .jpeg, .mp4 or .mov")
    return None


def _options_problem(post: ClaimedPost) -> str | None:
    # Types and where each applies: rules.options_problem, in post_problem's first lines.
    options = post.options
    if not isinstance(options.get("alt_text", ""), str):
        return "instagram option alt_text must be text"
    if not isinstance(options.get("share_to_feed", False), bool):
        return "instagram option share_to_feed must be true or false"
    offset = options.get("thumb_offset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return "instagram option thumb_offset must be a whole number of milliseconds >= 0"
    return None


@dataclass(frozen=True, slots=True)
class Row:
    """What one IG subcode comes to."""

    kind: OutcomeKind
    meaning: str
    recreate: bool = True        # the container can't be published: prepare a new one
    wait: float | None = None    # DEFER / PENDING delay


_RETRY, _FAILED = OutcomeKind.RETRY, OutcomeKind.FAILED

# Every row: [IG] developers.facebook.com/docs/instagram-platform/instagram-graph-api/
# reference/error-codes (code/subcode, meaning, what to do), as summed up in
# shared/platforms.md section 7 ("Instagram publishing subcodes").
SUBCODE_TABLE: dict[int, Row] = {
    # Retryable: Instagram's side; a new container next time.
    2207001: Row(_RETRY, "Instagram had a server error preparing the media"),  # [IG] -1: try again
    2207003: Row(_RETRY, "Instagram timed out downloading the media"),  # [IG] -2: try again
    2207032: Row(_RETRY, "Instagram failed to create the media"),  # [IG] -1: re-create
    2207052: Row(_RETRY, "Instagram could not download the media from its URL: make sure "
                 "it is public and reachable"),  # [IG]: the media could not be fetched
    # Recreate: the prepared media is gone.
    2207020: Row(_RETRY, "the prepared media expired before it was published"),  # [IG] -2: new id
    2207053: Row(_RETRY, "an unknown error happened while Instagram processed the "
                 "video"),  # [IG] -1: generate a new container
    # Bad media: will never work as it is; the reason says what to change.
    2207004: Row(_FAILED, "the image is larger than 8 MB: use a smaller JPEG"),  # [IG] 36000
    2207005: Row(_FAILED, "Instagram does not support this media format: use JPEG images "
                 "and MP4 or MOV videos"),  # [IG]
    2207009: Row(_FAILED, "the image's aspect ratio is not supported: crop it to between 4:5 "
                 "and 1.91:1"),  # [IG]
    2207026: Row(_FAILED, "Instagram does not support this video's format: use MP4 or MOV "
                 "(H.264 video, AAC audio)"),  # [IG]
    2207057: Row(_FAILED, "the thumbnail offset is outside the video: use a thumb_offset "
                 "within its length"),  # [IG] 1: out of bounds
    2207010: Row(_FAILED, "the caption is too long: at most 2,200 characters, 30 hashtags "
                 "and 20 @mentions"),  # [IG]
    # Publishing limit: wait for the rolling 24 h window; the container stays usable.
    2207042: Row(OutcomeKind.DEFER, "the account reached Instagram's 24-hour publishing limit",
                 recreate=False, wait=PUBLISH_LIMIT_SECONDS),  # [IG] 9: try the next day
    # Not ready: publish was called too early; look again soon.
    2207027: Row(OutcomeKind.PENDING, "the media is not ready to publish yet", recreate=False,
                 wait=NOT_READY_SECONDS),  # [IG]: publish once FINISHED
    # Account state: the owner must act in Instagram itself.
    2207050: Row(OutcomeKind.REAUTH, "the Instagram account is inactive, checkpointed or "
                 "restricted: its owner must log in to Instagram and resolve it"),  # [IG]: sign in
    2207051: Row(_FAILED, "Instagram blocked this post as suspected spam or "
                 "abuse"),  # [IG] 4: suspected spam
}


def _outcome(row: Row, reason: str, detail: dict[str, Any]) -> Outcome:
    if row.kind is OutcomeKind.DEFER:
        return Outcome.defer(reason, row.wait or PUBLISH_LIMIT_SECONDS, pause_account=True,
                             **detail)
    if row.kind is OutcomeKind.PENDING:
        return Outcome(kind=OutcomeKind.PENDING, reason=reason, retry_after=row.wait,
                       detail=detail)
    return Outcome(kind=row.kind, reason=reason, detail=detail)


def _error_of(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify_instagram_error(response: httpx.Response, *,
                             irreversible: bool) -> tuple[Outcome, bool]:
    """The outcome of an error answer, and whether the container must be recreated."""
    error = _error_of(response)
    if error is not None:
        code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
        row = SUBCODE_TABLE.get(subcode or 0)
        if row is None and code == PUBLISH_LIMIT_CODE:
            row = SUBCODE_TABLE[2207042]
        if row is not None:
            message = redact.clip(str(error.get("message") or "no message"), 300)
            detail = {"http_status": response.status_code, "code": code, "subcode": subcode}
            described = f"{message} (code {code}{f'/{subcode}' if subcode else ''})"
            return _outcome(row, f"{row.meaning}: {described}", detail), row.recreate
    return classify_meta_error(response, irreversible=irreversible), False


def container_missing(response: httpx.Response) -> bool:
    """The container asked about could not be read as an object: gone, or (code 100/33 says
    so itself) not loadable for a missing permission, or a passing answer. Not proof of
    anything: the adapter reads it again rather than give up on it."""
    error = _error_of(response)
    if error is None:
        return response.status_code == 404
    return (_int(error.get("code")), _int(error.get("error_subcode"))) == MISSING_OBJECT


def container_error(status: str) -> Outcome:
    """The outcome of a container whose status_code is ERROR (`status` holds the subcode)."""
    found = _SUBCODE.search(status)
    subcode = int(found.group(1)) if found else None
    shown = redact.clip(status, 300) or "no status text"
    row = SUBCODE_TABLE.get(subcode or 0)
    if row is None:
        # An unlisted or missing subcode: a new container may well work; attempts are capped.
        return Outcome.retry(f"Instagram could not prepare the media: {shown}",
                             subcode=subcode, container_status="ERROR")
    return _outcome(row, f"{row.meaning}: {shown}",
                    {"subcode": subcode, "container_status": "ERROR"})


async def refresh_instagram_token(client: httpx.AsyncClient, endpoints: PlatformEndpoints,
                                  access_token: str) -> TokenGrant | Outcome:
    """GET refresh_access_token: the one endpoint that takes the token as a query parameter,
    by design. So no reason or detail may carry the token, nor the URL it sits in."""
    sent = await send(client, "GET", f"{endpoints.instagram_graph}/refresh_access_token",
                      irreversible=False, params={"grant_type": "ig_refresh_token",
                                                  "access_token": access_token})
    if isinstance(sent, Outcome):   # its reason names the exception type only, never the URL
        return _masked(Outcome.retry(f"token refresh: {sent.reason}"), access_token)
    body = json_body(sent)
    if not sent.is_error and body is not None and "error" not in body:
        token, expires = body.get("access_token"), body.get("expires_in")
        if isinstance(token, str) and token:
            return TokenGrant(access_token=token, refresh_token=None,
                              expires_in=float(expires)
                              if isinstance(expires, int | float) else None)
        return _masked(Outcome.retry(f"the token refresh answer has no access_token: "
                                     f"{snippet(sent)!r}"), access_token)
    verdict = classify_meta_error(sent, irreversible=False)
    if verdict.kind in (OutcomeKind.REAUTH, OutcomeKind.FAILED):
        # Refused (code 190: expired, revoked, never refreshable): the user must reconnect.
        return _masked(Outcome.reauth(f"token refresh refused: {verdict.reason}",
                                      **verdict.detail), access_token)
    return _masked(Outcome.retry(f"token refresh failed: {verdict.reason}", verdict.retry_after,
                                 **verdict.detail), access_token)


def _masked(outcome: Outcome, secret: str) -> Outcome:
    return redact.mask_outcome(outcome, (secret,))
