"""The simulator's dangerous faults: an error (or nothing) after the post was made, Meta's
throttles as Meta sends them, LinkedIn's duplicate refusal, and tokens checked on YouTube
chunks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from simkit import configure, meta_error, posts, stats

from publisher.simulator.__main__ import config_from, parser
from publisher.simulator.faults import AFTER_CREATE_FAULTS, FAULT_HELP, FAULT_KINDS

V = "/v25.0"
PAGE = "1234567890"
IG = "17841400000000001"
ORG = "urn:li:organization:77"
FB_AUTH = {"Authorization": "Bearer page-token"}
LI_HEADERS = {
    "Authorization": "Bearer li-token",
    "LinkedIn-Version": "202601",
    "X-Restli-Protocol-Version": "2.0.0",
}
UPLOAD = "/upload/youtube/v3/videos"
YT_TOKEN = "yt-token-UCchan1"


async def fb_post(client: httpx.AsyncClient, message: str = "hello") -> httpx.Response:
    return await client.post(f"{V}/{PAGE}/feed", data={"message": message}, headers=FB_AUTH)


async def ig_publish(client: httpx.AsyncClient, caption: str = "hello ig") -> httpx.Response:
    """A FINISHED image container, then media_publish."""
    made = await client.post(f"{V}/{IG}/media", headers=FB_AUTH,
                             data={"image_url": "https://cdn.example.com/a.jpg",
                                   "caption": caption})
    assert made.status_code == 200, made.text
    return await client.post(f"{V}/{IG}/media_publish", headers=FB_AUTH,
                             data={"creation_id": made.json()["id"]})


def li_body(commentary: str = "hello li", author: str = ORG, **extra: Any) -> dict[str, Any]:
    return {"author": author, "commentary": commentary, "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED"}, "lifecycleState": "PUBLISHED",
            **extra}


async def li_post(client: httpx.AsyncClient, commentary: str = "hello li",
                  **extra: Any) -> httpx.Response:
    return await client.post("/rest/posts", json=li_body(commentary, **extra),
                             headers=LI_HEADERS)


async def yt_session(client: httpx.AsyncClient, total: int, token: str = YT_TOKEN) -> str:
    """A resumable session for `total` bytes, opened with `token`; its URI."""
    opened = await client.post(
        UPLOAD, params={"uploadType": "resumable", "part": "snippet,status"},
        json={"snippet": {"title": "clip", "description": "d"},
              "status": {"privacyStatus": "private"}},
        headers={"Authorization": f"Bearer {token}", "X-Upload-Content-Length": str(total),
                 "X-Upload-Content-Type": "video/mp4"})
    assert opened.status_code == 200, opened.text
    return opened.headers["location"]


async def yt_chunk(client: httpx.AsyncClient, uri: str, first: int, size: int, total: int,
                   token: str | None = YT_TOKEN) -> httpx.Response:
    headers = {"Content-Range": f"bytes {first}-{first + size - 1}/{total}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await client.put(uri, content=b"\x02" * size, headers=headers)


def google_reason(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["errors"][0]["reason"])


def li_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


# --- the list of faults -----------------------------------------------------------------------


def test_every_fault_kind_is_described_in_help() -> None:
    """Each kind has a description, and --help lists each kind with it."""
    text = parser().format_help()

    assert set(FAULT_HELP) == set(FAULT_KINDS)
    assert set(FAULT_KINDS) >= AFTER_CREATE_FAULTS
    for kind in FAULT_KINDS:
        assert f"  {kind} " in text, kind
    assert "--linkedin-accept-duplicates" in text


def test_linkedin_duplicates_flag() -> None:
    """LinkedIn refuses duplicates unless --linkedin-accept-duplicates is given."""
    assert config_from(parser().parse_args([])).linkedin_refuse_duplicates is True
    accepting = config_from(parser().parse_args(["--linkedin-accept-duplicates"]))
    assert accepting.linkedin_refuse_duplicates is False


async def test_linkedin_duplicates_config_must_be_a_bool(sim: httpx.AsyncClient) -> None:
    """A non-boolean linkedin_refuse_duplicates is refused with a reason."""
    response = await sim.post("/_sim/config", json={"linkedin_refuse_duplicates": "no"})

    assert response.status_code == 400
    assert "linkedin_refuse_duplicates" in response.json()["error"]


# --- an error after the post was made ----------------------------------------------------------


async def test_facebook_error_after_create(sim: httpx.AsyncClient) -> None:
    """A 500 with Meta's body, and the post is on the page."""
    await configure(sim, fault_rate=1.0, faults=["error_after_create"])

    response = await fb_post(sim, "made anyway")

    assert response.status_code == 500
    error = meta_error(response)
    assert (error["code"], error["is_transient"]) == (2, True)
    [record] = await posts(sim, "facebook")
    assert record["message"] == "made anyway"
    await configure(sim, fault_rate=0.0)
    feed = await sim.get(f"{V}/{PAGE}/feed", headers=FB_AUTH)
    assert [p["id"] for p in feed.json()["data"]] == [record["post_id"]]


