"""Random rows for created_content and social_accounts: hostile ones, and valid ones beside them.

A `Scenario` is what one example inserts: 1-4 hostile posts and 2-4 valid posts (one per
platform, media on the simulator's media host), every post with an account of its own, so
that whatever the simulator records can be traced back to one post. A hostile post is
either wild (every column drawn on its own: any platform or post_type string, any text
without NUL, media arrays with NULLs and private addresses, any jsonb options, any time the
columns accept, odd statuses and leases, accounts with odd statuses, external ids and
tokens) or, twice as often, a mutant: a valid post with one to three of those changes, so
that each rule is reached on its own instead of behind another. KNOWN_* are issue 10's
classes, one post each, which the test always runs as explicit examples.

Times are `When` values: an SQL expression plus what the oracle needs to place it (seconds
from the insert's now(), an absolute instant, or beyond every date Python knows).
Media URLs on the simulator's host are written with SIM (replaced by its base URL on insert).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

PROFILE = "publisher-property"   # the hypothesis settings profile conftest.py registers
PLATFORMS = ("facebook", "instagram", "linkedin", "youtube")
# The README's "What can be published" table.
POST_TYPES: dict[str, tuple[str, ...]] = {
    "facebook": ("text", "link", "photo", "photos", "video"),
    "instagram": ("image", "reel", "carousel", "story"),
    "linkedin": ("text", "link", "image", "images"),
    "youtube": ("video",),
}
SIM = "@SIM@"                      # the simulator's base URL, filled in on insert
HOUR = 3600.0
DAY = 24 * HOUR
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
VALID_ZONES = ("America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Europe/Berlin",
               "Pacific/Chatham", "Australia/Lord_Howe", "Pacific/Kiritimati", "UTC",
               "Etc/GMT+12", "America/St_Johns", "Factory")
ODD_ZONES = ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "America", "Etc",
             "America/", "UTC ", "utc", "Europe/Berlin\n", "EST5EDT", "a" * 300, ".", "")
TOKEN_KINDS = ("current", "current", "current", "previous", "foreign", "tampered", "garbage",
               "empty", "null")

# -- values a column accepts ---------------------------------------------------------------


@dataclass(frozen=True)
class When:
    """A value for a timestamptz or timestamp column."""

    sql: str                          # the SQL expression inserted
    offset: float | None = None       # seconds after the insert's now() (relative values)
    instant: datetime | None = None   # absolute values Python can hold (naive for timestamp)
    infinite: int = 0                 # +1 later / -1 earlier than any Python date

    def seconds_after(self, now: datetime) -> float:
        """Where this time lies, in seconds after `now` (+-inf beyond Python's dates)."""
        if self.infinite:
            return self.infinite * float("inf")
        if self.offset is not None:
            return self.offset
        assert self.instant is not None
        instant = self.instant if self.instant.tzinfo else self.instant.replace(tzinfo=UTC)
        return (instant - now).total_seconds()

    def __repr__(self) -> str:
        return f"When({self.sql!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis shows it
        printer.text(repr(self))


def relative(seconds: float, sql_type: str = "timestamptz") -> When:
    if sql_type == "timestamp":
        expression = f"(now() at time zone 'UTC' + make_interval(secs => {seconds!r}))"
    else:
        expression = f"(now() + make_interval(secs => {seconds!r}))"
    return When(expression, offset=seconds)


def _absolute(moment: datetime, sql_type: str) -> When:
    if sql_type == "timestamp":
        return When(f"'{moment.isoformat()}'::timestamp", instant=moment)
    aware = moment.replace(tzinfo=UTC)
    return When(f"'{aware.isoformat()}'::timestamptz", instant=aware)


def _beyond(sql_type: str) -> st.SearchStrategy[When]:
    """The values Python's datetime cannot hold: infinities, BC, year 200000."""
    return st.sampled_from([
        When(f"'infinity'::{sql_type}", infinite=1),
        When(f"'-infinity'::{sql_type}", infinite=-1),
        When(f"'4000-01-01 00:00:00 BC'::{sql_type}", infinite=-1),
        When(f"'200000-01-01 00:00:00'::{sql_type}", infinite=1),
    ])


# Offsets from now that a run sees clearly on one side of its rules (due, 24 h late, future).
_OFFSETS = st.one_of(
    st.floats(-23 * HOUR, -15 * 60.0),            # due, not late
    st.floats(-60 * DAY, -25 * HOUR),             # more than 24 h late
    st.floats(15 * 60.0, 60 * DAY),               # in the future
    st.sampled_from([-60.0, -DAY - HOUR, 2 * HOUR, -30 * DAY]),
)


def whens(sql_type: str = "timestamptz", offsets: st.SearchStrategy[float] = _OFFSETS
          ) -> st.SearchStrategy[When]:
    """Any time the column accepts: mostly near now, sometimes anywhere, sometimes beyond."""
    absolute = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23))
    return st.one_of(
        offsets.map(lambda s: relative(s, sql_type)),
        offsets.map(lambda s: relative(s, sql_type)),
        absolute.map(lambda m: _absolute(m, sql_type)),
        st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23)]).map(
            lambda m: _absolute(m, sql_type)),
        _beyond(sql_type),
    )


