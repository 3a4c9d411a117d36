"""The simulator's LinkedIn: versioned headers, posts, image uploads, listing, faults."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from simkit import configure, posts, stats

ORG = "urn:li:organization:123"
HEADERS = {
    "Authorization": "Bearer li-token",
    "LinkedIn-Version": "202601",
    "X-Restli-Protocol-Version": "2.0.0",
}


def post_body(commentary: str = "hello li", author: str = ORG, **extra: Any) -> dict[str, Any]:
    """A text post body as the Posts API documents it."""
    return {
        "author": author,
        "commentary": commentary,
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
        **extra,
    }


def li_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """A LinkedIn error body, checked for its shape."""
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert body["status"] == status
    assert isinstance(body["serviceErrorCode"], int)
    assert isinstance(body["code"], str)
    assert isinstance(body["message"], str)
    return body


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """POST /rest/posts."""
    return await client.post("/rest/posts", json=body, headers=HEADERS)


async def uploaded_image(client: httpx.AsyncClient, owner: str = ORG, size: int = 1000) -> str:
    """Initialize and upload an image; return its urn."""
    init = await client.post(
        "/rest/images",
        params={"action": "initializeUpload"},
        json={"initializeUploadRequest": {"owner": owner}},
        headers=HEADERS,
    )
    assert init.status_code == 200, init.text
    value = init.json()["value"]
    put = await client.put(
        value["uploadUrl"], content=b"\xff" * size, headers={"Authorization": "Bearer li-token"}
    )
    assert put.status_code == 201, put.text
    return str(value["image"])


async def test_text_post_returns_urn_in_header(sim: httpx.AsyncClient) -> None:
    """201, an empty body and x-restli-id; the post is recorded under its author."""
    response = await create(sim, post_body())
    assert response.status_code == 201
    assert response.content == b""
    urn = response.headers["x-restli-id"]
    assert re.fullmatch(r"urn:li:share:\d+", urn)
    [record] = await posts(sim)
    assert (record["platform"], record["account"], record["post_id"]) == ("linkedin", ORG, urn)
    assert (record["message"], record["link"], record["media"]) == ("hello li", None, [])


@pytest.mark.parametrize(
    ("drop", "change", "status", "code"),
    [
        ("LinkedIn-Version", {}, 400, "VERSION_MISSING"),
        (None, {"LinkedIn-Version": "202301"}, 426, "NONEXISTENT_VERSION"),
        (None, {"LinkedIn-Version": "latest"}, 400, "INVALID_VERSION"),
        ("X-Restli-Protocol-Version", {}, 400, "INVALID_PROTOCOL_VERSION"),
        ("Authorization", {}, 401, "EMPTY_ACCESS_TOKEN"),
        (None, {"Authorization": "Bearer li-expired"}, 401, "INVALID_ACCESS_TOKEN"),
        (None, {"Authorization": "Bearer li-revoked"}, 401, "REVOKED_ACCESS_TOKEN"),
    ],
)
async def test_required_headers(
    sim: httpx.AsyncClient, drop: str | None, change: dict[str, str], status: int, code: str
) -> None:
    """Missing or bad version, protocol or token headers are refused; nothing is posted."""
    headers = {k: v for k, v in HEADERS.items() if k != drop} | change
    response = await sim.post("/rest/posts", json=post_body(), headers=headers)
    body = li_error(response, status)
    assert body["code"] == code
    if code == "INVALID_ACCESS_TOKEN":
        assert body["serviceErrorCode"] == 65600
    if code == "REVOKED_ACCESS_TOKEN":
        assert body["serviceErrorCode"] == 65601
    assert await posts(sim) == []


async def test_sunset_is_configurable(sim: httpx.AsyncClient) -> None:
    """Versions before linkedin_sunset_before are 426; that version itself works."""
    await configure(sim, linkedin_sunset_before="202603")
    old = await sim.post(
        "/rest/posts", json=post_body(), headers=HEADERS | {"LinkedIn-Version": "202602"}
    )
    li_error(old, 426)
    ok = await sim.post(
        "/rest/posts", json=post_body(), headers=HEADERS | {"LinkedIn-Version": "202603.01"}
    )
    assert ok.status_code == 201


async def test_image_upload_then_post(sim: httpx.AsyncClient) -> None:
    """initializeUpload, WAITING_UPLOAD, PUT bytes, AVAILABLE, then a post with the image."""
    init = await sim.post(
        "/rest/images",
        params={"action": "initializeUpload"},
        json={"initializeUploadRequest": {"owner": ORG}},
        headers=HEADERS,
    )
    value = init.json()["value"]
    base = str(sim.base_url).rstrip("/")
    assert value["uploadUrl"].startswith(f"{base}/_upload/linkedin/")
    assert value["uploadUrlExpiresAt"] > 0
    urn = value["image"]
    assert urn.startswith("urn:li:image:")
    waiting = await sim.get(f"/rest/images/{urn}", headers=HEADERS)
    assert waiting.json()["status"] == "WAITING_UPLOAD"
    early = await create(sim, post_body(content={"media": {"id": urn}}))
    assert "not been uploaded" in li_error(early, 422)["message"]
    put = await sim.put(
        value["uploadUrl"], content=b"\x00" * 2_000_000, headers={"Authorization": "Bearer t"}
    )
    assert put.status_code == 201
    available = await sim.get(f"/rest/images/{urn.replace(':', '%3A')}", headers=HEADERS)
    assert available.json()["status"] == "AVAILABLE"
    assert available.json()["owner"] == ORG
    response = await create(sim, post_body("with image", content={"media": {"id": urn}}))
    assert response.status_code == 201, response.text
    [record] = await posts(sim)
    assert record["media"] == [urn]


async def test_multi_image_and_article(sim: httpx.AsyncClient) -> None:
    """multiImage needs 2+ uploaded images; an article's source becomes the link."""
    a, b = await uploaded_image(sim), await uploaded_image(sim)
    one = await create(sim, post_body(content={"multiImage": {"images": [{"id": a}]}}))
    li_error(one, 422)
    two = post_body("album", content={"multiImage": {"images": [{"id": a}, {"id": b}]}})
    assert (await create(sim, two)).status_code == 201
    article = {"article": {"source": "https://example.com/x", "title": "X", "thumbnail": a}}
    assert (await create(sim, post_body("read this", content=article))).status_code == 201
    records = await posts(sim)
    assert records[0]["media"] == [a, b]
    assert records[1]["link"] == "https://example.com/x"


