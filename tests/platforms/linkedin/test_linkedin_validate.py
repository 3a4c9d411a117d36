"""LinkedInAdapter.validate: every rule rejects with a reason naming the problem."""

from __future__ import annotations

from typing import Any

import pytest
from linkedin_support import IMAGES, ORG, PERSON, adapter, make_post

from publisher.platforms.linkedin.adapter import MAX_COMMENTARY_CHARS

ADAPTER = adapter()
LINK = {"post_type": "link", "link_url": "https://example.com/a", "title": "A title"}


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"author": "2414183"}, "'2414183' is not an author URN", id="bare-id"),
    pytest.param({"author": "urn:li:company:2414183"}, "urn:li:organization:<number>",
                 id="company-urn"),
    pytest.param({"author": "urn:li:organization:acme"}, "not an author URN",
                 id="organization-not-numeric"),
    pytest.param({"author": "urn:li:person:"}, "not an author URN", id="person-empty"),
    pytest.param({"author": "urn:li:person:abc def"}, "not an author URN", id="person-space"),
    pytest.param({"post_type": "video"}, "'video'", id="type"),
    pytest.param({"post_type": "carousel"}, "text, link, image, images", id="type-lists-choices"),
    pytest.param({"content": ""}, "needs commentary", id="empty-text"),
    pytest.param({"content": " \n\t"}, "needs commentary", id="blank-text"),
    pytest.param({"content": None}, "needs commentary", id="no-text"),
    pytest.param({"content": "x" * (MAX_COMMENTARY_CHARS + 1)},
                 "3001 characters; the limit is 3000", id="text-too-long"),
    pytest.param({"post_type": "image", "media_urls": IMAGES[:1], "content": "y" * 3001},
                 "the limit is 3000", id="image-commentary-too-long"),
    pytest.param({**LINK, "link_url": None}, "http(s) link_url", id="link-without-url"),
    pytest.param({**LINK, "link_url": "example.com/a"}, "http(s) link_url",
                 id="link-without-scheme"),
    pytest.param({**LINK, "title": None}, "needs a title", id="link-without-title"),
    pytest.param({**LINK, "title": "  "}, "needs a title", id="link-blank-title"),
    pytest.param({**LINK, "title": None, "options": {"link_title": 5}},
                 "option link_title must be text, got 5", id="link-title-not-text"),
    pytest.param({**LINK, "options": {"link_description": ["x"]}},
                 "link_description must be text", id="link-description-not-text"),
    pytest.param({**LINK, "media_urls": IMAGES[:2]}, "at most 1 image URL (its thumbnail), got 2",
                 id="link-two-thumbnails"),
    pytest.param({"post_type": "image"}, "exactly 1 image URL, got 0", id="image-none"),
    pytest.param({"post_type": "image", "media_urls": IMAGES[:2]}, "exactly 1 image URL, got 2",
                 id="image-two"),
    pytest.param({"post_type": "images", "media_urls": IMAGES[:1]}, "2-20 image URLs, got 1",
                 id="images-one"),
    pytest.param({"post_type": "images",
                  "media_urls": tuple(f"https://cdn.example.com/{n}.jpg" for n in range(21))},
                 "2-20 image URLs, got 21", id="images-twenty-one"),
    pytest.param({"post_type": "images", "media_urls": IMAGES[:2],
                  "options": {"alt_texts": "one for all"}}, "alt_texts must be a list",
                 id="alt-texts-not-list"),
    pytest.param({"post_type": "images", "media_urls": IMAGES[:2],
                  "options": {"alt_texts": ["a", 2]}}, "list of strings", id="alt-text-not-text"),
    pytest.param({"post_type": "image", "media_urls": IMAGES[:1],
                  "options": {"alt_texts": ["a", "b"]}}, "2 entries for 1 image",
                 id="alt-texts-too-many"),
])
def test_validate_names_the_problem(overrides: dict[str, Any], expected: str) -> None:
    """Each rule rejects with a reason that names what is wrong."""
    reason = ADAPTER.validate(make_post(**overrides))
    assert reason is not None
    assert expected in reason


def test_validate_needs_an_account() -> None:
    """A post without an account cannot name its author."""
    reason = ADAPTER.validate(make_post(account=None))
    assert reason is not None
    assert "no LinkedIn account" in reason


@pytest.mark.parametrize("overrides", [
    pytest.param({}, id="text-organization"),
    pytest.param({"author": PERSON}, id="text-person"),
    pytest.param({"content": "x" * MAX_COMMENTARY_CHARS}, id="text-at-limit"),
    pytest.param({**LINK, "content": ""}, id="link-no-commentary"),
    pytest.param({**LINK, "title": None, "options": {"link_title": "From options"}},
                 id="link-title-from-options"),
    pytest.param({**LINK, "media_urls": IMAGES[:1]}, id="link-with-thumbnail"),
    pytest.param({"post_type": "image", "content": None, "media_urls": IMAGES[:1]}, id="image"),
    pytest.param({"post_type": "images", "media_urls": IMAGES[:2],
                  "options": {"alt_texts": ["first"]}}, id="images-2-some-alt"),
    pytest.param({"post_type": "images", "media_urls": IMAGES[:20]}, id="images-20"),
])
def test_validate_accepts_valid_posts(overrides: dict[str, Any]) -> None:
    """A post that follows every rule validates to None."""
    assert MAX_COMMENTARY_CHARS == 3000
    assert ADAPTER.validate(make_post(**{"author": ORG, **overrides})) is None


# Issue 10, items 3 and 6: nothing the post asks for is dropped, nothing is invented.
@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"media_urls": IMAGES[:3]}, "a linkedin text post takes no media, but it has 3",
                 id="text-with-images"),
    pytest.param({"post_type": ""}, "no post_type; linkedin takes one of: text, link, image",
                 id="empty-post-type"),
    pytest.param({"content": "\u200b\u2060\ufeff"}, "needs commentary text",
                 id="zero-width-commentary"),
    pytest.param({**LINK, "title": "\u200b\u200b"}, "needs a title", id="invisible-title"),
    pytest.param({**LINK, "title": None, "options": {"link_title": "\u3164"}},
                 "needs a title", id="invisible-link-title"),
    pytest.param({"options": {"visibility": "CONNECTIONS"}},
                 "linkedin does not take option 'visibility'", id="unknown-option"),
    pytest.param({**LINK, "options": {"alt_texts": ["a"]}},
                 "option alt_texts applies only to image, images posts", id="option-misplaced"),
    pytest.param({"options": {"link_title": "T"}}, "applies only to link posts",
                 id="link-title-on-text"),
    pytest.param({**LINK, "options": {"link_description": None}},
                 "link_description must be text, got null", id="null-option"),
])
def test_validate_refuses_what_would_be_dropped_or_invented(
        overrides: dict[str, Any], expected: str) -> None:
    reason = ADAPTER.validate(make_post(**{"author": ORG, **overrides}))
    assert reason is not None
    assert expected in reason