def _text_chars() -> st.SearchStrategy[str]:
    # Postgres text refuses NUL; asyncpg cannot encode lone surrogates.
    return st.characters(codec="utf-8", exclude_characters="\x00")


def any_text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(_text_chars(), max_size=max_size)


def hostile_text() -> st.SearchStrategy[str | None]:
    """Caption or title text: none, empty, invisible only, ordinary, any unicode, too long."""
    return st.one_of(
        st.none(),
        st.just(""),
        st.text(st.sampled_from(ZERO_WIDTH + " \t\n\u00a0\u3000"), min_size=1, max_size=6),
        st.text(string.ascii_letters + " #@<>", min_size=1, max_size=30),
        any_text(),
        st.sampled_from([3001, 5001, 63_207]).map(lambda n: "a" * n),
    )


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value jsonb accepts (its strings cannot hold NUL either)."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                        st.floats(allow_nan=False, allow_infinity=False), any_text(10))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(any_text(8), inner, max_size=3)),
        max_leaves=8)


_OPTION_KEYS = ("privacy", "publish_at", "made_for_kids", "tags", "category_id", "short",
                "alt_text", "share_to_feed", "thumb_offset", "alt_texts", "link_title",
                "link_description")
_OPTION_VALUES = st.one_of(
    st.sampled_from(["private", "public", "unlisted", "Private", "", "2030-01-01T00:00:00Z",
                     "yesterday", True, False, 0, -5, None, ["a"], {"privacy": "private"}]),
    json_values())


def options() -> st.SearchStrategy[Any]:
    """platform_options: any JSON value; objects mostly, often with the keys we read."""
    known = st.dictionaries(st.sampled_from(_OPTION_KEYS), _OPTION_VALUES, max_size=3)
    return st.one_of(
        st.just({}),
        known,
        known,
        json_values(),
        st.sampled_from([[{"privacy": "private"}], "private", None, 1, [], "{}"]),
    )


def media_url(name: str, *, video: bool = False) -> str:
    """A URL the simulator's media host serves (small, so examples stay quick)."""
    if video:
        return f"{SIM}/_media/{name}.mp4?size=60000&type=video/mp4"
    return f"{SIM}/_media/{name}.jpg?size=20000&type=image/jpeg"