@pytest.mark.parametrize(
    "body",
    [
        post_body(author="urn:li:company:1"),
        post_body(author="123"),
        post_body(visibility="EVERYONE"),
        post_body(lifecycleState="DRAFT"),
        post_body(distribution={}),
        post_body(commentary="x" * 3001),
        post_body(content={"media": {"id": "urn:li:image:nope"}}),
        post_body(content={"article": {"source": "not a url"}}),
        post_body(content={"poll": {}}),
        post_body(commentary=""),
    ],
)
async def test_invalid_posts_are_422(sim: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """Bad authors, enums, lengths and media are 422 in LinkedIn's shape."""
    li_error(await create(sim, body), 422)
    assert await posts(sim) == []


async def test_image_of_another_owner_is_refused(sim: httpx.AsyncClient) -> None:
    """An image uploaded for another author cannot be used."""
    urn = await uploaded_image(sim, owner="urn:li:person:abc")
    li_error(await create(sim, post_body(content={"media": {"id": urn}})), 422)


async def test_upload_to_unknown_image_is_404(sim: httpx.AsyncClient) -> None:
    """PUT to an upload URL that was never issued is 404."""
    response = await sim.put(
        "/_upload/linkedin/D4E10AQnope", content=b"x", headers={"Authorization": "Bearer t"}
    )
    li_error(response, 404)


async def test_posts_by_author_newest_first(sim: httpx.AsyncClient) -> None:
    """q=author lists one author's posts newest first, paged by start/count."""
    urns = [(await create(sim, post_body(f"p{n}"))).headers["x-restli-id"] for n in range(3)]
    await create(sim, post_body("other", author="urn:li:person:zz"))
    params = {"q": "author", "author": ORG, "count": "2"}
    body = (await sim.get("/rest/posts", params=params, headers=HEADERS)).json()
    assert [e["id"] for e in body["elements"]] == urns[:0:-1]
    assert [e["commentary"] for e in body["elements"]] == ["p2", "p1"]
    assert body["paging"]["total"] == 3
    rest = await sim.get("/rest/posts", params=params | {"start": "2"}, headers=HEADERS)
    assert [e["id"] for e in rest.json()["elements"]] == urns[:1]
    one = await sim.get(f"/rest/posts/{urns[0]}", headers=HEADERS)
    assert one.json()["commentary"] == "p0"
    li_error(await sim.get("/rest/posts", params={"q": "x"}, headers=HEADERS), 400)


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("throttle", 429, "TOO_MANY_REQUESTS"),
        ("rate_limit_429", 429, "TOO_MANY_REQUESTS"),
        ("token_expired", 401, "INVALID_ACCESS_TOKEN"),
        ("permission", 403, "ACCESS_DENIED"),
        ("bad_input", 422, "UNPROCESSABLE_ENTITY"),
        ("transient", 500, "INTERNAL_SERVER_ERROR"),
    ],
)
async def test_faults_in_linkedin_shape(
    sim: httpx.AsyncClient, kind: str, status: int, code: str
) -> None:
    """Faults on POST /rest/posts use LinkedIn's bodies; 429s carry no Retry-After."""
    await configure(sim, fault_rate=1.0, faults=[kind])
    response = await create(sim, post_body(kind))
    assert li_error(response, status)["code"] == code
    assert "retry-after" not in response.headers
    assert await posts(sim) == []
    assert (await stats(sim))["faults_injected"] == {kind: 1}


async def test_transient_alternates_500_and_503(sim: httpx.AsyncClient) -> None:
    """Transient faults answer 500 and 503 in turn."""
    await configure(sim, fault_rate=1.0, faults=["transient"])
    codes = [(await create(sim, post_body())).status_code for _ in range(4)]
    assert codes == [500, 503, 500, 503]


async def test_timeout_after_records_and_can_be_found(sim: httpx.AsyncClient) -> None:
    """A post that timed out after acceptance is listed by author (and recorded once)."""
    await configure(sim, fault_rate=1.0, faults=["timeout_after"])
    with pytest.raises(httpx.ReadTimeout):
        await sim.post("/rest/posts", json=post_body("lost?"), headers=HEADERS, timeout=0.3)
    await configure(sim, fault_rate=0.0)
    params = {"q": "author", "author": ORG}
    [element] = (await sim.get("/rest/posts", params=params, headers=HEADERS)).json()["elements"]
    assert element["commentary"] == "lost?"
    assert len(await posts(sim)) == 1
