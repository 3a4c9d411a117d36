"""The LinkedIn adapter: request shapes per post type, the sending gate, transport errors.

LinkedIn is mocked with respx from shared/platforms.md section 3: POST /rest/posts answers
201 with the URN in x-restli-id; initializeUpload answers {"value": {"uploadUrl", "image"}};
the bytes are PUT to uploadUrl; GET /rest/images/{urn} answers {"status": "AVAILABLE"}.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from linkedin_support import (
    API,
    IMAGES,
    ORG,
    PERSON,
    SHARE,
    TOKEN,
    LinkedIn,
    adapter,
    assert_linkedin_headers,
    assert_no_token,
    body_of,
    harness,
    image_bytes,
    image_urn,
    make_post,
)

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.base import publish_masked
from publisher.platforms.linkedin.adapter import little_text

ADAPTER = adapter()
DISTRIBUTION = {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                "thirdPartyDistributionChannels": []}
MEDIA_HOST = "cdn.example.com"


@pytest.fixture
async def li() -> AsyncIterator[LinkedIn]:
    """A respx-mocked LinkedIn with its gate and context."""
    async with harness() as mocked:
        yield mocked


def expected_body(author: str, commentary: str, **content: object) -> dict[str, object]:
    """The POST /rest/posts body platforms.md documents."""
    body: dict[str, object] = {
        "author": author, "commentary": commentary, "visibility": "PUBLIC",
        "distribution": DISTRIBUTION, "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False}
    if content:
        body["content"] = content
    return body


# --- publishing each post type -------------------------------------------------------------


@pytest.mark.parametrize("author", [ORG, PERSON])
async def test_text_post_is_one_post_with_the_documented_body(li: LinkedIn, author: str) -> None:
    """A text post is one POST /rest/posts with the headers and body, then PUBLISHED."""
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post(content="Launch day", author=author),
                                   li.context)

    assert outcome == Outcome.published(SHARE, f"https://www.linkedin.com/feed/update/{SHARE}/")
    assert posts.call_count == 1
    request = posts.calls.last.request
    assert_linkedin_headers(request)
    assert body_of(request) == expected_body(author, "Launch day")
    assert li.gate.calls == 1
    assert li.gate.sent_before == [[]]


async def test_commentary_is_escaped_as_little_text(li: LinkedIn) -> None:
    """Markup characters are escaped so LinkedIn does not cut the text; mentions survive."""
    posts = li.posts()
    text = "Q3 (final) #results @[Acme](urn:li:organization:42) a_b *c* [x] {y} <z> ~ | \\"

    await publish_masked(ADAPTER, make_post(content=text), li.context)

    assert body_of(posts.calls.last.request)["commentary"] == (
        r"Q3 \(final\) \#results @[Acme](urn:li:organization:42) a\_b \*c\* \[x\] \{y\} "
        r"\<z\> \~ \| \\")
    assert little_text("plain words, 100% fine!") == "plain words, 100% fine!"


async def test_link_post_sends_an_article_with_title_and_description(li: LinkedIn) -> None:
    """A link post carries content.article: source, title and description from options."""
    posts = li.posts()
    post = make_post("link", content="Read this", link_url="https://example.com/a?id=9",
                     title="Post title",
                     options={"link_title": "Article title", "link_description": "Why it matters"})

    outcome = await publish_masked(ADAPTER, post, li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert body_of(posts.calls.last.request) == expected_body(ORG, "Read this", article={
        "source": "https://example.com/a?id=9", "title": "Article title",
        "description": "Why it matters"})
    assert li.gate.calls == 1


async def test_link_title_falls_back_to_post_title(li: LinkedIn) -> None:
    """Without options.link_title the post's title is the article title; no description."""
    posts = li.posts()
    post = make_post("link", link_url="https://example.com/a", title="The post's title")

    await publish_masked(ADAPTER, post, li.context)

    assert body_of(posts.calls.last.request)["content"] == {
        "article": {"source": "https://example.com/a", "title": "The post's title"}}