async def test_instagram_error_after_create_leaves_the_container_published(
        sim: httpx.AsyncClient) -> None:
    """media_publish answers 500, yet the media is live and its container PUBLISHED."""
    made = await sim.post(f"{V}/{IG}/media", headers=FB_AUTH,
                          data={"image_url": "https://cdn.example.com/a.jpg", "caption": "c"})
    await configure(sim, fault_rate=1.0, faults=["error_after_create"])

    response = await sim.post(f"{V}/{IG}/media_publish", headers=FB_AUTH,
                              data={"creation_id": made.json()["id"]})

    assert response.status_code == 500
    assert meta_error(response)["is_transient"] is True
    assert len(await posts(sim, "instagram")) == 1
    status = await sim.get(f"{V}/{made.json()['id']}", params={"fields": "status_code"},
                           headers=FB_AUTH)
    assert status.json()["status_code"] == "PUBLISHED"


async def test_linkedin_error_after_create_in_linkedins_shape(sim: httpx.AsyncClient) -> None:
    """A 5xx with LinkedIn's JSON body, and the post is listed by its author."""
    await configure(sim, fault_rate=1.0, faults=["error_after_create"])

    response = await li_post(sim, "created then 5xx")

    body = li_error(response, response.status_code)
    assert response.status_code in (500, 503)
    assert body["status"] == response.status_code
    await configure(sim, fault_rate=0.0)
    listed = await sim.get("/rest/posts", params={"q": "author", "author": ORG},
                           headers=LI_HEADERS)
    assert [e["commentary"] for e in listed.json()["elements"]] == ["created then 5xx"]


async def test_youtube_error_after_create_on_the_final_chunk(sim: httpx.AsyncClient) -> None:
    """The last chunk answers 500 backendError; the video exists and a probe returns it."""
    uri = await yt_session(sim, 1000)
    await configure(sim, fault_rate=1.0, faults=["error_after_create"])

    response = await yt_chunk(sim, uri, 0, 1000, 1000)

    assert google_reason(response, 500) == "backendError"
    [record] = await posts(sim, "youtube")
    probe = await sim.put(uri, headers={"Content-Range": "bytes */1000"})
    assert probe.status_code == 200
    assert probe.json()["id"] == record["post_id"]


@pytest.mark.parametrize("platform", ["facebook", "instagram", "linkedin"])
async def test_reset_after_create_drops_the_connection_after_posting(
        sim: httpx.AsyncClient, platform: str) -> None:
    """The connection breaks, and the post was made."""
    send = {"facebook": fb_post, "instagram": ig_publish, "linkedin": li_post}[platform]
    await configure(sim, fault_rate=1.0, faults=["reset_after_create"])

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await send(sim)

    assert len(await posts(sim, platform)) == 1
    assert (await stats(sim))["faults_injected"] == {"reset_after_create": 1}


