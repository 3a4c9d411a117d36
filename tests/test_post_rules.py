"""The rules every post meets whatever its platform (publisher.platforms.post_rules), and
ClaimedPost.from_row, which turns any row into a post those rules can refuse."""

from __future__ import annotations

from typing import Any

import pytest

from publisher.models import ClaimedPost
from publisher.platforms import post_rules as rules
from publisher.platforms.post_rules import field_of, visible

HOSTS = ("127.0.0.1:8787",)  # the configured simulator


def row(**changes: Any) -> dict[str, Any]:
    """A claimed row as claim_due_posts returns it (JSON), with changes."""
    base: dict[str, Any] = {
        "id": 7, "attempt": 1, "max_attempts": 5, "platform": "facebook", "post_type": "photo",
        "content": "hello", "title": None, "link_url": None,
        "media_urls": ["https://cdn.example.com/a.jpg"], "options": {}, "priority": 0,
        "scheduled_at": "2026-12-01T10:00:00+00:00", "publish_state": {},
        "sending_started_at": None,
        "account": {"id": "a1", "platform": "facebook", "external_id": "page-1",
                    "status": "active", "status_reason": None,
                    "access_token_encrypted": "v1:x", "refresh_token_encrypted": None,
                    "token_expires_at": None}}
    return {**base, **changes}


def problem_of(**changes: Any) -> str | None:
    return rules.problem(ClaimedPost.from_row(row(**changes)), HOSTS)


# --- item 3: platform_options that is not an object ------------------------------------------


@pytest.mark.parametrize(("options", "kind"), [
    pytest.param([{"privacy": "private"}], "a JSON array", id="array"),
    pytest.param("private", "a JSON string", id="string"),
    pytest.param('{"privacy": "private"}', "a JSON string", id="object-as-string"),
    pytest.param(3, "a JSON number", id="number"),
    pytest.param(True, "a JSON boolean", id="boolean"),
])
def test_options_that_are_not_an_object_fail_the_post(options: Any, kind: str) -> None:
    """Never read as {}: the post fails, naming platform_options and what it held."""
    reason = problem_of(options=options)
    assert reason is not None
    assert reason.startswith("platform_options must be a JSON object")
    assert kind in reason


def test_null_options_mean_no_options() -> None:
    """SQL NULL platform_options asks for nothing: no problem, options empty."""
    post = ClaimedPost.from_row(row(options=None))
    assert post.options == {}
    assert rules.problem(post, HOSTS) is None


# --- item 5: one post's odd data ---------------------------------------------------------------


@pytest.mark.parametrize(("media", "expected"), [
    pytest.param([None], "media_urls[0] is NULL", id="null-entry"),
    pytest.param(["https://cdn.example.com/a.jpg", None], "media_urls[1] is NULL",
                 id="null-second"),
    pytest.param([5], "media_urls[0] is a JSON number", id="number-entry"),
    pytest.param([["https://cdn.example.com/a.jpg"]], "media_urls[0] is a JSON array",
                 id="nested-array"),
    pytest.param([""], "media_urls[0] is empty", id="empty-string"),
    pytest.param(["   "], "media_urls[0] is empty", id="blank-string"),
    pytest.param("https://cdn.example.com/a.jpg", "media_urls must be an array",
                 id="string-not-array"),
    pytest.param({"0": "https://cdn.example.com/a.jpg"}, "media_urls must be an array",
                 id="object-not-array"),
    pytest.param(["https://cdn.example.com/" + "a" * 5000 + ".jpg"],
                 "media_urls[0] is 5028 characters", id="huge-url"),
    pytest.param([f"https://cdn.example.com/{n}.jpg" for n in range(101)],
                 "media_urls has 101 entries", id="too-many"),
])
def test_odd_media_entries_fail_naming_the_field(media: Any, expected: str) -> None:
    """Each odd media_urls shape is a reason naming media_urls (and the entry)."""
    reason = problem_of(media_urls=media)
    assert reason is not None
    assert expected in reason