async def test_link_post_with_an_image_uploads_it_as_thumbnail(li: LinkedIn) -> None:
    """One media URL on a link post becomes the article's uploaded thumbnail."""
    li.all_media(1)
    li.initialize()
    li.upload()
    li.status("AVAILABLE")
    posts = li.posts()
    post = make_post("link", link_url="https://example.com/a", title="T", media_urls=IMAGES[:1])

    outcome = await publish_masked(ADAPTER, post, li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert body_of(posts.calls.last.request)["content"]["article"]["thumbnail"] == image_urn(1)


async def test_image_post_uploads_then_posts(li: LinkedIn) -> None:
    """Media fetched, image registered, bytes PUT, status checked, then the post, in order."""
    media = li.all_media(1)[0]
    init = li.initialize()
    upload = li.upload()
    status = li.status("AVAILABLE")
    posts = li.posts()
    post = make_post("image", content="Photo", media_urls=IMAGES[:1],
                     options={"alt_texts": ["A red bicycle"]})

    outcome = await publish_masked(ADAPTER, post, li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert body_of(init.calls.last.request) == {"initializeUploadRequest": {"owner": ORG}}
    assert_linkedin_headers(init.calls.last.request)
    put = upload.calls.last.request
    assert put.content == image_bytes(1)
    assert put.headers["authorization"] == f"Bearer {TOKEN}"
    assert put.headers["content-length"] == str(len(image_bytes(1)))
    assert "transfer-encoding" not in put.headers
    assert TOKEN not in str(put.url)
    check = status.calls.last.request
    assert check.url.raw_path.decode() == f"/rest/images/{quote(image_urn(1), safe='')}"
    assert_linkedin_headers(check)
    assert media.call_count == 1
    assert body_of(posts.calls.last.request) == expected_body(
        ORG, "Photo", media={"id": image_urn(1), "altText": "A red bicycle"})
    assert li.gate.calls == 1
    assert li.gate.sent_before == [[
        f"GET {MEDIA_HOST}/img/1.jpg", "POST api.linkedin.com/rest/images",
        "PUT www.linkedin.com/dms-uploads/sp/D4E10AQ/uploaded-image/0",
        f"GET api.linkedin.com/rest/images/{image_urn(1)}"]]


async def test_multi_image_post_keeps_order_and_alt_texts(li: LinkedIn) -> None:
    """Three images become content.multiImage in order; alt texts where given."""
    li.all_media(3)
    li.initialize()
    upload = li.upload()
    li.status("AVAILABLE")
    posts = li.posts()
    post = make_post("images", media_urls=IMAGES[:3], options={"alt_texts": ["first", ""]})

    outcome = await publish_masked(ADAPTER, post, li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert [call.request.content for call in upload.calls] == [image_bytes(n) for n in (1, 2, 3)]
    assert body_of(posts.calls.last.request)["content"] == {"multiImage": {"images": [
        {"id": image_urn(1), "altText": "first"}, {"id": image_urn(2)}, {"id": image_urn(3)}]}}
    assert li.gate.calls == 1


# --- the irreversible call: the gate and its answer ----------------------------------------


@pytest.mark.parametrize(("post_type", "media"), [("text", ()), ("image", IMAGES[:1]),
                                                  ("images", IMAGES[:2])])
async def test_lost_claim_sends_nothing(li: LinkedIn, post_type: str,
                                        media: tuple[str, ...]) -> None:
    """When begin_sending returns False, POST /rest/posts is never made: LEASE_LOST."""
    li.gate.allow = False
    li.all_media(len(media))
    li.initialize()
    li.upload()
    li.status("AVAILABLE")
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post(post_type, media_urls=media), li.context)

    assert outcome.kind is OutcomeKind.LEASE_LOST
    assert li.gate.calls == 1
    assert posts.call_count == 0


async def test_url_encoded_restli_id_is_decoded(li: LinkedIn) -> None:
    """An x-restli-id sent URL-encoded still names the post."""
    li.posts(urn="urn%3Ali%3AugcPost%3A7263000000000000001")

    outcome = await publish_masked(ADAPTER, make_post(), li.context)

    assert outcome.platform_post_id == "urn:li:ugcPost:7263000000000000001"
    assert outcome.url == "https://www.linkedin.com/feed/update/urn:li:ugcPost:7263000000000000001/"


@pytest.mark.parametrize(("status", "urn"), [(201, None), (200, None), (201, "share-123")])
async def test_accepted_without_a_urn_is_unknown(li: LinkedIn, status: int,
                                                 urn: str | None) -> None:
    """A 2xx to the post call without a usable x-restli-id may be live: UNKNOWN."""
    li.posts(status, urn=urn)

    outcome = await publish_masked(ADAPTER, make_post(), li.context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert "x-restli-id" in (outcome.reason or "")


# --- transport errors ----------------------------------------------------------------------


async def test_connect_error_on_the_post_call_is_retried(li: LinkedIn) -> None:
    """A connection that never opened sent nothing: RETRY."""
    li.router.post(f"{API}/rest/posts").mock(side_effect=httpx.ConnectError("refused"))

    outcome = await publish_masked(ADAPTER, make_post(), li.context)

    assert outcome.kind is OutcomeKind.RETRY
    assert "nothing was sent" in (outcome.reason or "")
    assert_no_token(outcome)


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.RemoteProtocolError,
                                   httpx.WriteError])
async def test_no_answer_to_the_post_call_is_unknown(
        li: LinkedIn, error: type[httpx.TransportError]) -> None:
    """Sent but unanswered on POST /rest/posts may be live: UNKNOWN, never RETRY."""
    li.router.post(f"{API}/rest/posts").mock(side_effect=error("gone"))

    outcome = await publish_masked(ADAPTER, make_post(), li.context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert error.__name__ in (outcome.reason or "")
    assert_no_token(outcome)


@pytest.mark.parametrize("stage", ["initialize", "upload", "status"])
@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError,
                                   httpx.RemoteProtocolError])