@pytest.mark.parametrize("platform", ["facebook", "instagram"])
async def test_meta_error_after_create_is_code_1_then_2_with_http_400(
        sim: httpx.AsyncClient, platform: str) -> None:
    """HTTP 400 with code 1 (not transient), then code 2 (transient); both posts made."""
    send = {"facebook": fb_post, "instagram": ig_publish}[platform]
    await configure(sim, fault_rate=1.0, faults=["meta_error_after_create"])

    first, second = await send(sim, "one"), await send(sim, "two")

    assert (first.status_code, second.status_code) == (400, 400)
    one, two = meta_error(first), meta_error(second)
    assert (one["code"], one["is_transient"]) == (1, False)
    assert (two["code"], two["is_transient"]) == (2, True)
    assert [p["message"] for p in await posts(sim, platform)] == ["one", "two"]


async def test_after_create_faults_pass_a_refusal_through(sim: httpx.AsyncClient) -> None:
    """When the platform made nothing (it refused the call), its own answer stands."""
    await configure(sim, fault_rate=1.0, faults=["error_after_create"])

    response = await sim.post(f"{V}/{PAGE}/feed", data={}, headers=FB_AUTH)

    assert response.status_code == 400
    assert meta_error(response)["code"] == 100
    assert await posts(sim) == []


# --- Meta's throttles ---------------------------------------------------------------------------


async def test_meta_throttle_codes_statuses_and_headers(sim: httpx.AsyncClient) -> None:
    """Codes 4, 17, 32, 613 with 403/400 (never 429), one X-App-Usage each (100 % for the
    app limit), the others naming the page at 100 % with the regain time; nothing made."""
    await configure(sim, fault_rate=1.0, faults=["meta_throttle"], regain_minutes=7)

    answers = [await fb_post(sim, f"p{n}") for n in range(4)]

    assert [(r.status_code, meta_error(r)["code"]) for r in answers] == [
        (403, 4), (400, 17), (403, 32), (400, 613)]
    for response in answers:
        assert len(response.headers.get_list("x-app-usage")) == 1
        assert meta_error(response)["is_transient"] is True
    assert json.loads(answers[0].headers["x-app-usage"])["call_count"] == 100
    for response in answers[1:]:
        [usage] = json.loads(response.headers["x-business-use-case-usage"])[PAGE]
        assert usage["call_count"] == 100
        assert usage["estimated_time_to_regain_access"] == 7
        assert usage["type"] == "pages"
    assert await posts(sim) == []


async def test_instagram_meta_throttle_on_containers_and_publish(sim: httpx.AsyncClient) -> None:
    """Instagram draws meta_throttle on container creation too; its usage type is instagram."""
    await configure(sim, fault_rate=1.0, faults=["meta_throttle"])

    made = await sim.post(f"{V}/{IG}/media", headers=FB_AUTH,
                          data={"image_url": "https://cdn.example.com/a.jpg"})

    assert (made.status_code, meta_error(made)["code"]) == (403, 4)
    second = await sim.post(f"{V}/{IG}/media", headers=FB_AUTH,
                            data={"image_url": "https://cdn.example.com/a.jpg"})
    [usage] = json.loads(second.headers["x-business-use-case-usage"])[IG]
    assert (meta_error(second)["code"], usage["type"]) == (17, "instagram")


# --- LinkedIn duplicates ------------------------------------------------------------------------


async def test_linkedin_refuses_a_repeated_commentary_naming_the_live_post(
        sim: httpx.AsyncClient) -> None:
    """The same author and commentary again: 422 DUPLICATE_POST naming the first post's urn;
    nothing new is made, and the refusal is counted (not as a duplicate)."""
    first = await li_post(sim, "say it once")

    again = await li_post(sim, "say it once")

    urn = first.headers["x-restli-id"]
    body = li_error(again, 422)
    assert [e["code"] for e in body["errorDetails"]["inputErrors"]] == ["DUPLICATE_POST"]
    assert body["message"].endswith(f": Content is a duplicate of {urn}")
    assert len(await posts(sim, "linkedin")) == 1
    counts = await stats(sim)
    assert (counts["duplicates"], counts["duplicates_refused"]) == (0, 1)


