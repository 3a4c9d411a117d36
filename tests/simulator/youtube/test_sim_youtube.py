"""The simulator's YouTube: resumable sessions, chunks, probes, interruptions, quotas."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from simkit import configure, posts, stats

UPLOAD = "/upload/youtube/v3/videos"
AUTH = {"Authorization": "Bearer yt-token-UCchannel1"}
KIB = 1024


def metadata(title: str = "My video", **status: Any) -> dict[str, Any]:
    """videos.insert metadata."""
    return {
        "snippet": {"title": title, "description": "about it", "tags": ["a"], "categoryId": "22"},
        "status": {"privacyStatus": "private", "selfDeclaredMadeForKids": False, **status},
    }


async def open_session(
    client: httpx.AsyncClient,
    size: int,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] = AUTH,
) -> httpx.Response:
    """Start a resumable upload of ``size`` bytes."""
    return await client.post(
        UPLOAD,
        params={"uploadType": "resumable", "part": "snippet,status"},
        json=body or metadata(),
        headers=headers
        | {"X-Upload-Content-Length": str(size), "X-Upload-Content-Type": "video/mp4"},
    )


async def session(client: httpx.AsyncClient, size: int, **kwargs: Any) -> str:
    """The session URI of a new upload."""
    response = await open_session(client, size, **kwargs)
    assert response.status_code == 200, response.text
    return response.headers["location"]


async def chunk(
    client: httpx.AsyncClient, uri: str, first: int, size: int, total: int
) -> httpx.Response:
    """PUT ``size`` bytes at ``first``."""
    return await client.put(
        uri,
        content=b"\x01" * size,
        headers={"Content-Range": f"bytes {first}-{first + size - 1}/{total}"},
    )


async def probe(client: httpx.AsyncClient, uri: str, total: int) -> httpx.Response:
    """Ask how far the upload got."""
    return await client.put(uri, headers={"Content-Range": f"bytes */{total}"})


def google_reason(response: httpx.Response, status: int) -> str:
    """The first reason of a Google error body, checked for its shape."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert isinstance(error["message"], str)
    return str(error["errors"][0]["reason"])


async def test_single_put_upload(sim: httpx.AsyncClient) -> None:
    """Open a session, PUT the whole body, get the video; it is recorded for the channel."""
    response = await open_session(sim, 300 * KIB)
    uri = response.headers["location"]
    assert re.fullmatch(
        rf"{re.escape(str(sim.base_url).rstrip('/'))}{UPLOAD}\?uploadType=resumable&upload_id=\S+",
        uri,
    )
    done = await sim.put(uri, content=b"\x00" * 300 * KIB)
    assert done.status_code == 200, done.text
    video = done.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{11}", video["id"])
    assert video["snippet"]["title"] == "My video"
    assert video["snippet"]["channelId"] == "UCchannel1"
    assert video["status"]["uploadStatus"] == "uploaded"
    assert video["status"]["privacyStatus"] == "private"
    [record] = await posts(sim)
    assert record["platform"] == "youtube"
    assert record["account"] == "UCchannel1"
    assert record["post_id"] == video["id"]
    assert (record["message"], record["title"], record["description"]) == (
        "My video",
        "My video",
        "about it",
    )


async def test_chunks_308_then_200_and_probe_after_done(sim: httpx.AsyncClient) -> None:
    """Each chunk but the last is 308 with Range; a probe afterwards returns the same video."""
    total = 768 * KIB
    uri = await session(sim, total)
    first = await probe(sim, uri, total)
    assert first.status_code == 308
    assert "range" not in first.headers
    step = 256 * KIB
    for n in range(2):
        response = await chunk(sim, uri, n * step, step, total)
        assert response.status_code == 308
        assert response.headers["range"] == f"bytes=0-{(n + 1) * step - 1}"
    assert (await probe(sim, uri, total)).headers["range"] == f"bytes=0-{2 * step - 1}"
    done = await chunk(sim, uri, 2 * step, step, total)
    assert done.status_code == 200
    again = await probe(sim, uri, total)
    assert again.status_code == 200
    assert again.json()["id"] == done.json()["id"]
    assert (await stats(sim))["accepted"] == 1