async def test_transport_error_while_preparing_is_retried(
        li: LinkedIn, stage: str, error: type[httpx.TransportError]) -> None:
    """Preparation is invisible, so any transport error there is RETRY, before the gate."""
    li.all_media(1)
    routes = {"initialize": li.initialize(), "upload": li.upload(),
              "status": li.status("AVAILABLE")}
    routes[stage].mock(side_effect=error("gone"))
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]), li.context)

    assert outcome.kind is OutcomeKind.RETRY
    assert routes[stage].call_count == 1
    assert posts.call_count == 0
    assert li.gate.calls == 0
    assert_no_token(outcome)


# --- never twice: errors on the post call, duplicates, reconciliation (issue 11) ------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_5xx_with_linkedins_body_on_the_post_call_is_unknown(li: LinkedIn,
                                                                     status: int) -> None:
    """LinkedIn's own 5xx body on POST /rest/posts does not prove nothing was made: UNKNOWN
    (reconciliation), after one post call, never a RETRY that would send it again."""
    posts = li.router.post(f"{API}/rest/posts").respond(
        status, json={"status": status, "serviceErrorCode": 0, "code": "INTERNAL_SERVER_ERROR",
                      "message": "Internal Server Error"})

    outcome = await publish_masked(ADAPTER, make_post(), li.context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert posts.call_count == 1
    assert li.gate.calls == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_a_5xx_while_preparing_an_image_is_retried(li: LinkedIn, status: int) -> None:
    """The same 5xx on initializeUpload is a preparation error: RETRY, nothing sent."""
    li.all_media(1)
    li.router.post(f"{API}/rest/images").respond(
        status, json={"status": status, "message": "Internal Server Error"})
    posts = li.posts()

    outcome = await publish_masked(ADAPTER, make_post("image", media_urls=IMAGES[:1]),
                                   li.context)

    assert outcome.kind is OutcomeKind.RETRY
    assert posts.call_count == 0
    assert li.gate.calls == 0


async def test_a_duplicate_refusal_is_recorded_as_the_live_post(li: LinkedIn) -> None:
    """422 'Content is a duplicate of urn:li:share:N' (LinkedIn's real body): the post is
    live as that URN, recorded PUBLISHED with its URL."""
    live = "urn:li:share:7141138937766391808"
    li.router.post(f"{API}/rest/posts").respond(422, json={
        "errorDetailType": "com.linkedin.common.error.BadRequest",
        "message": "com.linkedin.content.common.exception.BadRequestResponseException: "
                   f"Content is a duplicate of {live}",
        "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected",
                                          "input": {}, "code": "DUPLICATE_POST"}]},
        "status": 422})

    outcome = await publish_masked(ADAPTER, make_post(), li.context)

    assert outcome.kind is OutcomeKind.PUBLISHED
    assert outcome.platform_post_id == live
    assert outcome.url == f"https://www.linkedin.com/feed/update/{live}/"


