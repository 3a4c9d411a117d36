"""What every post must be, whatever its platform, checked before its adapter's validate()
and before any platform call. A post that breaks a rule fails at once, with a reason that
names the field, and costs no call and no attempt beyond this one.

- Every field holds what its column says: platform_options is a JSON object, media_urls an
  array of non-empty URLs (no NULL, no number), text columns are text, nothing is huge.
- Every media URL follows the one rule in media.py (https, a public host, no user:pass).
- "Has text" means has a visible character: spaces, zero-width and other invisible format
  characters, combining marks alone and the blank-looking fillers do not count.

The adapters keep what differs by platform (which post types, which options and values),
built from the helpers here so that every platform says it the same way: a missing or
unknown post_type names the types the platform takes, media on a post type that takes none
is refused, and an option that is unknown, misplaced or of the wrong type is refused, never
ignored (failing closed: a post is never published more publicly than asked).
"""

from __future__ import annotations

import json
import re
import traceback
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from publisher.models import ClaimedPost
from publisher.platforms.media import media_url_problem, media_urls_problem

# Sanity bounds above every platform's own limit: the adapters give the exact limits.
MAX_CONTENT_CHARS = 100_000
MAX_TITLE_CHARS = 1_000
MAX_URL_CHARS = 4_096
MAX_MEDIA = 100
MAX_OPTIONS_CHARS = 65_536
SHOWN_CHARS = 60

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp",
                                   "Mn", "Mc", "Me"})
# Letters and symbols that render as nothing: Hangul fillers, braille blank, Mongolian
# vowel separator, Khmer inherent vowels, combining grapheme joiner.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u17b4\u17b5\u034f")
_JSON_KIND = ((bool, "a JSON boolean"), (int, "a JSON number"), (float, "a JSON number"),
              (str, "a JSON string"), (list, "a JSON array"), (dict, "a JSON object"))
_COLUMNS = {"options": "platform_options"}
_OPTION_IN_LINE = re.compile(r"""options(?:\.get\(|\[)\s*["'](\w+)["']""")
_FIELD_IN_LINE = re.compile(
    r"\bpost\.(content|title|link_url|media_urls|options|post_type|publish_state|account)\b")


def visible(text: str | None) -> bool:
    """True when the text has at least one character a reader can see."""
    if not text:
        return False
    for ch in text:
        if "!" <= ch <= "~":  # printable ASCII: the common case, decided at once
            return True
        if ch not in _BLANK and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES:
            return True
    return False


def shown(value: Any) -> str:
    """A short, JSON-spelled picture of a value for a reason (null, true, "x", [..."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def quoted(name: str) -> str:
    """A name as Python quotes it ('reel'), cut short."""
    return repr(name) if len(name) <= SHOWN_CHARS else repr(name[:SHOWN_CHARS]) + "..."


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return next((kind for cls, kind in _JSON_KIND if isinstance(value, cls)),
                type(value).__name__)


# --- every post ------------------------------------------------------------------------------


def problem(post: ClaimedPost, allowed_hosts: Collection[str] = ()) -> str | None:
    """Why this post can never be published whatever its platform, or None. Needs no network:
    see address_problem for the media hosts' addresses."""
    return (_unread_problem(post) or _size_problem(post)
            or _media_problem(post, allowed_hosts))


async def address_problem(post: ClaimedPost, allowed_hosts: Collection[str] = ()) -> str | None:
    """A media host whose name resolves only to non-public addresses (looked up, cached)."""
    found = await media_urls_problem(post.media_urls, allowed_hosts)
    return None if found is None else f"media_urls: {found}"


def _unread_problem(post: ClaimedPost) -> str | None:
    for column, value in post.unread.items():
        if column == "platform_options":
            return ("platform_options must be a JSON object such as {\"privacy\": \"private\"}, "
                    f"got {json_kind(value)} ({shown(value)}): the post was not published, so "
                    "that none of its options is ignored")
        if column == "media_urls":
            return _media_entries(value)
        if column == "account":
            return f"the post's account row could not be read ({value})"
        if column == "id":
            return "the claimed row has no readable id or attempt"
        return f"{column} must be text, got {json_kind(value)} ({shown(value)})"
    return None


def _media_entries(value: Any) -> str:
    if not isinstance(value, list):
        return f"media_urls must be an array of URLs, got {json_kind(value)} ({shown(value)})"
    for index, url in enumerate(value):
        if not isinstance(url, str):
            what = "NULL" if url is None else f"{json_kind(url)} ({shown(url)}), not a URL"
            return f"media_urls[{index}] is {what}: every entry must be an https URL"
    return "media_urls could not be read"