async def test_linkedin_duplicates_need_the_same_author_and_content(
        sim: httpx.AsyncClient) -> None:
    """Another author, or another link, with the same commentary is a new post."""
    assert (await li_post(sim, "same words")).status_code == 201
    assert (await li_post(sim, "same words", author="urn:li:person:someone")).status_code == 201
    article = {"article": {"source": "https://example.com/a"}}
    assert (await li_post(sim, "same words", content=article)).status_code == 201
    assert (await stats(sim))["duplicates_refused"] == 0


async def test_linkedin_can_accept_duplicates(sim: httpx.AsyncClient) -> None:
    """With linkedin_refuse_duplicates off, a repeat is made (and counted a duplicate)."""
    await configure(sim, linkedin_refuse_duplicates=False)

    codes = [(await li_post(sim, "twice")).status_code for _ in range(2)]

    assert codes == [201, 201]
    assert (await stats(sim))["duplicates"] == 1


async def test_linkedin_duplicate_fault_names_the_post_it_just_made(
        sim: httpx.AsyncClient) -> None:
    """The post is made, and the answer is a 422 duplicate naming it."""
    await configure(sim, fault_rate=1.0, faults=["linkedin_duplicate"])

    response = await li_post(sim, "made, called a duplicate")

    body = li_error(response, 422)
    [record] = await posts(sim, "linkedin")
    assert body["message"].endswith(f": Content is a duplicate of {record['post_id']}")
    assert "x-restli-id" not in response.headers
    await configure(sim, fault_rate=0.0)
    read = await sim.get(f"/rest/posts/{record['post_id']}", headers=LI_HEADERS)
    assert read.json()["commentary"] == "made, called a duplicate"


# --- YouTube: tokens on chunk PUTs ----------------------------------------------------------------


@pytest.mark.parametrize("token", ["yt-token-UCchan1-expired", "revoked-token-UCchan1",
                                   "yt-token-UCsomeoneelse"])
async def test_a_chunk_with_a_bad_or_foreign_token_is_401(sim: httpx.AsyncClient,
                                                          token: str) -> None:
    """Expired, revoked, or another channel's token: 401 authError, nothing stored."""
    uri = await yt_session(sim, 512 * 1024)

    response = await yt_chunk(sim, uri, 0, 256 * 1024, 512 * 1024, token=token)

    assert google_reason(response, 401) == "authError"
    probe = await sim.put(uri, headers={"Content-Range": f"bytes */{512 * 1024}"})
    assert (probe.status_code, probe.headers.get("range")) == (308, None)


@pytest.mark.parametrize("token", [YT_TOKEN, None])
async def test_a_chunk_with_the_sessions_token_or_none_is_taken(sim: httpx.AsyncClient,
                                                                token: str | None) -> None:
    """The opening token, or no token (the session URI is the credential), is accepted."""
    uri = await yt_session(sim, 512 * 1024)

    response = await yt_chunk(sim, uri, 0, 256 * 1024, 512 * 1024, token=token)

    assert response.status_code == 308
    assert response.headers["range"] == f"bytes=0-{256 * 1024 - 1}"


async def test_upload_token_expired_then_a_refreshed_token_resumes(
        sim: httpx.AsyncClient) -> None:
    """A chunk finds the token expired (401, nothing stored); that token stays refused; a
    token refreshed for the same channel resumes the session to the end, one video."""
    total, step = 512 * 1024, 256 * 1024
    uri = await yt_session(sim, total)
    await configure(sim, fault_rate=1.0, faults=["upload_token_expired"])

    first = await yt_chunk(sim, uri, 0, step, total)

    assert google_reason(first, 401) == "authError"
    await configure(sim, fault_rate=0.0)
    assert google_reason(await yt_chunk(sim, uri, 0, step, total), 401) == "authError"
    refreshed = await sim.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": "yt-refresh-token-UCchan1",
        "client_id": "client", "client_secret": "secret"})
    token = refreshed.json()["access_token"]
    assert (await yt_chunk(sim, uri, 0, step, total, token=token)).status_code == 308
    done = await yt_chunk(sim, uri, step, step, total, token=token)
    assert done.status_code == 200
    [record] = await posts(sim, "youtube")
    assert record["post_id"] == done.json()["id"]
    assert (await stats(sim))["faults_injected"] == {"upload_token_expired": 1}