@pytest.mark.parametrize(
    "content_range",
    ["bytes 1000-1999/4096", "bytes 0-999/9999", "bytes 0-1999/4096", "bytes=0-999/4096"],
)
async def test_bad_content_range_is_400(sim: httpx.AsyncClient, content_range: str) -> None:
    """A gap, a wrong total, a length mismatch or a malformed header is 400."""
    uri = await session(sim, 4096)
    response = await sim.put(uri, content=b"\x00" * 1000, headers={"Content-Range": content_range})
    assert google_reason(response, 400) == "badRequest"
    assert (await probe(sim, uri, 4096)).status_code == 308


async def test_interrupted_upload_is_probed_and_resumed(sim: httpx.AsyncClient) -> None:
    """upload_interrupt keeps half a chunk and drops the connection; resume ends in one post."""
    total, step = 1024 * KIB, 512 * KIB
    uri = await session(sim, total)
    await configure(sim, fault_rate=1.0, faults=["upload_interrupt"])
    with pytest.raises(httpx.TransportError):
        await chunk(sim, uri, 0, step, total)
    await configure(sim, fault_rate=0.0)
    response = await probe(sim, uri, total)
    assert response.status_code == 308
    offset = int(response.headers["range"].rpartition("-")[2]) + 1
    assert offset == step // 2
    assert (await chunk(sim, uri, offset, step, total)).status_code == 308
    await configure(sim, fault_rate=1.0, faults=["upload_interrupt"])
    with pytest.raises(httpx.TransportError):
        await chunk(sim, uri, offset + step, total - offset - step, total)
    await configure(sim, fault_rate=0.0)
    offset = int((await probe(sim, uri, total)).headers["range"].rpartition("-")[2]) + 1
    assert offset == 768 * KIB + 128 * KIB  # half of the last 256 KiB chunk
    done = await chunk(sim, uri, offset, total - offset, total)
    assert done.status_code == 200
    assert len(await posts(sim)) == 1
    assert (await stats(sim))["faults_injected"] == {"upload_interrupt": 2}


async def test_unknown_and_expired_sessions_are_404(sim: httpx.AsyncClient) -> None:
    """A session id never issued, or one past its TTL, is 404."""
    unknown = await sim.put(f"{UPLOAD}?uploadType=resumable&upload_id=nope", content=b"x")
    assert google_reason(unknown, 404) == "notFound"
    await configure(sim, youtube_session_ttl=0.0)
    uri = await session(sim, 10)
    assert google_reason(await sim.put(uri, content=b"x" * 10), 404) == "notFound"
    assert await posts(sim) == []


def future(hours: int = 24) -> str:
    """An RFC 3339 time ``hours`` from now."""
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (metadata(""), "invalidTitle"),
        (metadata("x" * 101), "invalidTitle"),
        (metadata("a <b>"), "invalidTitle"),
        (metadata(privacyStatus="public", publishAt=future()), "invalidPublishAt"),
        (metadata(publishAt="2001-01-01T00:00:00Z"), "invalidPublishAt"),
        (metadata(publishAt="tomorrow"), "invalidPublishAt"),
        (metadata(privacyStatus="secret"), "invalidPrivacyStatus"),
    ],
)
async def test_invalid_metadata(sim: httpx.AsyncClient, body: dict[str, Any], reason: str) -> None:
    """Titles, publishAt without private, past or unparsable times are 400."""
    assert google_reason(await open_session(sim, 10, body), 400) == reason


async def test_scheduled_private_video_keeps_publish_at(sim: httpx.AsyncClient) -> None:
    """publishAt with privacyStatus private is accepted and echoed in the video."""
    when = future(48)
    uri = await session(sim, 100, body=metadata("later", publishAt=when))
    video = (await sim.put(uri, content=b"\x00" * 100)).json()
    assert video["status"]["publishAt"] == when
    assert video["status"]["privacyStatus"] == "private"


async def test_open_session_checks(sim: httpx.AsyncClient) -> None:
    """Non-resumable uploads, missing sizes and non-video types are 400."""
    simple = await sim.post(
        UPLOAD, params={"uploadType": "media", "part": "snippet"}, json=metadata(), headers=AUTH
    )
    google_reason(simple, 400)
    no_size = await sim.post(
        UPLOAD,
        params={"uploadType": "resumable", "part": "snippet,status"},
        json=metadata(),
        headers=AUTH,
    )
    assert google_reason(no_size, 400) == "badContent"
    image = await sim.post(
        UPLOAD,
        params={"uploadType": "resumable", "part": "snippet,status"},
        json=metadata(),
        headers=AUTH | {"X-Upload-Content-Length": "5", "X-Upload-Content-Type": "image/png"},
    )
    assert google_reason(image, 400) == "badContent"


