"""YouTube: video posts through the Data API's resumable upload (videos.insert).

Options (the post's platform_options): `privacy` public/unlisted/private (default public,
or private when `publish_at` is given, since YouTube honours publishAt only on private
videos), `publish_at` (ISO time with zone, in the future), `tags` (list of strings),
`category_id` (numeric, default "22" People & Blogs), `made_for_kids` (bool, default
false), `short` (bool: the URL is /shorts/{id}). The upload itself is upload.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from dateutil.parser import isoparse

from publisher import redact
from publisher.models import Account, ClaimedPost, Outcome
from publisher.platforms import post_rules as rules
from publisher.platforms.base import PublishContext, TokenGrant
from publisher.platforms.http import json_body, send, snippet
from publisher.platforms.youtube.errors import OAUTH_SETTINGS, classify_token_error
from publisher.platforms.youtube.upload import (
    CHUNK_QUANTUM,
    DEFAULT_CHUNK_BYTES,
    ResumableUpload,
    stored_session,
)
from publisher.settings import OAuthClient, PlatformEndpoints

POST_TYPES = ("video",)
MAX_TITLE_CHARS = 100
MAX_DESCRIPTION_BYTES = 5000
MAX_TAGS_CHARS = 500
PRIVACY = ("public", "unlisted", "private")
DEFAULT_CATEGORY = "22"  # People & Blogs
DEFAULT_BACKOFF = (1.0, 3.0, 9.0)  # seconds before each probe after a failed chunk
# What the adapter reads from platform_options (any other option is refused, so that a
# misspelt privacy setting can never leave a video public).
OPTIONS = {
    "privacy": rules.one_of(PRIVACY),
    "publish_at": rules.text(expects="an ISO 8601 time with a time zone, as text"),
    "tags": rules.text_list(expects="a list of non-empty strings"),
    "category_id": rules.Option("a numeric string such as '22'", lambda v: (
        isinstance(v, int) and not isinstance(v, bool) and v >= 0) or (
        isinstance(v, str) and v.isascii() and v.isdigit())),
    "made_for_kids": rules.flag(),
    "short": rules.flag(),
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def tags_length(tags: Sequence[str]) -> int:
    """Tag length as YouTube counts it: commas between tags, quotes around tags with spaces."""
    return sum(len(tag) + (2 if " " in tag else 0) for tag in tags) + max(0, len(tags) - 1)


class YouTubeAdapter:
    platform = "youtube"

    def __init__(self, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 backoff: Sequence[float] = DEFAULT_BACKOFF,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        if chunk_bytes <= 0 or chunk_bytes % CHUNK_QUANTUM:
            raise ValueError(f"chunk_bytes must be a positive multiple of {CHUNK_QUANTUM}")
        self._chunk_bytes = chunk_bytes
        self._backoff = tuple(backoff)
        self._clock = clock

    def validate(self, post: ClaimedPost) -> str | None:
        built = self._metadata(post)
        return built if isinstance(built, str) else None

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        metadata = self._metadata(post)
        if isinstance(metadata, str):
            return Outcome.failed(metadata)
        short = post.options.get("short") is True
        upload = ResumableUpload(
            context, media_url=post.media_urls[0], metadata=metadata,
            watch_url=lambda video_id: (f"https://www.youtube.com/shorts/{video_id}" if short
                                        else f"https://www.youtube.com/watch?v={video_id}"),
            chunk_bytes=self._chunk_bytes, backoff=self._backoff, clock=self._clock,
            stored=stored_session(post.publish_state, context.endpoints.youtube_upload))
        return await upload.run()

    def _metadata(self, post: ClaimedPost) -> dict[str, Any] | str:
        """The videos.insert body, or why this post can never be uploaded as it is (publish
        checks again: an option that is not understood never reaches the upload)."""
        problem = (rules.post_type_problem("youtube", post.post_type, POST_TYPES)
                   or rules.options_problem("youtube", post, OPTIONS))
        if problem is not None:
            return problem
        if len(post.media_urls) != 1:
            return f"a youtube video post needs exactly 1 video URL, got {len(post.media_urls)}"
        if not post.media_urls[0].startswith(("https://", "http://")):
            return "the youtube video URL must be a public https URL"
        title = post.title or ""
        if not rules.visible(title):
            return ("a youtube video needs a title (spaces and invisible characters such as "
                    "zero-width spaces do not count)")
        if len(title) > MAX_TITLE_CHARS:
            return (f"the youtube title is {len(title)} characters; the limit is "
                    f"{MAX_TITLE_CHARS}")
        description = post.content or ""
        size = len(description.encode("utf-8"))
        if size > MAX_DESCRIPTION_BYTES:
            return (f"the youtube description is {size} bytes; the limit is "
                    f"{MAX_DESCRIPTION_BYTES}")
        for name, text in (("title", title), ("description", description)):
            if "<" in text or ">" in text:
                return f"the youtube {name} may not contain < or >"
        options = post.options
        snippet_body = {"title": title, "description": description,
                        "categoryId": DEFAULT_CATEGORY}
        status: dict[str, Any] = {"selfDeclaredMadeForKids": False}
        problem = (_tags(options, snippet_body) or _category(options, snippet_body)
                   or _kids(options, status) or self._privacy(options, status))
        return problem or {"snippet": snippet_body, "status": status}

    def _privacy(self, options: dict[str, Any], status: dict[str, Any]) -> str | None:
        raw = options.get("publish_at")
        # Absent means public; anything but a known value (null, "Private", ...) is refused.
        privacy = options.get("privacy", "private" if raw is not None else "public")
        if privacy not in PRIVACY:
            return f"youtube privacy must be one of {', '.join(PRIVACY)}, got {privacy!r}"
        status["privacyStatus"] = privacy
        if raw is None:
            return None
        if privacy != "private":
            return (f"youtube publish_at (publishAt) only works with private videos; this one "
                    f"is {privacy}: set privacy to private or drop publish_at")
        try:
            when = isoparse(raw) if isinstance(raw, str) else None
        except ValueError:
            when = None
        if when is None:
            return f"youtube publish_at must be an ISO 8601 time, got {raw!r}"
        if when.tzinfo is None:
            return f"youtube publish_at {raw!r} needs a time zone (e.g. Z or +02:00)"
        if when <= self._clock():
            return f"youtube publish_at {raw!r} is in the past"
        status["publishAt"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return None

    async def reconcile(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        """The upload session is the evidence: publish() probes it first, so a finished upload
        is found (never sent twice) and an unfinished one resumes; nothing exists before the
        last byte arrives."""
        if not post.publish_state.get("upload_session"):
            return Outcome.unknown("no YouTube upload session was recorded for this post: check "
                                   "the channel before publishing it again")
        return await self.publish(post, context)

    async def check_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints,
                          account: Account, access_token: str) -> Outcome | None:
        """Whether Google still takes the access token: GET tokeninfo (no quota cost). Google
        answers a revoked or expired one with 400 invalid_token ("Invalid Value")."""
        sent = await send(client, "GET", f"{endpoints.google_oauth.rstrip('/')}/tokeninfo",
                          irreversible=False, params={"access_token": access_token})
        if isinstance(sent, Outcome):
            return sent
        if sent.is_success:
            return None
        if sent.status_code in (400, 401):
            body = json_body(sent) or {}
            said = body.get("error") or body.get("error_description") or "invalid_token"
            return Outcome.reauth(f"Google does not take the YouTube account's access token "
                                  f"(tokeninfo: {redact.clip(str(said), 80)}): reconnect the "
                                  "account", http_status=sent.status_code)
        return Outcome.retry(f"Google's tokeninfo answered HTTP {sent.status_code}",
                             http_status=sent.status_code)

    async def refresh_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints, *,
                            access_token: str, refresh_token: str | None,
                            oauth: OAuthClient | None) -> TokenGrant | Outcome:
        """A new access token from Google's token endpoint (the refresh token is kept)."""
        if oauth is None:
            # The operator's configuration, not the user's account: reconnecting would not
            # help, and time will not either, so the post fails with the settings named.
            return Outcome.failed(f"cannot refresh YouTube tokens: {OAUTH_SETTINGS} are not "
                                  "set")
        if not refresh_token:
            return Outcome.reauth("the YouTube account has no refresh token: reconnect it "
                                  "(with offline access)")
        sent = await send(client, "POST", f"{endpoints.google_oauth.rstrip('/')}/token",
                          irreversible=False, data={
                              "grant_type": "refresh_token", "refresh_token": refresh_token,
                              "client_id": oauth.client_id,
                              "client_secret": oauth.client_secret})
        if isinstance(sent, Outcome):
            return sent
        if sent.is_error:
            return classify_token_error(sent)
        body = json_body(sent) or {}
        token, expires = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token:
            return Outcome.retry(f"Google's token endpoint answered without an access token "
                                 f"(HTTP {sent.status_code}): {snippet(sent, 40)!r}")
        renewed = body.get("refresh_token")
        return TokenGrant(access_token=token,
                          refresh_token=renewed if isinstance(renewed, str) and renewed
                          else None,
                          expires_in=float(expires) if isinstance(expires, int | float)
                          else None)


def _tags(options: dict[str, Any], body: dict[str, Any]) -> str | None:
    tags = options.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        return "youtube tags must be a list of non-empty strings"
    length = tags_length(tags)
    if length > MAX_TAGS_CHARS:
        return f"youtube tags total {length} characters; the limit is {MAX_TAGS_CHARS}"
    body["tags"] = list(tags)
    return None


def _category(options: dict[str, Any], body: dict[str, Any]) -> str | None:
    category = options.get("category_id", DEFAULT_CATEGORY)
    if isinstance(category, int) and not isinstance(category, bool):
        category = str(category)
    if not isinstance(category, str) or not (category.isascii() and category.isdigit()):
        return f"youtube category_id must be a numeric string such as '22', got {category!r}"
    body["categoryId"] = category
    return None


def _kids(options: dict[str, Any], status: dict[str, Any]) -> str | None:
    kids = options.get("made_for_kids", False)
    if not isinstance(kids, bool):
        return f"youtube made_for_kids must be true or false, got {kids!r}"
    status["selfDeclaredMadeForKids"] = kids
    return None