@pytest.mark.parametrize(("column", "value", "expected"), [
    pytest.param("content", 12, "content must be text, got a JSON number", id="content-number"),
    pytest.param("title", ["t"], "title must be text, got a JSON array", id="title-array"),
    pytest.param("link_url", {"u": 1}, "link_url must be text", id="link-object"),
    pytest.param("content", "x" * 100_001, "content is 100001 characters", id="huge-content"),
    pytest.param("title", "t" * 1001, "title is 1001 characters", id="huge-title"),
    pytest.param("options", {"tags": ["x" * 70_000]}, "platform_options is", id="huge-options"),
])
def test_odd_columns_fail_naming_the_column(column: str, value: Any, expected: str) -> None:
    reason = problem_of(**{column: value})
    assert reason is not None
    assert expected in reason


@pytest.mark.parametrize("changes", [
    pytest.param({"id": "not-a-number"}, id="id-text"),
    pytest.param({"attempt": None}, id="attempt-null"),
    pytest.param({"max_attempts": "five"}, id="max-attempts-text"),
    pytest.param({"priority": [1]}, id="priority-array"),
    pytest.param({"platform": None}, id="platform-null"),
    pytest.param({"platform": 3}, id="platform-number"),
    pytest.param({"post_type": 4}, id="post-type-number"),
    pytest.param({"scheduled_at": "infinity"}, id="time-infinity"),
    pytest.param({"sending_started_at": "not a time"}, id="time-garbage"),
    pytest.param({"publish_state": [1, 2]}, id="state-array"),
    pytest.param({"account": {"platform": "facebook"}}, id="account-without-id"),
    pytest.param({"account": "acct"}, id="account-string"),
    pytest.param({"last_error": 5}, id="last-error-number"),
    pytest.param({"media_urls": [None, 1, "", {"a": 1}]}, id="media-mixed"),
])
def test_from_row_never_raises(changes: dict[str, Any]) -> None:
    """An odd row becomes a post object (the claim goes on); what matters fails it."""
    post = ClaimedPost.from_row(row(**changes), {})
    assert isinstance(post, ClaimedPost)


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"account": {"platform": "facebook"}}, "account row could not be read",
                 id="account"),
    pytest.param({"post_type": 4}, "post_type must be text", id="post-type"),
    pytest.param({"platform": 3}, "platform must be text", id="platform"),
    pytest.param({"id": None}, "no readable id", id="id"),
    pytest.param({"id": 1.5}, "no readable id", id="id-float"),
])
def test_unreadable_fields_are_named(changes: dict[str, Any], expected: str) -> None:
    reason = problem_of(**changes)
    assert reason is not None
    assert expected in reason


def test_unreadable_account_reason_holds_no_token() -> None:
    """The account row carries sealed tokens: a reason about it never quotes the row."""
    account = {"platform": "facebook", "access_token_encrypted": "v1:SEALED-SECRET"}
    reason = problem_of(account=account)
    assert reason is not None
    assert "SEALED-SECRET" not in reason


def test_missing_post_type_is_not_text() -> None:
    """NULL or empty post_type is read as '' (refused by the adapter), never as 'text'."""
    assert ClaimedPost.from_row(row(post_type=None)).post_type == ""
    assert ClaimedPost.from_row(row(post_type="")).post_type == ""


def test_a_valid_row_passes() -> None:
    assert problem_of() is None


# --- item 6: visible text, post types, media where none is taken ------------------------------


@pytest.mark.parametrize("text", [
    "", " ", "\t\n", "\u200b", "\u200b\u200c\u200d\u200e\u200f", "\u2060\u2061\u2062\u2063\u2064",
    "\ufeff", "\u180e", "\u3164", "\u115f\u1160", "\u2800", "\u00a0\u2003\u3000",
    "\u2028\u2029", "\u0301\u0302", "\u00ad", "\U000e0041", "\ufe0f", "\x00\x1f", "\uffa0",
])
def test_invisible_text_is_not_text(text: str) -> None:
    assert not visible(text)


@pytest.mark.parametrize("text", ["a", " x ", "\u200bhi", "😀", "日本", "é", ".", "\u0e01"])
def test_visible_text_is_text(text: str) -> None:
    assert visible(text)