_ODD_URLS = (
    "", " ", "https://127.0.0.1/a.jpg", "https://[::1]/a.jpg", "https://10.1.2.3/a.mp4",
    "https://169.254.169.254/latest/meta-data/a.jpg", "https://192.168.0.9/b.jpeg",
    "https://localhost/a.jpg", "https://0.0.0.0/a.jpg", "https://[::ffff:127.0.0.1]/a.jpg",
    "https://[fe80::1]/v.mov", "http://cdn.example.test/a.jpg", "ftp://cdn.example.test/a.jpg",
    "file:///etc/passwd", "not a url", "https:///a.jpg", "https://[::1/a.jpg",
    "https://cdn.example.test:notaport/a.jpg", "https://user:pw@cdn.example.test/a.jpg",
    "https://cdn.example.test/a.jpg", "https://cdn.example.test/v.mp4",
    "https://cdn.example.test/a.png", "https://cdn.example.test/noextension",
)


def media_urls() -> st.SearchStrategy[list[str | None]]:
    entry = st.one_of(
        st.none(),
        st.sampled_from(_ODD_URLS),
        st.builds(media_url, st.sampled_from(["m1", "m2", "m3"]), video=st.booleans()),
        any_text(20),
    )
    return st.one_of(st.just([]), st.just([None]), st.lists(entry, max_size=4),
                     st.lists(entry, min_size=11, max_size=12))


# -- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """What an account's token column holds: a token sealed with the current key, the
    previous one (ENCRYPTION_KEYS_PREVIOUS), a key we do not have, or nothing usable."""

    kind: str                  # current, previous, foreign, tampered, garbage, empty, null
    plaintext: str             # what it opens to (current / previous); secret in all kinds
    garbage: str = ""          # stored as is for kind "garbage"

    @property
    def usable(self) -> bool:
        return self.kind in ("current", "previous")

    def __repr__(self) -> str:  # the plaintext is a secret: examples show the kind only
        return f"Token({self.kind!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis shows it
        printer.text(repr(self))


@dataclass(frozen=True)
class Account:
    platform: str
    external_id: str
    status: str = "active"
    status_reason: str | None = None
    token: Token = Token("current", "")
    refresh: Token = Token("null", "")
    token_expires_at: When | None = None
    paused_until: When | None = None


@dataclass(frozen=True)
class Post:
    platform: str
    post_type: str
    content: str | None
    account: Account | None
    title: str | None = None
    link_url: str | None = None
    media_urls: tuple[str | None, ...] = ()
    options: Any = field(default_factory=dict)
    scheduled_at: When | None = None
    scheduled_local: When | None = None
    scheduled_timezone: str | None = None
    not_before: When | None = None
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 5
    status: str = "scheduled"
    locked_by: str | None = None
    lease_expires_at: When | None = None
    sending_started_at: When | None = None
    last_error: str | None = None
    valid: bool = False        # one of the known-valid posts: must be published exactly once

    def with_sim(self, base: str) -> Post:
        """The post with SIM in its media URLs replaced by the simulator's base URL."""
        urls = tuple(None if u is None else u.replace(SIM, base) for u in self.media_urls)
        return replace(self, media_urls=urls)

    def options_json(self) -> str:
        return json.dumps(self.options, ensure_ascii=False)


@dataclass(frozen=True)
class Scenario:
    posts: tuple[Post, ...]

    @property
    def valid(self) -> tuple[Post, ...]:
        return tuple(p for p in self.posts if p.valid)


# -- strategies for rows ---------------------------------------------------------------------


@st.composite
def tokens(draw: st.DrawFn, secret: str) -> Token:
    kind = draw(st.sampled_from(TOKEN_KINDS))
    garbage = draw(st.one_of(any_text(30), st.sampled_from(
        ["v1:00000000:AAAA", "v1:zzzz:abc", "v2:1234abcd:" + "A" * 40, ":::", "EAAB" * 8])))
    return Token(kind, secret, garbage)


def _external_id(platform: str, n: int) -> st.SearchStrategy[str]:
    fitting = {"facebook": f"10{n:08d}", "instagram": f"1784{n:011d}",
               "linkedin": f"urn:li:person:hostile{n}", "youtube": f"UChostile{n:016d}"}
    return st.one_of(
        st.just(fitting.get(platform, f"id{n}")),
        st.just(fitting.get(platform, f"id{n}")),
        st.sampled_from([f"urn:li:organization:{n}", "urn:li:person:", f"{n}/feed",
                         f"{n}?fields=id", f"../{n}", f"{n}#x", f"page {n}", ""]),
        any_text(12).map(lambda s: f"{s}{n}"),
    )