async def test_daily_insert_quota_per_channel(sim: httpx.AsyncClient) -> None:
    """Past youtube_daily_uploads inserts a channel gets 403 quotaExceeded; others do not."""
    await configure(sim, youtube_daily_uploads=1)
    await session(sim, 10)
    response = await open_session(sim, 10)
    assert google_reason(response, 403) == "quotaExceeded"
    assert response.json()["error"]["errors"][0]["domain"] == "youtube.quota"
    await session(sim, 10, headers={"Authorization": "Bearer yt-token-UCother"})


async def test_channel_upload_limit(sim: httpx.AsyncClient) -> None:
    """Past youtube_channel_uploads completed uploads a channel gets uploadLimitExceeded."""
    await configure(sim, youtube_channel_uploads=1)
    uri = await session(sim, 10)
    assert (await sim.put(uri, content=b"\x00" * 10)).status_code == 200
    assert google_reason(await open_session(sim, 10), 400) == "uploadLimitExceeded"


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        ("throttle", 403, "rateLimitExceeded"),
        ("rate_limit_429", 429, "rateLimitExceeded"),
        ("token_expired", 401, "authError"),
        ("permission", 403, "forbidden"),
        ("transient", 500, "backendError"),
        ("bad_input", 400, "badRequest"),
    ],
)
async def test_faults_hit_the_final_chunk_only(
    sim: httpx.AsyncClient, kind: str, status: int, reason: str
) -> None:
    """With faults on, the first chunk passes, the last fails; resending it posts once."""
    total, step = 512 * KIB, 256 * KIB
    uri = await session(sim, total)
    await configure(sim, fault_rate=1.0, faults=[kind], retry_after=4)
    assert (await chunk(sim, uri, 0, step, total)).status_code == 308
    response = await chunk(sim, uri, step, step, total)
    assert google_reason(response, status) == reason
    if kind == "rate_limit_429":
        assert response.headers["retry-after"] == "4"
    assert await posts(sim) == []
    await configure(sim, fault_rate=0.0)
    assert (await probe(sim, uri, total)).headers["range"] == f"bytes=0-{step - 1}"
    assert (await chunk(sim, uri, step, step, total)).status_code == 200
    assert len(await posts(sim)) == 1


async def test_timeout_after_final_chunk_then_probe(sim: httpx.AsyncClient) -> None:
    """The last chunk times out after the video exists: a probe returns it, no second post."""
    uri = await session(sim, 1000)
    await configure(sim, fault_rate=1.0, faults=["timeout_after"])
    with pytest.raises(httpx.ReadTimeout):
        await sim.put(uri, content=b"\x00" * 1000, timeout=0.3)
    await configure(sim, fault_rate=0.0)
    response = await probe(sim, uri, 1000)
    assert response.status_code == 200
    [record] = await posts(sim)
    assert record["post_id"] == response.json()["id"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "required"), ({"Authorization": "Bearer yt-expired"}, "authError")],
)
async def test_token_errors(sim: httpx.AsyncClient, headers: dict[str, str], reason: str) -> None:
    """No token or an expired one is 401 on videos.insert."""
    assert google_reason(await open_session(sim, 10, headers=headers), 401) == reason


async def test_channel_from_snippet_and_videos_list(sim: httpx.AsyncClient) -> None:
    """snippet.channelId names the channel; videos.list finds the video."""
    body = metadata("named")
    body["snippet"]["channelId"] = "UCexplicit"
    uri = await session(sim, 10, body=body, headers={"Authorization": "Bearer demo-access-token"})
    video = (await sim.put(uri, content=b"\x00" * 10)).json()
    assert video["snippet"]["channelId"] == "UCexplicit"
    listed = await sim.get(
        "/youtube/v3/videos",
        params={"part": "snippet,status", "id": f"{video['id']},zzz"},
        headers=AUTH,
    )
    assert [item["id"] for item in listed.json()["items"]] == [video["id"]]
    [record] = await posts(sim)
    assert record["account"] == "UCexplicit"


async def test_large_streamed_upload(sim: httpx.AsyncClient) -> None:
    """64 MiB streamed from a generator in one PUT completes (the server keeps no bytes)."""
    total = 64 * 1024 * KIB

    async def body() -> AsyncIterator[bytes]:
        block = b"\x07" * (1024 * KIB)
        for _ in range(total // len(block)):
            yield block

    uri = await session(sim, total)
    response = await sim.put(uri, content=body(), headers={"Content-Length": str(total)})
    assert response.status_code == 200, response.text