def _size_problem(post: ClaimedPost) -> str | None:
    for column, text, limit in (("content", post.content, MAX_CONTENT_CHARS),
                                ("title", post.title, MAX_TITLE_CHARS),
                                ("link_url", post.link_url, MAX_URL_CHARS)):
        if text is not None and len(text) > limit:
            return f"{column} is {len(text)} characters; no platform takes more than {limit}"
    if len(post.media_urls) > MAX_MEDIA:
        return f"media_urls has {len(post.media_urls)} entries; no platform takes more than " \
               f"{MAX_MEDIA}"
    if post.options:
        size = len(json.dumps(post.options, default=str))
        if size > MAX_OPTIONS_CHARS:
            return f"platform_options is {size} characters of JSON; the most is " \
                   f"{MAX_OPTIONS_CHARS}"
    return None


def _media_problem(post: ClaimedPost, allowed_hosts: Collection[str]) -> str | None:
    for index, url in enumerate(post.media_urls):
        if not url.strip():
            return f"media_urls[{index}] is empty: every entry must be an https URL"
        if len(url) > MAX_URL_CHARS:
            return f"media_urls[{index}] is {len(url)} characters; the most is {MAX_URL_CHARS}"
        found = media_url_problem(url, allowed_hosts)
        if found is not None:
            return f"media_urls[{index}]: {found}"
    return None


# --- helpers for the adapters' validate() -------------------------------------------------


def post_type_problem(platform: str, post_type: str, types: Collection[str]) -> str | None:
    """A missing or unknown post_type, naming the types the platform takes (never a default)."""
    choices = ", ".join(types)
    if not post_type.strip():
        return f"the post has no post_type; {platform} takes one of: {choices}"
    if post_type not in types:
        return f"{platform} does not support post type {quoted(post_type)}; use one of {choices}"
    return None


def media_not_taken(platform: str, post: ClaimedPost, media_less: Collection[str]) -> str | None:
    """Media on a post type that takes none would be dropped without a word: refused."""
    if post.post_type in media_less and post.media_urls:
        return (f"a {platform} {post.post_type} post takes no media, but it has "
                f"{len(post.media_urls)} media URL(s): use a post type that carries media, or "
                "remove them")
    return None


@dataclass(frozen=True, slots=True)
class Option:
    """One option a platform reads from platform_options: what a valid value is (said in the
    reason) and the post types it applies to (empty: all)."""

    expects: str
    valid: Callable[[Any], bool]
    on: tuple[str, ...] = ()


def flag(*on: str) -> Option:
    return Option("true or false", lambda v: isinstance(v, bool), on)


def text(*on: str, expects: str = "text") -> Option:
    return Option(expects, lambda v: isinstance(v, str), on)


def one_of(values: Collection[str], *on: str) -> Option:
    return Option(f"one of {', '.join(values)}", lambda v: isinstance(v, str) and v in values,
                  on)


def text_list(*on: str, expects: str = "a list of strings") -> Option:
    return Option(expects, lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                  on)


def whole(*on: str, expects: str = "a whole number >= 0") -> Option:
    return Option(expects, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                  on)


def options_problem(platform: str, post: ClaimedPost, known: Mapping[str, Option]) -> str | None:
    """An option the platform does not take, set on a post type it does not apply to, or of
    the wrong type or value (null included: leave an option out to leave it unset)."""
    for name, value in post.options.items():
        option = known.get(name)
        if option is None:
            takes = ", ".join(known) if known else "none"
            return (f"{platform} does not take option {quoted(name)} in platform_options (the "
                    f"options it takes: {takes}): the post was not published, so that none of "
                    "its options is ignored")
        if option.on and post.post_type not in option.on:
            return (f"{platform} option {name} applies only to {', '.join(option.on)} posts, "
                    f"not to {quoted(post.post_type)}: remove it")
        if not option.valid(value):
            return f"{platform} option {name} must be {option.expects}, got {shown(value)}"
    return None


# --- an exception from one post ----------------------------------------------------------


def field_of(exc: BaseException) -> str | None:
    """The post field the failing line was reading (platform_options.privacy, media_urls), from
    the traceback's own source lines, innermost first; None when no line names one."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        line = frame.line or ""
        option = _OPTION_IN_LINE.search(line)
        if option is not None:
            return f"platform_options.{option.group(1)}"
        found = _FIELD_IN_LINE.search(line)
        if found is not None:
            return _COLUMNS.get(found.group(1), found.group(1))
    return None