@st.composite
def accounts(draw: st.DrawFn, platform: str, n: int, secret: str) -> Account | None:
    """The post's own account: often fine, sometimes missing, odd or for another platform."""
    if draw(st.integers(0, 9)) == 0:
        return None
    own = platform if platform in PLATFORMS else "facebook"
    account_platform = draw(st.one_of(st.just(own), st.just(own), st.just(own),
                                      st.sampled_from(PLATFORMS),
                                      any_text(10).filter(lambda s: s != "")))
    # The channel the simulator reads from a YouTube token: the text after its last "token-".
    token = draw(tokens(f"EAAB{secret}token-ch{n}x{secret[:6]}"))
    refresh = draw(tokens(f"1//{secret[::-1]}token-ch{n}x{secret[:6]}"))
    return Account(
        platform=account_platform,
        external_id=draw(_external_id(account_platform, n)),
        status=draw(st.sampled_from(["active", "active", "active", "needs_reauth",
                                     "disconnected"])),
        status_reason=draw(st.one_of(st.none(), any_text(20))),
        token=token,
        refresh=refresh,
        token_expires_at=draw(st.one_of(st.none(), whens())),
        paused_until=draw(st.one_of(st.none(), st.none(), whens())),
    )


@st.composite
def schedules(draw: st.DrawFn, status: str) -> dict[str, Any]:
    """scheduled_at, or a local time and zone (any text), or neither (scheduled posts only:
    the publisher stamps scheduled_at on every post it has worked on)."""
    kind = draw(st.sampled_from(["utc", "local", "local", "neither"]))
    if status != "scheduled" and kind != "utc":
        kind = "utc"
    if kind == "utc":
        return {"scheduled_at": draw(whens())}
    if kind == "neither":
        return {}
    zone = draw(st.one_of(st.sampled_from(VALID_ZONES), st.sampled_from(VALID_ZONES),
                          st.sampled_from(ODD_ZONES), any_text(15), st.none()))
    # The first and last hours Python can hold: a zone's offset takes them out of range.
    edges = st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23)]).map(
        lambda m: _absolute(m, "timestamp"))
    local = draw(st.one_of(whens("timestamp"), edges))
    return {"scheduled_local": local, "scheduled_timezone": zone}


def odd_platforms() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["Facebook", "tiktok", " youtube", "", "linkedin\u200b"]),
                     any_text(10))


def post_types(platform: str) -> st.SearchStrategy[str]:
    known = sorted({t for types in POST_TYPES.values() for t in types})
    return st.one_of(st.just(""), st.sampled_from(POST_TYPES.get(platform, ("text",))),
                     st.sampled_from(known),
                     st.sampled_from(["", " text", "TEXT", "reel ", "status"]),
                     any_text(10))


def link_urls() -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.sampled_from(
        ["https://example.test/article", "http://example.test/a", "javascript:alert(1)", "",
         "example.test"]), any_text(15))


@st.composite
def claims(draw: st.DrawFn) -> dict[str, Any]:
    """status and what goes with it: a retrying post's reason, a claim's holder and lease."""
    status = draw(st.sampled_from(["scheduled", "scheduled", "retrying", "publishing"]))
    if status == "retrying":
        return {"status": status, "last_error": "temporary platform error (an earlier attempt)"}
    if status == "scheduled":
        return {"status": status}
    return {"status": status,
            "lease_expires_at": draw(st.one_of(st.none(), whens())),
            "locked_by": draw(st.one_of(st.none(), st.just("another-worker"), any_text(10))),
            "sending_started_at": draw(st.one_of(
                st.none(), st.floats(-2 * DAY, -60.0).map(relative)))}


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    """priority, attempts and max_attempts, anywhere in their column's range."""
    return {
        "priority": draw(st.one_of(st.integers(-32768, 32767), st.sampled_from([-32768, 32767]))),
        "attempts": draw(st.one_of(st.integers(0, 6), st.integers(-2**31, 2**31 - 1),
                                   st.sampled_from([-2**31, 2**31 - 1]))),
        "max_attempts": draw(st.one_of(st.integers(1, 6), st.sampled_from([2**31 - 1]))),
    }


