"""The simulator's Instagram: containers, their states, publishing, quota, faults, listing."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from simkit import configure, meta_error, posts, stats

V = "/v25.0"
IG = "17841400000000001"
AUTH = {"Authorization": "Bearer ig-token"}
IMG = "https://cdn.example.com/a.jpg"
VIDEO = "https://cdn.example.com/v.mp4"


async def container(client: httpx.AsyncClient, ig: str = IG, **params: Any) -> str:
    """Create a container; return its id."""
    response = await client.post(f"{V}/{ig}/media", data=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def status(client: httpx.AsyncClient, container_id: str) -> dict[str, Any]:
    """The container's status_code and status."""
    response = await client.get(
        f"{V}/{container_id}", params={"fields": "status_code,status"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def publish(client: httpx.AsyncClient, creation_id: str, ig: str = IG) -> httpx.Response:
    """media_publish with the creation id in the form body."""
    return await client.post(
        f"{V}/{ig}/media_publish", data={"creation_id": creation_id}, headers=AUTH
    )


async def test_image_post_publishes_once_with_permalink(sim: httpx.AsyncClient) -> None:
    """An image container is FINISHED at once, publishes, and gets a /p/ permalink."""
    cid = await container(sim, image_url=IMG, caption="hello ig", alt_text="a cat")
    assert await status(sim, cid) == {
        "id": cid,
        "status_code": "FINISHED",
        "status": "Finished: Media has been uploaded and it is ready to be published.",
    }
    response = await publish(sim, cid)
    assert response.status_code == 200, response.text
    media_id = response.json()["id"]
    assert (await status(sim, cid))["status_code"] == "PUBLISHED"
    [record] = await posts(sim)
    assert record["platform"] == "instagram"
    assert record["account"] == IG
    assert record["post_id"] == media_id
    assert record["message"] == "hello ig"
    assert record["media"] == [IMG]
    assert record["link"] is None
    link = await sim.get(f"{V}/{media_id}", params={"fields": "permalink"}, headers=AUTH)
    assert re.fullmatch(r"https://www\.instagram\.com/p/[A-Za-z0-9_-]+/", link.json()["permalink"])


async def test_second_publish_of_a_container_records_nothing(sim: httpx.AsyncClient) -> None:
    """Publishing a PUBLISHED container again is an 'already published' error, no post."""
    cid = await container(sim, image_url=IMG, caption="once")
    assert (await publish(sim, cid)).status_code == 200
    again = await sim.post(f"{V}/{IG}/media_publish", params={"creation_id": cid}, headers=AUTH)
    assert again.status_code == 400
    error = meta_error(again)
    assert error["code"] == 9007
    assert "already published" in error["error_user_title"].lower()
    assert (await stats(sim))["accepted"] == 1


async def test_reel_is_in_progress_until_processed(sim: httpx.AsyncClient) -> None:
    """A reel stays IN_PROGRESS for the processing time; publishing early is 9007/2207027."""
    await configure(sim, video_processing_seconds=0.3)
    cid = await container(sim, media_type="REELS", video_url=VIDEO, caption="reel")
    assert (await status(sim, cid))["status_code"] == "IN_PROGRESS"
    early = await publish(sim, cid)
    assert early.status_code == 400
    error = meta_error(early)
    assert (error["code"], error["error_subcode"]) == (9007, 2207027)
    assert await posts(sim) == []
    await asyncio.sleep(0.35)
    assert (await status(sim, cid))["status_code"] == "FINISHED"
    media_id = (await publish(sim, cid)).json()["id"]
    fields = {"fields": "permalink,media_type,media_product_type,caption"}
    body = (await sim.get(f"{V}/{media_id}", params=fields, headers=AUTH)).json()
    assert "/reel/" in body["permalink"]
    assert (body["media_type"], body["media_product_type"], body["caption"]) == (
        "VIDEO",
        "REELS",
        "reel",
    )


async def test_story_publishes(sim: httpx.AsyncClient) -> None:
    """A story container with an image publishes as a STORY."""
    cid = await container(sim, media_type="STORIES", image_url=IMG)
    media_id = (await publish(sim, cid)).json()["id"]
    body = (
        await sim.get(f"{V}/{media_id}", params={"fields": "media_product_type"}, headers=AUTH)
    ).json()
    assert body["media_product_type"] == "STORY"


async def test_carousel_of_images_and_a_video(sim: httpx.AsyncClient) -> None:
    """Children, then a parent: IN_PROGRESS while a child video processes, one post."""
    await configure(sim, video_processing_seconds=0.3)
    a = await container(sim, image_url=IMG, is_carousel_item="true")
    b = await container(sim, image_url="https://cdn.example.com/b.jpg", is_carousel_item="true")
    c = await container(sim, media_type="VIDEO", video_url=VIDEO, is_carousel_item="true")
    parent = await container(sim, media_type="CAROUSEL", children=f"{a},{b},{c}", caption="album")
    assert (await status(sim, parent))["status_code"] == "IN_PROGRESS"
    await asyncio.sleep(0.35)
    assert (await status(sim, parent))["status_code"] == "FINISHED"
    child = await publish(sim, a)
    assert child.status_code == 400
    assert meta_error(child)["code"] == 100
    response = await publish(sim, parent)
    assert response.status_code == 200, response.text
    [record] = await posts(sim)
    assert record["message"] == "album"
    assert record["media"] == [IMG, "https://cdn.example.com/b.jpg", VIDEO]
    album = await sim.get(
        f"{V}/{response.json()['id']}", params={"fields": "media_type"}, headers=AUTH
    )
    assert album.json()["media_type"] == "CAROUSEL_ALBUM"


async def test_carousel_children_are_checked(sim: httpx.AsyncClient) -> None:
    """One child, eleven, an unknown id, a plain container or another account's: code 100."""
    items = [await container(sim, image_url=IMG, is_carousel_item="true") for _ in range(11)]
    plain = await container(sim, image_url=IMG)
    foreign = await container(sim, ig="999", image_url=IMG, is_carousel_item="true")
    for children in (
        items[:1],
        items,
        [items[0], "424242"],
        [items[0], plain],
        [items[0], foreign],
    ):
        response = await sim.post(
            f"{V}/{IG}/media",
            data={"media_type": "CAROUSEL", "children": ",".join(children)},
            headers=AUTH,
        )
        assert response.status_code == 400, children
        assert meta_error(response)["code"] == 100
    ok = await sim.post(
        f"{V}/{IG}/media",
        json={"media_type": "CAROUSEL", "children": items[:10]},
        headers=AUTH,
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("params", "subcode"),
    [
        ({"caption": "no url"}, None),
        ({"media_type": "VIDEO", "video_url": VIDEO}, None),
        ({"media_type": "REELS", "image_url": IMG}, None),
        ({"media_type": "STORIES"}, None),
        ({"media_type": "HOLOGRAM", "image_url": IMG}, None),
        ({"image_url": IMG, "caption": "x" * 2201}, 2207010),
    ],
)
async def test_invalid_containers(
    sim: httpx.AsyncClient, params: dict[str, str], subcode: int | None
) -> None:
    """Missing URLs, single VIDEO, unknown types and long captions are code 100."""
    response = await sim.post(f"{V}/{IG}/media", data=params, headers=AUTH)
    assert response.status_code == 400
    error = meta_error(response)
    assert error["code"] == 100
    assert error.get("error_subcode") == subcode


async def test_container_expires(sim: httpx.AsyncClient) -> None:
    """An unpublished container is EXPIRED after its TTL; publishing it is -2/2207020."""
    await configure(sim, instagram_container_ttl=0.2)
    cid = await container(sim, image_url=IMG)
    await asyncio.sleep(0.25)
    assert (await status(sim, cid))["status_code"] == "EXPIRED"
    response = await publish(sim, cid)
    error = meta_error(response)
    assert (error["code"], error["error_subcode"]) == (-2, 2207020)
    assert await posts(sim) == []


async def test_publishing_quota(sim: httpx.AsyncClient) -> None:
    """Past the quota media_publish is 9/2207042; content_publishing_limit reports usage."""
    await configure(sim, instagram_quota=2)
    for n in range(2):
        cid = await container(sim, image_url=IMG, caption=str(n))
        assert (await publish(sim, cid)).status_code == 200
    cid = await container(sim, image_url=IMG, caption="third")
    error = meta_error(await publish(sim, cid))
    assert (error["code"], error["error_subcode"]) == (9, 2207042)
    limit = await sim.get(
        f"{V}/{IG}/content_publishing_limit",
        params={"fields": "quota_usage,config"},
        headers=AUTH,
    )
    assert limit.json() == {
        "data": [{"quota_usage": 2, "config": {"quota_total": 2, "quota_duration": 86400}}]
    }
    other = await container(sim, ig="555", image_url=IMG)
    assert (await publish(sim, other, ig="555")).status_code == 200
    assert len(await posts(sim)) == 3


async def test_container_error_fault(sim: httpx.AsyncClient) -> None:
    """container_error puts a new container in ERROR (2207001); publishing it fails."""
    await configure(sim, fault_rate=1.0, faults=["container_error"])
    cid = await container(sim, image_url=IMG)
    body = await status(sim, cid)
    assert body["status_code"] == "ERROR"
    assert "2207001" in body["status"]
    error = meta_error(await publish(sim, cid))
    assert (error["code"], error["error_subcode"]) == (-1, 2207001)
    assert await posts(sim) == []
    assert (await stats(sim))["faults_injected"] == {"container_error": 1}


ERROR_FAULTS = [
    ("transient", 500, -1, True),
    ("throttle", 400, 80002, True),
    ("rate_limit_429", 429, 4, True),
    ("token_expired", 400, 190, False),
    ("permission", 403, 10, False),
    ("bad_input", 400, 100, False),
]


@pytest.mark.parametrize(("kind", "http_status", "code", "transient"), ERROR_FAULTS)
async def test_publish_faults_leave_container_publishable(
    sim: httpx.AsyncClient, kind: str, http_status: int, code: int, transient: bool
) -> None:
    """Each fault answers in Meta's shape, records nothing; the retry then posts once."""
    cid = await container(sim, image_url=IMG, caption=kind)
    await configure(sim, fault_rate=1.0, faults=[kind], retry_after=3, regain_minutes=5)
    response = await publish(sim, cid)
    assert response.status_code == http_status
    error = meta_error(response)
    assert error["code"] == code
    assert error["is_transient"] is transient
    if kind == "throttle":
        [usage] = json.loads(response.headers["x-business-use-case-usage"])[IG]
        assert (usage["type"], usage["estimated_time_to_regain_access"]) == ("instagram", 5)
    if kind == "rate_limit_429":
        assert response.headers["retry-after"] == "3"
    assert await posts(sim) == []
    await configure(sim, fault_rate=0.0)
    assert (await status(sim, cid))["status_code"] == "FINISHED"
    assert (await publish(sim, cid)).status_code == 200
    assert len(await posts(sim)) == 1


async def test_timeout_after_publish_is_verifiable(sim: httpx.AsyncClient) -> None:
    """After a timed-out publish the container reads PUBLISHED and the media is listed."""
    cid = await container(sim, image_url=IMG, caption="ambiguous")
    await configure(sim, fault_rate=1.0, faults=["timeout_after"])
    with pytest.raises(httpx.ReadTimeout):
        await sim.post(
            f"{V}/{IG}/media_publish", data={"creation_id": cid}, headers=AUTH, timeout=0.3
        )
    await configure(sim, fault_rate=0.0)
    assert (await status(sim, cid))["status_code"] == "PUBLISHED"
    listed = await sim.get(
        f"{V}/{IG}/media", params={"fields": "id,caption,timestamp,permalink"}, headers=AUTH
    )
    [item] = listed.json()["data"]
    assert item["caption"] == "ambiguous"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", item["timestamp"])
    assert (await publish(sim, cid)).status_code == 400
    assert len(await posts(sim)) == 1


async def test_media_listing_newest_first_and_paged(sim: httpx.AsyncClient) -> None:
    """The media edge lists this account's media newest first, with paging."""
    ids = []
    for n in range(3):
        ids.append(await publish(sim, await container(sim, image_url=IMG, caption=f"m{n}")))
    await publish(sim, await container(sim, ig="777", image_url=IMG), ig="777")
    media_ids = [r.json()["id"] for r in ids]
    first = await sim.get(
        f"{V}/{IG}/media", params={"fields": "id,caption", "limit": "2"}, headers=AUTH
    )
    body = first.json()
    assert [d["id"] for d in body["data"]] == media_ids[:0:-1]
    assert [d["caption"] for d in body["data"]] == ["m2", "m1"]
    rest = (await sim.get(body["paging"]["next"], headers=AUTH)).json()
    assert [d["id"] for d in rest["data"]] == media_ids[:1]
    bad = await sim.get(f"{V}/{IG}/media", params={"fields": "likes"}, headers=AUTH)
    assert meta_error(bad)["code"] == 100


async def test_creation_id_in_query_and_usage_headers(sim: httpx.AsyncClient) -> None:
    """creation_id works as a query parameter; answers carry Instagram usage headers."""
    cid = await container(sim, image_url=IMG)
    response = await sim.post(f"{V}/{IG}/media_publish", params={"creation_id": cid}, headers=AUTH)
    assert response.status_code == 200
    assert "call_count" in json.loads(response.headers["x-app-usage"])
    [usage] = json.loads(response.headers["x-business-use-case-usage"])[IG]
    assert usage["type"] == "instagram"


async def test_tokens_and_unknown_objects(sim: httpx.AsyncClient) -> None:
    """Revoked tokens are 190/460; unknown ids and foreign containers are code 100."""
    revoked = await sim.post(
        f"{V}/{IG}/media", data={"image_url": IMG}, headers={"Authorization": "Bearer x-revoked"}
    )
    error = meta_error(revoked)
    assert (error["code"], error["error_subcode"]) == (190, 460)
    missing = await sim.get(f"{V}/31337", params={"fields": "status_code"}, headers=AUTH)
    assert meta_error(missing)["code"] == 100
    cid = await container(sim, ig="888", image_url=IMG)
    assert meta_error(await publish(sim, cid))["code"] == 100
    assert await posts(sim) == []


# -- the two hosts: Facebook Login and Instagram Login ----------------------------------

CANNOT_PARSE = (190, "Invalid OAuth access token - Cannot parse access token")


def bearer(token: str) -> dict[str, str]:
    """An Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("host", "good", "bad"),
    [
        pytest.param("", "EAAGpageToken", "IGAAuserToken", id="graph.facebook.com"),
        pytest.param("/_ig", "IGAAuserToken", "EAAGpageToken", id="graph.instagram.com"),
    ],
)
async def test_each_host_refuses_the_other_login_types_token(
    sim: httpx.AsyncClient, host: str, good: str, bad: str
) -> None:
    """graph.facebook.com takes Facebook Login tokens, graph.instagram.com Instagram Login
    ones (IG...): the other kind cannot be parsed (190) on any call, and nothing is made."""
    made = await sim.post(f"{host}{V}/{IG}/media", data={"image_url": IMG}, headers=bearer(good))
    assert made.status_code == 200, made.text
    cid = made.json()["id"]
    calls = [
        ("POST", f"{host}{V}/{IG}/media", {"data": {"image_url": IMG}}),
        ("GET", f"{host}{V}/{cid}", {"params": {"fields": "status_code"}}),
        ("GET", f"{host}{V}/{IG}/content_publishing_limit", {}),
        ("POST", f"{host}{V}/{IG}/media_publish", {"data": {"creation_id": cid}}),
    ]
    for method, path, kwargs in calls:
        refused = await sim.request(method, path, headers=bearer(bad), **kwargs)
        assert refused.status_code == 400, (method, path)
        error = meta_error(refused)
        assert (error["code"], error["message"]) == CANNOT_PARSE
    as_param = await sim.post(
        f"{host}{V}/{IG}/media_publish", data={"creation_id": cid, "access_token": bad}
    )
    assert meta_error(as_param)["code"] == 190
    assert await posts(sim) == []
    published = await sim.post(
        f"{host}{V}/{IG}/media_publish", data={"creation_id": cid}, headers=bearer(good)
    )
    assert published.status_code == 200, published.text
    assert [p["post_id"] for p in await posts(sim)] == [published.json()["id"]]


async def test_facebook_pages_refuse_instagram_login_tokens(sim: httpx.AsyncClient) -> None:
    """graph.facebook.com cannot parse an Instagram Login token for a Page either."""
    refused = await sim.post(f"{V}/page-1/feed", data={"message": "hi"}, headers=bearer("IGAAx"))
    assert (meta_error(refused)["code"], meta_error(refused)["message"]) == CANNOT_PARSE
    taken = await sim.post(f"{V}/page-1/feed", data={"message": "hi"}, headers=bearer("EAAx"))
    assert taken.status_code == 200, taken.text