def listed(*elements: dict[str, object]) -> dict[str, object]:
    return {"elements": list(elements), "paging": {"start": 0, "count": 50}}


def element(urn: str, commentary: str, created_ms: int) -> dict[str, object]:
    return {"id": urn, "author": ORG, "commentary": commentary, "createdAt": created_ms}


SENT = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # when the posts below were stamped sending


async def test_reconcile_finds_the_post_among_the_authors_posts(li: LinkedIn) -> None:
    """A post in review is found by its commentary (as sent: escaped little text) among the
    author's newest posts, created after it was sent: PUBLISHED as that URN."""
    sent = SENT
    ms = int(sent.timestamp() * 1000)
    text = "Launch (day) #1"
    route = li.router.get(f"{API}/rest/posts").respond(200, json=listed(
        element("urn:li:share:2", "other", ms + 5000),
        element("urn:li:share:1", little_text(text), ms + 2000)))

    outcome = await ADAPTER.reconcile(make_post(content=text, sending_started_at=sent),
                                      li.context)

    assert outcome == Outcome.published("urn:li:share:1",
                                        "https://www.linkedin.com/feed/update/urn:li:share:1/")
    request = route.calls.last.request
    assert request.url.params["q"] == "author"
    assert request.url.params["author"] == ORG
    assert quote(ORG, safe="") in str(request.url)
    assert_linkedin_headers(request)


async def test_reconcile_ignores_an_older_post_with_the_same_text(li: LinkedIn) -> None:
    """The same text posted well before this post was sent is another post: UNKNOWN."""
    sent = SENT
    day_before = int(sent.timestamp() * 1000) - 86_400_000
    li.router.get(f"{API}/rest/posts").respond(200, json=listed(
        element("urn:li:share:1", "Weekly hello", day_before)))

    outcome = await ADAPTER.reconcile(make_post(content="Weekly hello", sending_started_at=sent),
                                      li.context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert "not found" in (outcome.reason or "")


@pytest.mark.parametrize("status", [403, 500])
async def test_reconcile_that_cannot_list_is_unknown(li: LinkedIn, status: int) -> None:
    """A member token may not read posts (403): nothing is settled, nothing is sent."""
    li.router.get(f"{API}/rest/posts").respond(status, json={"status": status,
                                                             "message": "no"})
    posts = li.router.post(f"{API}/rest/posts")

    outcome = await ADAPTER.reconcile(make_post(), li.context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert posts.call_count == 0


async def test_reconcile_of_a_post_without_text_is_unknown(li: LinkedIn) -> None:
    """An image post without commentary cannot be told apart: UNKNOWN without a call."""
    outcome = await ADAPTER.reconcile(make_post("image", content="", media_urls=IMAGES[:1]),
                                      li.context)

    assert outcome.kind is OutcomeKind.UNKNOWN
    assert li.router.calls.call_count == 0