@st.composite
def wild_posts(draw: st.DrawFn, n: int, secret: str) -> Post:
    """Every column drawn on its own: a post wrong in many ways at once."""
    platform = draw(st.one_of(st.sampled_from(PLATFORMS), odd_platforms()))
    claim = draw(claims())
    return Post(
        platform=platform,
        post_type=draw(post_types(platform)),
        content=draw(hostile_text()),
        title=draw(hostile_text()),
        link_url=draw(link_urls()),
        media_urls=tuple(draw(media_urls())),
        options=draw(options()),
        not_before=draw(st.one_of(st.none(), st.none(), whens())),
        account=draw(accounts(platform, n, secret)),
        **draw(numbers()),
        **draw(schedules(claim["status"])),
        **claim,
    )


# -- mutants: a valid post with one to three things wrong, so each rule is reached alone ------

Mutation = Callable[[st.DrawFn, Post, int, str], Post]


def _account(post: Post, **changes: Any) -> Post:
    assert post.account is not None
    return replace(post, account=replace(post.account, **changes))


_PRIVATE = ("https://127.0.0.1/a.jpg", "https://[::1]/a.mp4", "https://10.0.0.8/a.jpg",
            "https://169.254.169.254/a.jpg", "https://localhost/a.jpg",
            "https://[::ffff:127.0.0.1]/a.jpg", "https://192.168.1.1/a.mov")
MUTATIONS: dict[str, Mutation] = {
    "platform": lambda d, p, n, s: replace(p, platform=d(odd_platforms())),
    "post_type": lambda d, p, n, s: replace(p, post_type=d(post_types(p.platform))),
    "content": lambda d, p, n, s: replace(p, content=d(hostile_text())),
    "title": lambda d, p, n, s: replace(p, title=d(st.one_of(
        hostile_text(), st.just("<b>title</b>")))),
    "link_url": lambda d, p, n, s: replace(p, link_url=d(link_urls())),
    "media_null": lambda d, p, n, s: replace(p, media_urls=tuple(d(st.permutations(
        (*p.media_urls, None))))),
    "media_private": lambda d, p, n, s: replace(p, media_urls=(
        *p.media_urls[1:], d(st.sampled_from(_PRIVATE)))),
    "media_added": lambda d, p, n, s: replace(p, media_urls=(
        *p.media_urls, *d(st.lists(st.builds(media_url, st.just(f"x{n}"),
                                             video=st.booleans()), min_size=1, max_size=3)))),
    "media_any": lambda d, p, n, s: replace(p, media_urls=tuple(d(media_urls()))),
    "options": lambda d, p, n, s: replace(p, options=d(options())),
    "schedule": lambda d, p, n, s: replace(p, **{"scheduled_at": None,
                                                 **d(schedules(p.status))}),
    "not_before": lambda d, p, n, s: replace(p, not_before=d(whens())),
    "claim": lambda d, p, n, s: replace(p, **d(claims())),
    "numbers": lambda d, p, n, s: replace(p, **d(numbers())),
    "no_account": lambda d, p, n, s: replace(p, account=None),
    "account_platform": lambda d, p, n, s: _account(p, platform=d(st.one_of(
        st.sampled_from(PLATFORMS), any_text(8).filter(bool)))),
    "account_status": lambda d, p, n, s: _account(p, status=d(st.sampled_from(
        ["needs_reauth", "disconnected"]))),
    "external_id": lambda d, p, n, s: _account(p, external_id=d(_external_id(p.platform, n))),
    "token": lambda d, p, n, s: _account(p, token=d(tokens(
        p.account.token.plaintext if p.account else ""))),
    "token_expiry": lambda d, p, n, s: _account(
        p, token_expires_at=d(whens()),
        refresh=d(tokens(f"1//{s[::-1]}token-ch{n}x{s[:6]}"))),
    "paused": lambda d, p, n, s: _account(p, paused_until=d(whens())),
}
# The rules a post most often breaks on its own are drawn twice as often.
_WEIGHTED = (*sorted(MUTATIONS), "media_null", "media_private", "media_added", "options",
             "content", "title", "post_type", "schedule", "claim", "token")
