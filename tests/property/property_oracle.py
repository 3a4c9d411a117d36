"""What a run must do with a row, decided from the README alone (a pure function of the row).

`should_be_refused(row)` names the first rule under which the post must not reach the
platform in this run, or None when the rules allow it (or the row sits too close to a
boundary to say: a time within minutes of now or of the 24-hour limit, a host name that only
DNS could judge). `expected_end(row)` says what kind of state the post must end in:

    "held"    another worker's live claim: left publishing, untouched
    "wait"    not due, or its account paused: not published (a run may still end it early
              with a reason, say out of attempts)
    "fail"    failed or expired, with a reason (it can never go out as it is)
    "review"  the outcome is unknown (sending had started): needs_review, or provably not
              live and back to the queue, never sent again blindly
    None      the rules allow it, or the row is too close to a boundary to say

The rules, in the order a run applies them: a claim another worker holds; a claim whose
worker died after sending started; the 24-hour limit (for every way of scheduling); the
schedule itself (neither time, an unknown zone, a local time no calendar holds); not due
yet; an unknown platform; a paused account; then the post's account and token; then what
can be published (post type, options, media, text) for its platform.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from property_rows import DAY, PLATFORMS, POST_TYPES, ZERO_WIDTH, Post, When

MARGIN = 10 * 60.0          # seconds: closer than this to now or to the 24 h limit, abstain
LOCAL_MARGIN = 3 * 3600.0   # local times: a DST gap or fold moves them by up to an hour or so
MAX_DELAY = DAY
MEDIA_COUNT = {("facebook", "photo"): (1, 1), ("facebook", "photos"): (2, 10),
               ("facebook", "video"): (1, 1), ("facebook", "text"): (0, 0),
               ("facebook", "link"): (0, 0), ("instagram", "image"): (1, 1),
               ("instagram", "reel"): (1, 1), ("instagram", "story"): (1, 1),
               ("instagram", "carousel"): (2, 10), ("linkedin", "text"): (0, 0),
               ("linkedin", "link"): (0, 1), ("linkedin", "image"): (1, 1),
               ("linkedin", "images"): (2, 20), ("youtube", "video"): (1, 1)}
NEEDS_TEXT = {("facebook", "text"), ("linkedin", "text")}
TEXT_LIMIT = {"facebook": 63_206, "instagram": 2_200, "linkedin": 3_000}
IMAGE_SUFFIXES = (".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".mov")
PRIVACY = ("public", "unlisted", "private")
# The options each platform reads (the README's table); any other is refused, never ignored.
OPTIONS_READ = {"facebook": frozenset(),
                "instagram": frozenset({"alt_text", "share_to_feed", "thumb_offset"}),
                "linkedin": frozenset({"link_title", "link_description", "alt_texts"}),
                "youtube": frozenset({"privacy", "publish_at", "tags", "category_id",
                                      "made_for_kids", "short"})}


@dataclass(frozen=True)
class Row:
    """A post as inserted, with when it was inserted (the database's now()) and the host
    the simulator serves media from (the only non-public host a media URL may name)."""

    post: Post
    now: datetime
    media_host: str


@dataclass(frozen=True)
class Refusal:
    rule: str
    kind: str        # wait, fail or review
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


class _Unsure(Exception):
    """The row is too close to a boundary for the rule to say (see MARGIN)."""


def should_be_refused(row: Row) -> str | None:
    """The first rule that keeps this post from the platform in this run, or None."""
    found = refusals(row)
    return str(found[0]) if found else None


def expected_end(row: Row) -> str | None:
    """wait / fail / review, or None (allowed, or unsure): see the module docstring."""
    for step in _STEPS:
        try:
            found = step(row)
        except _Unsure:
            return None
        if found is not None:
            return found.kind
    return None


def refusals(row: Row) -> list[Refusal]:
    """Every definite refusal (a step too close to a boundary to say is skipped)."""
    found = []
    for step in _STEPS:
        try:
            refusal = step(row)
        except _Unsure:
            continue
        if refusal is not None:
            found.append(refusal)
    return found


# -- the steps, in the order a run takes them -------------------------------------------------


def _side(when: When | None, now: datetime, margin: float = MARGIN) -> float | None:
    """Seconds after now; None for NULL; _Unsure within the margin of now."""
    if when is None:
        return None
    seconds = when.seconds_after(now)
    if abs(seconds) < margin:
        raise _Unsure
    return seconds


def _held_lease(row: Row) -> Refusal | None:
    post = row.post
    if post.status != "publishing":
        return None
    if post.lease_expires_at is None or post.locked_by is None:
        raise _Unsure  # no lease or no holder: released, or failed with a reason
    lease = _side(post.lease_expires_at, row.now)
    if lease is not None and lease > MAX_DELAY - MARGIN:
        raise _Unsure  # longer than any claim takes (LEASE_SECONDS <= 24 h): may be released
    if lease is not None and lease > 0:
        return Refusal("held-by-another-worker", "held", f"lease {post.lease_expires_at}")
    return None


def _sending_started(row: Row) -> Refusal | None:
    post = row.post
    if post.status == "publishing" and post.sending_started_at is not None:
        return Refusal("sending-started", "review",
                       "its worker's claim ran out (or has no lease) after sending started")
    return None


def _due_instant(row: Row) -> tuple[float, float] | None:
    """(seconds after now, margin) of the post's scheduled time; None when it has none.
    Raises _Refused for a schedule no calendar can place."""
    post = row.post
    if post.scheduled_at is not None:
        return post.scheduled_at.seconds_after(row.now), MARGIN
    local = post.scheduled_local
    if local is None:
        raise _Refused(Refusal("no-schedule", "fail", "neither scheduled_at nor a local time"))
    zone = post.scheduled_timezone
    if not zone or _zone(zone) is None:
        if zone and _zone(zone.strip()) is not None:
            raise _Unsure  # a zone name with stray spaces: a fix may read it
        raise _Refused(Refusal("bad-time-zone", "fail", f"{zone!r}"))
    if local.infinite:
        raise _Refused(Refusal("local-time-out-of-range", "fail", local.sql))
    if local.offset is not None:
        return local.offset, LOCAL_MARGIN
    assert local.instant is not None
    try:
        instant = local.instant.replace(tzinfo=_zone(zone), fold=0).astimezone(UTC)
    except (OverflowError, ValueError):
        raise _Refused(Refusal("local-time-out-of-range", "fail",
                               f"{local.sql} in {zone}")) from None
    return (instant - row.now).total_seconds(), LOCAL_MARGIN


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except Exception:
        return None


def _late(row: Row) -> Refusal | None:
    try:
        due = _due_instant(row)
    except _Refused:
        return None  # the schedule step says why
    if due is None:
        return None
    seconds, margin = due
    if abs(seconds + MAX_DELAY) < margin:
        raise _Unsure
    if seconds < -MAX_DELAY:
        return Refusal("more-than-24h-late", "fail", f"{seconds / 3600:.0f} h")
    return None


def _schedule(row: Row) -> Refusal | None:
    try:
        _due_instant(row)
    except _Refused as refused:
        return refused.refusal
    return None


def _not_due(row: Row) -> Refusal | None:
    post = row.post
    try:
        due = _due_instant(row)
    except _Refused:
        return None  # the schedule step says why
    if due is not None:
        seconds, margin = due
        if abs(seconds) < margin:
            raise _Unsure
        if seconds > 0:
            return Refusal("not-due", "wait", "scheduled in the future")
    not_before = _side(post.not_before, row.now)
    if not_before is not None and not_before > 0:
        return Refusal("not-due", "wait", "not_before in the future")
    return None


def _platform(row: Row) -> Refusal | None:
    if row.post.platform not in PLATFORMS:
        return Refusal("unknown-platform", "fail", repr(row.post.platform))
    return None


def _paused(row: Row) -> Refusal | None:
    account = row.post.account
    if account is None:
        return None
    paused = _side(account.paused_until, row.now)
    if paused is not None and paused > 0:
        return Refusal("account-paused", "wait", "paused_until in the future")
    return None


def _account(row: Row) -> Refusal | None:
    post, account = row.post, row.post.account
    if account is None:
        return Refusal("no-account", "fail", "account_id is NULL")
    if account.platform != post.platform:
        return Refusal("account-of-another-platform", "fail", repr(account.platform))
    if account.status != "active":
        return Refusal("account-not-active", "fail", account.status)
    if not account.token.usable:
        return Refusal("token-unusable", "fail", account.token.kind)
    return None


def _publishable(row: Row) -> Refusal | None:
    """The README's "What can be published", for every platform."""
    post = row.post
    if post.platform not in PLATFORMS:
        return None  # the platform step says why
    problem = (_post_type(post) or _options(post) or _media(post, row.media_host)
               or _texts(post) or _platform_rules(post))
    return None if problem is None else Refusal(problem[0], "fail", problem[1])


_STEPS = (_held_lease, _sending_started, _late, _schedule, _not_due, _platform, _paused,
          _account, _publishable)

# -- what can be published ------------------------------------------------------------------

Problem = tuple[str, str] | None


def invisible(text: str | None) -> bool:
    """Nothing a reader could see: only whitespace and zero-width characters. (Other
    format characters are left to the implementation: the oracle does not judge them.)"""
    return all(ch.isspace() or ch in ZERO_WIDTH for ch in text or "")


def plainly_visible(text: str | None) -> bool:
    """Holds a printable ASCII character: visible by any definition."""
    return any("!" <= ch <= "~" for ch in text or "")


def _post_type(post: Post) -> Problem:
    if post.post_type not in POST_TYPES[post.platform]:
        return "post-type", f"{post.post_type!r} is not a {post.platform} post type"
    return None


def _options(post: Post) -> Problem:
    options = {} if post.options is None else post.options  # JSON null: as NULL, no options
    if not isinstance(options, dict):
        return "options-not-an-object", f"platform_options is {type(options).__name__}"
    unread = sorted(set(options) - OPTIONS_READ[post.platform])
    if unread:
        return "option-not-read", f"{post.platform} reads no option {unread[0]!r}"
    if any(value is None for value in options.values()):
        return "option-null", "an option set to null (leave it out to leave it unset)"
    if post.platform == "youtube":
        publish_at = options.get("publish_at")
        privacy = options.get("privacy", "public" if publish_at is None else "private")
        if privacy not in PRIVACY:
            return "youtube-privacy-unreadable", repr(privacy)
        if publish_at is not None and privacy != "private":
            return "youtube-publish-at-not-private", repr(privacy)
        if "made_for_kids" in options and not isinstance(options["made_for_kids"], bool):
            return "youtube-made-for-kids", repr(options["made_for_kids"])
    if post.platform == "instagram":
        if "alt_text" in options and not isinstance(options["alt_text"], str):
            return "instagram-alt-text", repr(options["alt_text"])
        if "share_to_feed" in options and not isinstance(options["share_to_feed"], bool):
            return "instagram-share-to-feed", repr(options["share_to_feed"])
    return None


def _media(post: Post, media_host: str) -> Problem:
    for url in post.media_urls:
        problem = _media_url(url, media_host)
        if problem is not None:
            return problem
    low, high = MEDIA_COUNT[(post.platform, post.post_type)]
    count = len(post.media_urls)
    if not low <= count <= high:
        rule = "media-on-a-type-that-takes-none" if high == 0 else "media-count"
        return rule, f"{count} for {post.platform} {post.post_type}"
    return _media_kinds(post)


def _media_url(url: str | None, media_host: str) -> Problem:
    if url is None:
        return "media-null", "media_urls holds NULL"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "media-url-unreadable", repr(url)
    if parts.netloc.lower() == media_host.lower():
        return None  # the simulator's media host, allowed by configuration
    if parts.scheme != "https" or not host:
        return "media-not-https", repr(url)
    if host == "localhost" or host.endswith(".localhost"):
        return "media-private-address", repr(url)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: only DNS can say (the oracle abstains)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast or address.is_reserved:
        return "media-private-address", repr(url)
    return None


def _suffix(url: str | None) -> str:
    return PurePosixPath(urlsplit(url or "").path).suffix.lower()


def _media_kinds(post: Post) -> Problem:
    suffixes = [_suffix(u) for u in post.media_urls]
    if post.platform == "facebook" and post.post_type == "video" and \
            suffixes[0] not in VIDEO_SUFFIXES:
        return "media-kind", "a facebook video must be .mp4 or .mov"
    if post.platform == "instagram":
        for suffix in suffixes:
            if post.post_type == "image" and suffix in VIDEO_SUFFIXES:
                return "media-kind", "an instagram image post given a video"
            if post.post_type == "reel" and suffix in IMAGE_SUFFIXES:
                return "media-kind", "an instagram reel given an image"
            if post.post_type in ("carousel", "story") and \
                    suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                return "media-kind", f"cannot tell image from video ({suffix or 'no suffix'})"
    return None


def _texts(post: Post) -> Problem:
    if (post.platform, post.post_type) in NEEDS_TEXT and invisible(post.content):
        return "no-visible-text", f"{post.platform} {post.post_type} content {post.content!r}"
    limit = TEXT_LIMIT.get(post.platform)
    if limit is not None and len(post.content or "") > limit:
        return "text-too-long", f"{len(post.content or '')} > {limit}"
    return None


def _platform_rules(post: Post) -> Problem:
    if post.platform == "youtube":
        return _youtube(post)
    if post.platform == "linkedin":
        return _linkedin(post)
    if post.platform == "facebook" and post.post_type == "link" and not _http(post.link_url):
        return "link-url", repr(post.link_url)
    if post.platform == "instagram" and post.post_type == "story" and \
            plainly_visible(post.content):
        return "story-caption", "an instagram story takes no caption"
    return None


def _youtube(post: Post) -> Problem:
    title, description = post.title or "", post.content or ""
    if invisible(title):
        return "no-visible-text", f"youtube title {post.title!r}"
    if len(title) > 100:
        return "text-too-long", f"youtube title {len(title)} > 100"
    if len(description.encode()) > 5000:
        return "text-too-long", "youtube description over 5000 bytes"
    if any(c in text for text in (title, description) for c in "<>"):
        return "youtube-markup", "< or > in title or description"
    return None


def _linkedin(post: Post) -> Problem:
    author = post.account.external_id if post.account else ""
    if not author.startswith(("urn:li:person:", "urn:li:organization:")):
        return "linkedin-author", repr(author)
    if post.post_type == "link":
        if not _http(post.link_url):
            return "link-url", repr(post.link_url)
        options: dict[str, Any] = post.options or {}
        title = options.get("link_title") or post.title
        if not isinstance(title, str) or invisible(title):
            return "no-visible-text", f"linkedin link title {title!r}"
        described = options.get("link_description")
        if described is not None and not isinstance(described, str):
            return "linkedin-link-description", repr(described)
    alt = (post.options or {}).get("alt_texts")
    if alt is not None and (not isinstance(alt, list) or not all(isinstance(a, str) for a in alt)
                            or len(alt) > len(post.media_urls)):
        return "linkedin-alt-texts", repr(alt)
    return None


def _http(url: str | None) -> bool:
    return (url or "").startswith(("http://", "https://"))


__all__ = ["Refusal", "Row", "expected_end", "invisible", "refusals", "should_be_refused"]
