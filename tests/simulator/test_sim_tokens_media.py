"""The simulator's token refresh endpoints, its media host, and the new CLI flags."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from simkit import stats

from publisher.simulator import SimConfig, SimulatorProcess
from publisher.simulator.media import CHUNK, pattern_bytes
from publisher.simulator.server import cli_args

GOOGLE_FORM = {"grant_type": "refresh_token", "client_id": "cid", "client_secret": "sec"}
LI_HEADERS = {"LinkedIn-Version": "202601", "X-Restli-Protocol-Version": "2.0.0"}
LI_POST = {
    "author": "urn:li:person:me",
    "commentary": "after refresh",
    "visibility": "PUBLIC",
    "distribution": {"feedDistribution": "MAIN_FEED"},
    "lifecycleState": "PUBLISHED",
}


async def test_google_refresh_keeps_channel_and_is_counted(sim: httpx.AsyncClient) -> None:
    """A refreshed Google token works on YouTube for the refresh token's channel."""
    response = await sim.post("/token", data=GOOGLE_FORM | {"refresh_token": "rt-token-UCmine"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "scope"}
    assert (body["expires_in"], body["token_type"]) == (3599, "Bearer")
    opened = await sim.post(
        "/upload/youtube/v3/videos",
        params={"uploadType": "resumable", "part": "snippet,status"},
        json={"snippet": {"title": "t"}, "status": {"privacyStatus": "private"}},
        headers={
            "Authorization": f"Bearer {body['access_token']}",
            "X-Upload-Content-Length": "4",
        },
    )
    assert opened.status_code == 200, opened.text
    video = (await sim.put(opened.headers["location"], content=b"abcd")).json()
    assert video["snippet"]["channelId"] == "UCmine"
    assert (await stats(sim))["token_refreshes"] == {"rt-token-UCmine": 1}


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (GOOGLE_FORM | {"refresh_token": "rt-revoked"}, 400, "invalid_grant"),
        (
            GOOGLE_FORM | {"refresh_token": "rt", "grant_type": "password"},
            400,
            "unsupported_grant_type",
        ),
        ({"grant_type": "refresh_token"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "rt"}, 401, "invalid_client"),
    ],
)
async def test_google_refresh_errors(
    sim: httpx.AsyncClient, form: dict[str, str], status: int, error: str
) -> None:
    """Revoked tokens, wrong grants and missing fields are RFC 6749 errors."""
    response = await sim.post("/token", data=form)
    assert response.status_code == status
    assert response.json()["error"] == error
    if error == "invalid_grant":
        assert response.json()["error_description"] == "Token has been expired or revoked."


async def test_linkedin_refresh(sim: httpx.AsyncClient) -> None:
    """LinkedIn returns a new access token, the same refresh token and its remaining TTL."""
    form = GOOGLE_FORM | {"refresh_token": "li-refresh"}
    body = (await sim.post("/oauth/v2/accessToken", data=form)).json()
    assert body["expires_in"] == 5184000
    assert body["refresh_token"] == "li-refresh"
    assert 0 < body["refresh_token_expires_in"] <= 365 * 86400
    post = await sim.post(
        "/rest/posts",
        json=LI_POST,
        headers=LI_HEADERS | {"Authorization": f"Bearer {body['access_token']}"},
    )
    assert post.status_code == 201
    await sim.post("/oauth/v2/accessToken", data=form)
    revoked = await sim.post("/oauth/v2/accessToken", data=form | {"refresh_token": "revoked"})
    assert revoked.status_code == 400
    assert (await stats(sim))["token_refreshes"] == {"li-refresh": 2, "revoked": 1}


async def test_instagram_refresh(sim: httpx.AsyncClient) -> None:
    """ig_refresh_token (on graph.instagram.com only) returns a bearer token valid for 60
    days, which that host takes; expired ones are 190."""
    params = {"grant_type": "ig_refresh_token", "access_token": "IGlong"}
    body = (await sim.get("/_ig/refresh_access_token", params=params)).json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 5183944)
    assert body["access_token"].startswith("IG")
    created = await sim.post(
        "/_ig/v25.0/1784/media",
        data={"image_url": "https://x/y.jpg", "access_token": body["access_token"]},
    )
    assert created.status_code == 200
    expired = await sim.get(
        "/_ig/refresh_access_token", params=params | {"access_token": "IGexpired"}
    )
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == 190
    wrong = await sim.get("/_ig/refresh_access_token", params=params | {"grant_type": "x"})
    assert wrong.json()["error"]["code"] == 100
    # graph.facebook.com has no such endpoint
    assert (await sim.get("/refresh_access_token", params=params)).status_code == 404