_NEEDS_ACCOUNT = ("account_platform", "account_status", "external_id", "token", "token_expiry",
                  "paused")


@st.composite
def mutants(draw: st.DrawFn, n: int, secret: str, tag: str) -> Post:
    platform = draw(st.sampled_from(PLATFORMS))
    post = replace(valid_post(platform, n, secret, draw(st.sampled_from(POST_TYPES[platform])),
                              tag), valid=False)
    for name in draw(st.lists(st.sampled_from(_WEIGHTED), min_size=1, max_size=3,
                              unique=True)):
        if post.account is None and name in _NEEDS_ACCOUNT:
            continue
        post = MUTATIONS[name](draw, post, n, secret)
    if post.status != "scheduled" and post.scheduled_at is None:
        post = replace(post, scheduled_at=relative(-HOUR))  # worked on: it has an instant
    return post


def hostile_posts(n: int, secret: str, tag: str) -> st.SearchStrategy[Post]:
    return st.one_of(mutants(n, secret, tag), mutants(n, secret, tag), wild_posts(n, secret))


def valid_post(platform: str, n: int, secret: str, post_type: str, tag: str) -> Post:
    """A post every rule accepts, with a healthy account of its own, due a little while ago."""
    external = {"facebook": f"77{n:08d}", "instagram": f"1785{n:011d}",
                "linkedin": f"urn:li:person:valid{n}{tag}",
                "youtube": f"UCvalid{n}{tag}"}[platform]
    media: tuple[str | None, ...] = ()
    if post_type in ("photo", "image"):
        media = (media_url(f"v{n}a"),)
    elif post_type in ("photos", "images", "carousel"):
        media = (media_url(f"v{n}a"), media_url(f"v{n}b"))
    elif post_type in ("video", "reel"):
        media = (media_url(f"v{n}a", video=True),)
    elif post_type == "story":
        media = (media_url(f"v{n}a"),)
    content = None if post_type == "story" else f"valid {platform} {post_type} {n} {tag}"
    return Post(
        platform=platform, post_type=post_type, content=content, valid=True,
        title=f"Valid video {n}" if platform == "youtube" else
        (f"Link {n}" if post_type == "link" else None),
        link_url="https://example.test/article" if post_type == "link" else None,
        media_urls=media,
        options={"privacy": "unlisted"} if platform == "youtube" else {},
        scheduled_at=relative(-20 * 60.0 - 60.0 * n),  # due, clearly (see the oracle's MARGIN)
        account=Account(platform=platform, external_id=external,
                        token=Token("current", f"EAAB{secret}token-{external}")),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """1-4 hostile posts and 2-4 valid ones (distinct platforms), each with its own account."""
    tag = draw(st.text("abcdefghjkmnpqrstuvwxyz", min_size=6, max_size=6))
    hostile = [draw(hostile_posts(n, f"{tag}{n:02d}h", tag))
               for n in range(draw(st.integers(1, 4)))]
    platforms = draw(st.lists(st.sampled_from(PLATFORMS), min_size=2, max_size=4, unique=True))
    valid = [valid_post(p, 50 + i, f"{tag}{i:02d}v", draw(st.sampled_from(POST_TYPES[p])), tag)
             for i, p in enumerate(platforms)]
    posts = list(hostile)
    for post in valid:  # interleaved by the draw, so ids do not say which is which
        posts.insert(draw(st.integers(0, len(posts))), post)
    return Scenario(tuple(posts))


def _known(n: int, platform: str, kind: str, **changes: Any) -> Post:
    """A valid post of that platform and post type, with `changes` made to it."""
    base = valid_post(platform, n, f"known{n:02d}h", kind, "known")
    return replace(base, valid=False, **changes)


def _known_account(post: Post, **changes: Any) -> Post:
    assert post.account is not None
    return replace(post, account=replace(post.account, **changes))


def _with_valid(*hostile: Post) -> Scenario:
    valid = [valid_post(p, 50 + i, f"known{i:02d}v", t, "known")
             for i, (p, t) in enumerate((("facebook", "photo"), ("instagram", "image"),
                                         ("linkedin", "text"), ("youtube", "video")))]
    return Scenario((*hostile, *valid))


def _local(when: When, zone: str) -> dict[str, Any]:
    return {"scheduled_at": None, "scheduled_local": when, "scheduled_timezone": zone}


# Issue 10's classes, one post each, beside four valid posts: always among the examples, so
# a CI run meets each class whatever the random draw.
KNOWN_SCHEDULES = _with_valid(
    _known(1, "facebook", "text", **_local(_absolute(datetime(1, 1, 1), "timestamp"),
                                           "Asia/Tokyo")),
    _known(2, "facebook", "text", **_local(_absolute(datetime(9999, 12, 31, 23), "timestamp"),
                                           "America/Los_Angeles")),
    _known(3, "facebook", "text", **_local(relative(-30 * DAY, "timestamp"), "Europe/Berlin")),
    _known(4, "facebook", "text", **_local(relative(-HOUR, "timestamp"), "America")),
)
KNOWN_CONTENT = _with_valid(
    _known(1, "youtube", "video", options=[{"privacy": "private"}]),
    _known(2, "youtube", "video", options="private"),
    _known(3, "facebook", "photo", media_urls=(None,)),
    _known(4, "facebook", "text", media_urls=tuple(media_url(f"k4{i}") for i in range(3))),
    _known(5, "facebook", "text", post_type=""),
    _known(6, "facebook", "text", content="\u200b\u200c\u200d\u2060\ufeff"),
    _known(7, "facebook", "photo", media_urls=("https://127.0.0.1/a.jpg",)),
    _known(8, "instagram", "image", media_urls=("https://[::1]/a.jpg",)),
)
KNOWN_CLAIMS = _with_valid(
    _known(1, "facebook", "text", status="publishing", locked_by="gone-worker",
           lease_expires_at=None),
    _known(2, "facebook", "text", status="publishing", locked_by=None,
           lease_expires_at=relative(HOUR)),
    _known_account(_known(3, "linkedin", "text"),
                   token_expires_at=When("'infinity'::timestamptz", infinite=1)),
    _known_account(_known(4, "youtube", "video"),
                   token_expires_at=When("'4000-01-01 00:00:00 BC'::timestamptz",
                                         infinite=-1)),
)


def local_literal(when: When, zone: str | None, now: datetime) -> str:
    """The SQL for a scheduled_local value: relative ones are the wall-clock time in `zone`
    (now + offset), so that the post is due when the offset says."""
    if when.offset is None:
        return when.sql
    try:
        wall = now.astimezone(ZoneInfo(zone or "UTC"))
    except Exception:
        wall = now
    moment = wall.replace(tzinfo=None) + timedelta(seconds=when.offset)
    return f"'{moment.isoformat()}'::timestamp"


__all__ = ["DAY", "HOUR", "KNOWN_CLAIMS", "KNOWN_CONTENT", "KNOWN_SCHEDULES", "PLATFORMS",
           "POST_TYPES", "PROFILE", "SIM", "ZERO_WIDTH", "Account", "Post", "Scenario", "Token",
           "When", "local_literal", "media_url", "relative", "scenarios"]
