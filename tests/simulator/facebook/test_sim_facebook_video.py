"""The simulator's Facebook videos (issue 11): the id comes back before processing ends.

GET /{video-id}?fields=status answers status.video_status: ready, processing (for
video_processing_seconds) or error (the video_error fault: accepted, never live). The last
tests drive the real FacebookAdapter against it, so adapter and simulator agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from simkit import configure, meta_error, posts, stats

from publisher.models import Account, ClaimedPost, OutcomeKind
from publisher.platforms.base import PublishContext
from publisher.platforms.facebook.adapter import FacebookAdapter
from publisher.settings import simulator_endpoints

V = "/v25.0"
PAGE = "104857600123"
AUTH = {"Authorization": "Bearer page-token"}
VIDEO = "https://cdn.example.com/clip.mp4"


async def upload(client: httpx.AsyncClient) -> str:
    """POST /{page}/videos; the video's id."""
    response = await client.post(f"{V}/{PAGE}/videos", headers=AUTH,
                                 data={"file_url": VIDEO, "description": "Launch"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def video_status(client: httpx.AsyncClient, video_id: str) -> dict[str, Any]:
    """status of GET /{video-id}?fields=status."""
    response = await client.get(f"{V}/{video_id}", params={"fields": "status"}, headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["id"] == video_id
    return dict(body["status"])


async def test_video_is_ready_at_once_by_default(sim: httpx.AsyncClient) -> None:
    """With no processing time the video reads ready, and it is one post."""
    video_id = await upload(sim)

    assert (await video_status(sim, video_id))["video_status"] == "ready"
    [record] = await posts(sim, "facebook")
    assert record["post_id"] == video_id


async def test_video_processes_for_the_configured_time(sim: httpx.AsyncClient) -> None:
    """While video_processing_seconds have not passed it reads processing."""
    await configure(sim, video_processing_seconds=3600)
    video_id = await upload(sim)

    status = await video_status(sim, video_id)

    assert status["video_status"] == "processing"
    assert status["processing_phase"] == {"status": "in_progress"}


async def test_video_error_fault_is_accepted_then_never_live(sim: httpx.AsyncClient) -> None:
    """video_error: the id comes back, the status reads error with the phase's error, and
    the simulator records no post (nothing went live)."""
    await configure(sim, fault_rate=1.0, faults=["video_error"])
    video_id = await upload(sim)

    status = await video_status(sim, video_id)

    assert status["video_status"] == "error"
    assert status["processing_phase"]["errors"][0]["message"]
    assert await posts(sim, "facebook") == []
    assert (await stats(sim))["faults_injected"] == {"video_error": 1}


async def test_video_error_is_drawn_only_by_videos(sim: httpx.AsyncClient) -> None:
    """The fault belongs to POST /videos: a feed post under it is published as usual."""
    await configure(sim, fault_rate=1.0, faults=["video_error"])
    response = await sim.post(f"{V}/{PAGE}/feed", data={"message": "hi"}, headers=AUTH)

    assert response.status_code == 200
    assert len(await posts(sim, "facebook")) == 1


async def test_unknown_video_field_is_refused(sim: httpx.AsyncClient) -> None:
    """A field the Video node does not have is a code 100, as the Graph API answers."""
    video_id = await upload(sim)

    response = await sim.get(f"{V}/{video_id}", params={"fields": "status,nonsense"},
                             headers=AUTH)

    assert response.status_code == 400
    assert meta_error(response)["code"] == 100


# --- the adapter against the simulator ---------------------------------------------------


def video_post() -> ClaimedPost:
    """A due video post on PAGE."""
    account = Account(id="acct-fb", platform="facebook", external_id=PAGE, status="active",
                      status_reason=None, access_token_encrypted=None,
                      refresh_token_encrypted=None, token_expires_at=None)
    return ClaimedPost(id=1, attempt=1, max_attempts=5, platform="facebook",
                       post_type="video", content="Launch", title=None, link_url=None,
                       media_urls=(VIDEO,), options={}, priority=0, scheduled_at=None,
                       account=account)


@pytest.fixture
async def context(sim: httpx.AsyncClient, sim_base: str) -> AsyncIterator[PublishContext]:
    """The adapter's context, every endpoint on the simulator."""

    async def begin_sending(state: object = None) -> bool:
        return True

    async with httpx.AsyncClient(timeout=10) as client:
        yield PublishContext(client=client, access_token="page-token",
                             endpoints=simulator_endpoints(sim_base),
                             begin_sending=begin_sending)


async def test_adapter_uploads_again_after_a_processing_error(
        sim: httpx.AsyncClient, context: PublishContext) -> None:
    """A video that fails processing is RETRY (never live); the next attempt uploads anew
    and is published: one post in all."""
    await configure(sim, fault_rate=1.0, faults=["video_error"])
    adapter, post = FacebookAdapter(), video_post()

    failed = await adapter.publish(post, context)
    await configure(sim, fault_rate=0.0)
    again = await adapter.publish(replace(post, publish_state=failed.state), context)

    assert failed.kind is OutcomeKind.RETRY
    assert again.kind is OutcomeKind.PUBLISHED
    assert [r["post_id"] for r in await posts(sim, "facebook")] == [again.platform_post_id]


async def test_adapter_waits_for_processing_without_uploading_again(
        sim: httpx.AsyncClient, context: PublishContext) -> None:
    """Still processing: PENDING with the video's id; the next attempt only reads it."""
    await configure(sim, video_processing_seconds=3600)
    adapter, post = FacebookAdapter(), video_post()

    first = await adapter.publish(post, context)
    second = await adapter.publish(replace(post, publish_state=first.state), context)

    assert (first.kind, second.kind) == (OutcomeKind.PENDING, OutcomeKind.PENDING)
    assert second.state["video_id"] == first.state["video_id"]
    assert len(await posts(sim, "facebook")) == 1