@pytest.mark.parametrize(("post_type", "expected"), [
    pytest.param("", "the post has no post_type; facebook takes one of: text, link", id="empty"),
    pytest.param("   ", "the post has no post_type", id="blank"),
    pytest.param("Text", "does not support post type 'Text'; use one of text, link",
                 id="capitals"),
    pytest.param("x" * 500, "use one of text", id="huge"),
])
def test_post_type_problem_names_the_types(post_type: str, expected: str) -> None:
    reason = rules.post_type_problem("facebook", post_type, ("text", "link"))
    assert reason is not None
    assert expected in reason
    assert len(reason) < 200


# --- item 7: one media URL rule, applied to every post ---------------------------------------


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/a.jpg", "https://[::1]/a.jpg", "https://127.1/a.jpg",
    "https://0x7f.0.0.1/a.jpg", "https://2130706433/a.jpg", "https://0177.0.0.1/a.jpg",
    "https://[::ffff:127.0.0.1]/a.jpg", "https://[::ffff:7f00:1]/a.jpg",
    "https://localhost/a.jpg", "https://LOCALHOST./a.jpg", "https://cdn.localhost/a.jpg",
    "https://printer.local/a.jpg", "https://db.internal/a.jpg",
    "https://metadata.google.internal/computeMetadata/v1/", "https://metadata/a.jpg",
    "https://169.254.169.254/latest/meta-data", "https://10.0.0.8/a.jpg",
    "https://192.168.1.1/a.jpg", "https://[fd00::1]/a.jpg", "https://[fe80::1%25eth0]/a.jpg",
    "https://[2002:7f00:1::]/a.jpg", "https://[64:ff9b::a00:1]/a.jpg", "https://0.0.0.0/a.jpg",
    "https://\uff11\uff12\uff17.0.0.1/a.jpg", "https://\u24dbocalhost/a.jpg",
    "https://user:s3cret@cdn.example.com/a.jpg", "https://cdn.example.com@127.0.0.1/a.jpg",
    "https://cdn.example.com\\@127.0.0.1/a.jpg", "http://cdn.example.com/a.jpg",
    "ftp://cdn.example.com/a.jpg", "https:///a.jpg", "https://cdn.example.com:99999/a.jpg",
    "http://127.0.0.1:9999/_media/a.jpg",
])
def test_media_url_rule_refuses_before_any_call(url: str) -> None:
    """Every platform, every spelling: refused by the rules every post passes through."""
    for platform in ("facebook", "instagram", "linkedin", "youtube"):
        reason = problem_of(platform=platform, media_urls=[url])
        assert reason is not None, (platform, url)
        assert reason.startswith("media_urls[0]: media URL")
        assert "is not a public https URL" in reason
        assert "s3cret" not in reason  # never the user:pass part


@pytest.mark.parametrize("url", [
    "https://cdn.example.com/a.jpg", "https://8.8.8.8/a.jpg", "https://[2606:4700::1111]/a.jpg",
    "https://cdn.example.com:8443/a.jpg?sig=abc", "http://127.0.0.1:8787/_media/a.jpg",
])
def test_media_url_rule_allows_public_https_and_the_simulator(url: str) -> None:
    assert problem_of(media_urls=[url]) is None


def test_media_reason_names_the_file_not_the_signed_query() -> None:
    reason = problem_of(media_urls=["http://cdn.example.com/v/clip.jpg?sig=SECRETSIG"])
    assert reason is not None
    assert "clip.jpg" in reason
    assert "SECRETSIG" not in reason


# --- an exception from one post names the field it was reading ---------------------------------


def _crash(post: ClaimedPost) -> None:
    post.options["privacy"].upper()


def _crash_media(post: ClaimedPost) -> None:
    len(post.media_urls[3])


@pytest.mark.parametrize(("crash", "field"), [
    pytest.param(_crash, "platform_options.privacy", id="option"),
    pytest.param(_crash_media, "media_urls", id="media"),
])
def test_field_of_names_the_field_a_crash_was_reading(crash: Any, field: str) -> None:
    post = ClaimedPost.from_row(row(options={"privacy": None}))
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any type: the field is the point
        crash(post)
    assert field_of(caught.value) == field


def test_field_of_is_none_when_no_field_is_named() -> None:
    with pytest.raises(TypeError) as caught:
        raise TypeError("boom")
    assert field_of(caught.value) is None