async def test_instagram_refresh_refuses_a_facebook_login_token(sim: httpx.AsyncClient) -> None:
    """A Page token sent to refresh_access_token cannot be parsed there (190), as for real:
    the answer that made every Facebook Login account needs_reauth."""
    params = {"grant_type": "ig_refresh_token", "access_token": "EAAGpageToken"}
    refused = await sim.get("/_ig/refresh_access_token", params=params)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["message"]) == (
        190, "Invalid OAuth access token - Cannot parse access token")
    assert (await stats(sim))["token_refreshes"] == {"EAAGpageToken": 1}


# -- media host --------------------------------------------------------------------


async def test_media_bytes_type_and_ranges(sim: httpx.AsyncClient) -> None:
    """Deterministic bytes, the asked type, 206 for ranges, 416 past the end, HEAD."""
    response = await sim.get("/_media/clip.mp4", params={"size": "1000"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == "1000"
    assert response.content == bytes(i % 251 for i in range(1000))
    part = await sim.get("/_media/x.bin", params={"size": "1000"}, headers={"Range": "bytes=900-"})
    assert part.status_code == 206
    assert part.headers["content-range"] == "bytes 900-999/1000"
    assert part.content == bytes(i % 251 for i in range(900, 1000))
    span = await sim.get("/_media/x", params={"size": "1000"}, headers={"Range": "bytes=10-19"})
    assert (span.status_code, span.content) == (206, bytes(range(10, 20)))
    past = await sim.get("/_media/x", params={"size": "10"}, headers={"Range": "bytes=10-"})
    assert past.status_code == 416
    head = await sim.head("/_media/pic.jpg", params={"size": "5000", "type": "image/webp"})
    assert (head.headers["content-length"], head.headers["content-type"]) == ("5000", "image/webp")
    assert head.content == b""
    default = await sim.head("/_media/d")
    assert default.headers["content-length"] == str(SimConfig().media_default_size)
    assert (await sim.post("/_media/d")).status_code == 405


async def test_media_streams_in_chunks(sim: httpx.AsyncClient) -> None:
    """A 40 MB body arrives in many chunks; spot checks match the pattern."""
    size = 40_000_000
    received, chunks = 0, 0
    async with sim.stream("GET", "/_media/big.mp4", params={"size": str(size)}) as response:
        async for data in response.aiter_raw():
            if chunks == 3:
                assert data[:10] == pattern_bytes(received, 10)
            received += len(data)
            chunks += 1
    assert received == size
    assert chunks > size // CHUNK // 2


def _peak_rss_kib(pid: int) -> int:
    """The peak resident set size of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_child_streams_300_mb_with_flat_memory_and_takes_new_flags() -> None:
    """The CLI child serves 300 MB while its peak RSS stays far below that."""
    config = SimConfig(
        instagram_quota=7,
        video_processing_seconds=1.5,
        instagram_container_ttl=60.0,
        linkedin_sunset_before="202502",
        youtube_daily_uploads=9,
        youtube_channel_uploads=3,
        youtube_session_ttl=120.0,
        media_default_size=2048,
    )
    assert "--youtube-channel-uploads=3" in cli_args(config)
    async with SimulatorProcess(config) as child:
        assert child.process is not None
        async with httpx.AsyncClient(base_url=child.url, timeout=30) as client:
            served = (await client.get("/_sim/config")).json()
            for name in (
                "instagram_quota",
                "video_processing_seconds",
                "linkedin_sunset_before",
                "youtube_daily_uploads",
                "youtube_channel_uploads",
                "youtube_session_ttl",
                "instagram_container_ttl",
                "media_default_size",
            ):
                assert served[name] == getattr(config, name), name
            before = _peak_rss_kib(child.process.pid)
            size = 300_000_000
            received = 0
            async with client.stream("GET", f"/_media/huge.mp4?size={size}") as response:
                async for data in response.aiter_raw():
                    received += len(data)
            assert received == size
            after = _peak_rss_kib(child.process.pid)
    assert after - before < 30 * 1024, (before, after)
