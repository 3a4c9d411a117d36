"""The platform simulator: Facebook Graph paths, faults, records and control endpoints."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from publisher.simulator import FAULT_KINDS, SimConfig, SimulatorProcess, run_in_process

PAGE = "1234567890"
V = "/v25.0"
AUTH = {"Authorization": "Bearer page-token"}
DEFAULTS = SimConfig(seed=1).as_json()


@pytest.fixture(scope="module")
async def sim_url() -> AsyncIterator[str]:
    """One in-process simulator for the module."""
    async with run_in_process(SimConfig(seed=1)) as url:
        yield url


@pytest.fixture(scope="module")
async def shared_client(sim_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """One client for the module (building a client's TLS context is slow)."""
    async with httpx.AsyncClient(base_url=sim_url, headers=AUTH, timeout=5) as c:
        yield c


@pytest.fixture
async def client(shared_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client, on a freshly reset simulator with the default configuration."""
    (await shared_client.post("/_sim/config", json=DEFAULTS)).raise_for_status()
    (await shared_client.post("/_sim/reset")).raise_for_status()
    return shared_client


async def configure(client: httpx.AsyncClient, **changes: Any) -> None:
    """Change the simulator's configuration."""
    response = await client.post("/_sim/config", json=changes)
    assert response.status_code == 200, response.text


async def posts(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every post the simulator recorded."""
    return list((await client.get("/_sim/posts")).json())


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    """The simulator's counters."""
    return dict((await client.get("/_sim/stats")).json())


def meta_error(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a Meta error body, checked for its shape."""
    error = response.json()["error"]
    assert error["type"] == "OAuthException"
    assert isinstance(error["fbtrace_id"], str)
    assert isinstance(error["is_transient"], bool)
    return dict(error)


# -- publishing ------------------------------------------------------------------------


async def test_feed_post_is_recorded_with_graph_id(client: httpx.AsyncClient) -> None:
    """A form-encoded feed post returns {page}_{post} and is recorded."""
    response = await client.post(
        f"{V}/{PAGE}/feed", data={"message": "hello", "link": "https://example.com/a"}
    )
    assert response.status_code == 200
    post_id = response.json()["id"]
    assert re.fullmatch(rf"{PAGE}_\d+", post_id)
    [record] = await posts(client)
    assert record["platform"] == "facebook"
    assert record["account"] == PAGE
    assert record["post_id"] == post_id
    assert record["message"] == "hello"
    assert record["link"] == "https://example.com/a"
    assert record["media"] == []
    assert record["accepted_at"].endswith("+00:00")


async def test_json_body_and_access_token_param_work(client: httpx.AsyncClient) -> None:
    """JSON bodies are read, and ``access_token`` works instead of the header."""
    response = await client.post(
        f"{V}/{PAGE}/feed",
        json={"message": "from json", "access_token": "tok"},
        headers={"Authorization": ""},
    )
    assert response.status_code == 200, response.text
    assert [p["message"] for p in await posts(client)] == ["from json"]


async def test_feed_post_without_content_is_rejected(client: httpx.AsyncClient) -> None:
    """An empty feed post is a code 100 error and records nothing."""
    response = await client.post(f"{V}/{PAGE}/feed", data={})
    assert response.status_code == 400
    assert meta_error(response)["code"] == 100
    assert await posts(client) == []


async def test_published_photo_is_a_post(client: httpx.AsyncClient) -> None:
    """A published photo returns id and post_id and is recorded with its URL."""
    response = await client.post(
        f"{V}/{PAGE}/photos", data={"url": "https://img/1.jpg", "caption": "pic"}
    )
    body = response.json()
    assert response.status_code == 200
    assert body["post_id"] == f"{PAGE}_{body['id']}"
    [record] = await posts(client)
    assert record["post_id"] == body["post_id"]
    assert record["message"] == "pic"
    assert record["media"] == ["https://img/1.jpg"]


async def test_unpublished_photo_is_not_a_post(client: httpx.AsyncClient) -> None:
    """``published=false`` returns only an id and records nothing."""
    response = await client.post(
        f"{V}/{PAGE}/photos", data={"url": "https://img/2.jpg", "published": "false"}
    )
    assert response.status_code == 200
    assert set(response.json()) == {"id"}
    assert (await stats(client))["accepted"] == 0


async def test_photo_without_url_is_rejected(client: httpx.AsyncClient) -> None:
    """A photo needs a URL (code 324)."""
    response = await client.post(f"{V}/{PAGE}/photos", data={"caption": "no file"})
    assert response.status_code == 400
    assert meta_error(response)["code"] == 324


async def unpublished(client: httpx.AsyncClient, url: str, page: str = PAGE) -> str:
    """Upload an unpublished photo; return its id."""
    response = await client.post(f"{V}/{page}/photos", json={"url": url, "published": False})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def test_attached_media_makes_one_multi_photo_post(client: httpx.AsyncClient) -> None:
    """Two unpublished photos attached to a feed post become one post with both URLs."""
    ids = [await unpublished(client, f"https://img/{n}.jpg") for n in (1, 2)]
    media = json.dumps([{"media_fbid": i} for i in ids])
    response = await client.post(
        f"{V}/{PAGE}/feed", data={"message": "album", "attached_media": media}
    )
    assert response.status_code == 200, response.text
    [record] = await posts(client)
    assert record["message"] == "album"
    assert record["media"] == ["https://img/1.jpg", "https://img/2.jpg"]


async def test_attached_media_as_json_list_and_indexed_form(client: httpx.AsyncClient) -> None:
    """attached_media as a JSON list in a JSON body, and as attached_media[i] form fields."""
    a, b = (
        await unpublished(client, "https://img/a.jpg"),
        await unpublished(client, "https://img/b.jpg"),
    )
    response = await client.post(
        f"{V}/{PAGE}/feed", json={"message": "j", "attached_media": [{"media_fbid": a}]}
    )
    assert response.status_code == 200, response.text
    form = {
        "message": "f",
        "attached_media[1]": json.dumps({"media_fbid": a}),
        "attached_media[0]": json.dumps({"media_fbid": b}),
    }
    response = await client.post(f"{V}/{PAGE}/feed", data=form)
    assert response.status_code == 200, response.text
    assert [p["media"] for p in await posts(client)] == [
        ["https://img/a.jpg"],
        ["https://img/b.jpg", "https://img/a.jpg"],
    ]


async def test_attached_media_must_be_this_pages_photos(client: httpx.AsyncClient) -> None:
    """Unknown ids, and another page's photos, are code 100 and nothing is posted."""
    other = await unpublished(client, "https://img/o.jpg", page="999")
    for fbid in ("42", other):
        media = json.dumps([{"media_fbid": fbid}])
        response = await client.post(
            f"{V}/{PAGE}/feed", data={"message": "x", "attached_media": media}
        )
        assert response.status_code == 400
        assert meta_error(response)["code"] == 100
    assert await posts(client) == []


# -- reading -----------------------------------------------------------------------------


async def test_permalink_lookup(client: httpx.AsyncClient) -> None:
    """A known post has a permalink; an unknown id is 'Unsupported get request'."""
    post_id = (await client.post(f"{V}/{PAGE}/feed", data={"message": "p"})).json()["id"]
    response = await client.get(f"{V}/{post_id}", params={"fields": "permalink_url"})
    assert response.status_code == 200
    page, _, post = post_id.partition("_")
    assert response.json() == {
        "id": post_id,
        "permalink_url": f"https://www.facebook.com/{page}/posts/{post}",
    }
    response = await client.get(f"{V}/{PAGE}_1", params={"fields": "permalink_url"})
    assert response.status_code == 400
    error = meta_error(response)
    assert error["code"] == 100
    assert "Unsupported get request" in error["message"]


async def test_unknown_field_is_rejected(client: httpx.AsyncClient) -> None:
    """Asking for a field a post lacks is code 100."""
    post_id = (await client.post(f"{V}/{PAGE}/feed", data={"message": "p"})).json()["id"]
    response = await client.get(f"{V}/{post_id}", params={"fields": "nope"})
    assert response.status_code == 400
    assert meta_error(response)["code"] == 100


async def test_feed_listing_newest_first_with_since_and_paging(
    client: httpx.AsyncClient,
) -> None:
    """The page feed lists its posts newest first, filters by since, and pages."""
    before = int(time.time()) - 1
    ids = [
        (await client.post(f"{V}/{PAGE}/feed", data={"message": f"m{n}"})).json()["id"]
        for n in range(3)
    ]
    await client.post(f"{V}/999/feed", data={"message": "other page"})
    params = {"fields": "id,message,created_time", "since": str(before)}
    body = (await client.get(f"{V}/{PAGE}/feed", params=params)).json()
    assert [d["id"] for d in body["data"]] == ids[::-1]
    assert [d["message"] for d in body["data"]] == ["m2", "m1", "m0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", body["data"][0]["created_time"])
    future = {"since": str(int(time.time()) + 60)}
    assert (await client.get(f"{V}/{PAGE}/feed", params=future)).json()["data"] == []
    first = (await client.get(f"{V}/{PAGE}/feed", params={"limit": "2"})).json()
    assert [d["id"] for d in first["data"]] == ids[:0:-1]
    rest = (await client.get(first["paging"]["next"])).json()
    assert [d["id"] for d in rest["data"]] == ids[:1]
    assert "next" not in rest["paging"]


async def test_usage_headers_count_calls_per_page(client: httpx.AsyncClient) -> None:
    """Responses carry X-App-Usage and X-Business-Use-Case-Usage for the page."""
    await configure(client, account_quota=4)
    for _ in range(2):
        response = await client.post(f"{V}/{PAGE}/feed", data={"message": "u"})
    app = json.loads(response.headers["x-app-usage"])
    assert set(app) == {"call_count", "total_time", "total_cputime"}
    buc = json.loads(response.headers["x-business-use-case-usage"])
    [usage] = buc[PAGE]
    assert usage["type"] == "pages"
    assert usage["call_count"] == 50  # 2 of 4 calls


# -- auth --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "subcode"),
    [
        ({"Authorization": ""}, None),
        ({"Authorization": "Bearer token-revoked-1"}, 460),
        ({"Authorization": "Bearer was-expired"}, 463),
    ],
)
async def test_token_errors(
    client: httpx.AsyncClient, headers: dict[str, str], subcode: int | None
) -> None:
    """Missing, revoked and expired tokens are code 190 and nothing is posted."""
    response = await client.post(f"{V}/{PAGE}/feed", data={"message": "t"}, headers=headers)
    assert response.status_code == 400
    error = meta_error(response)
    assert error["code"] == 190
    assert error.get("error_subcode") == subcode
    assert "www-authenticate" in response.headers
    assert await posts(client) == []


# -- faults ------------------------------------------------------------------------------

ERROR_FAULTS = [
    ("transient", 500, 2, None, True),
    ("throttle", 400, 80001, None, True),
    ("rate_limit_429", 429, 4, None, True),
    ("token_expired", 400, 190, 463, False),
    ("permission", 403, 200, None, False),
    ("bad_input", 400, 100, None, False),
]


@pytest.mark.parametrize(("kind", "status", "code", "subcode", "transient"), ERROR_FAULTS)
async def test_error_faults(
    client: httpx.AsyncClient,
    kind: str,
    status: int,
    code: int,
    subcode: int | None,
    transient: bool,
) -> None:
    """Each error fault answers with its documented Meta error and records nothing."""
    await configure(client, fault_rate=1.0, faults=[kind], regain_minutes=7, retry_after=3)
    response = await client.post(f"{V}/{PAGE}/feed", data={"message": kind})
    assert response.status_code == status
    error = meta_error(response)
    assert error["code"] == code
    assert error.get("error_subcode") == subcode
    assert error["is_transient"] is transient
    if kind == "throttle":
        [usage] = json.loads(response.headers["x-business-use-case-usage"])[PAGE]
        assert usage["call_count"] == 100
        assert usage["estimated_time_to_regain_access"] == 7
    if kind == "rate_limit_429":
        assert response.headers["retry-after"] == "3"
    assert await posts(client) == []
    assert (await stats(client))["faults_injected"] == {kind: 1}


async def test_malformed_fault_records_and_garbles(client: httpx.AsyncClient) -> None:
    """``malformed`` accepts the post but answers 200 with a body that is not JSON."""
    await configure(client, fault_rate=1.0, faults=["malformed"])
    response = await client.post(f"{V}/{PAGE}/feed", data={"message": "garbled"})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert [p["message"] for p in await posts(client)] == ["garbled"]


async def test_reset_fault_breaks_the_connection(client: httpx.AsyncClient) -> None:
    """``reset`` drops the connection mid-response and records nothing."""
    await configure(client, fault_rate=1.0, faults=["reset"])
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post(f"{V}/{PAGE}/feed", data={"message": "dropped"})
    await configure(client, fault_rate=0.0)
    assert await posts(client) == []


@pytest.mark.parametrize(("kind", "recorded"), [("timeout_before", 0), ("timeout_after", 1)])
async def test_timeout_faults(client: httpx.AsyncClient, kind: str, recorded: int) -> None:
    """Both timeouts hang; only ``timeout_after`` has recorded the post."""
    await configure(client, fault_rate=1.0, faults=[kind])
    with pytest.raises(httpx.ReadTimeout):
        await client.post(f"{V}/{PAGE}/feed", data={"message": kind}, timeout=0.3)
    await configure(client, fault_rate=0.0)
    assert len(await posts(client)) == recorded


@pytest.mark.parametrize(("kind", "status"), [("timeout_before", 500), ("timeout_after", 200)])
async def test_short_hang_then_answers(client: httpx.AsyncClient, kind: str, status: int) -> None:
    """A client that outwaits the hang gets a transient error (before) or the id (after)."""
    await configure(client, fault_rate=1.0, faults=[kind], hang_seconds=0.2)
    started = time.perf_counter()
    response = await client.post(f"{V}/{PAGE}/feed", data={"message": kind})
    assert time.perf_counter() - started >= 0.19
    assert response.status_code == status


async def test_seeded_faults_repeat(client: httpx.AsyncClient) -> None:
    """The same seed gives the same sequence of faults after a reset."""
    await configure(client, fault_rate=0.5, faults=["transient", "permission"], seed=7)

    async def run() -> list[int]:
        await client.post("/_sim/reset")
        return [
            (await client.post(f"{V}/{PAGE}/feed", data={"message": str(n)})).status_code
            for n in range(20)
        ]

    first = await run()
    assert set(first) == {200, 403, 500}
    assert await run() == first


async def test_account_quota_throttles(client: httpx.AsyncClient) -> None:
    """Past the account quota every call is throttled with 80001; other pages are not."""
    await configure(client, account_quota=2)
    codes = [
        (await client.post(f"{V}/{PAGE}/feed", data={"message": str(n)})).status_code
        for n in range(3)
    ]
    assert codes == [200, 200, 400]
    other = await client.post(f"{V}/777/feed", data={"message": "fine"})
    assert other.status_code == 200


async def test_latency_applies_to_publishing_only(client: httpx.AsyncClient) -> None:
    """Publishing calls wait about the configured latency; reads do not."""
    await configure(client, latency=0.2)
    started = time.perf_counter()
    await client.post(f"{V}/{PAGE}/feed", data={"message": "slow"})
    assert time.perf_counter() - started >= 0.17  # 0.2 s less 10 % jitter
    started = time.perf_counter()
    await client.get(f"{V}/{PAGE}/feed")
    assert time.perf_counter() - started < 0.15


async def test_unreadable_body_is_bad_input(client: httpx.AsyncClient) -> None:
    """A JSON body that does not parse is code 100."""
    response = await client.post(
        f"{V}/{PAGE}/feed", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert meta_error(response)["code"] == 100


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    """Paths no platform serves are 404."""
    assert (await client.post(f"{V}/{PAGE}/nothing")).status_code == 404


# -- control -----------------------------------------------------------------------------


async def test_duplicates_are_counted(client: httpx.AsyncClient) -> None:
    """Same platform, page, message and link twice is a duplicate; a new link is not."""
    for link in ("https://a", "https://a", "https://b"):
        await client.post(f"{V}/{PAGE}/feed", data={"message": "same", "link": link})
    await client.post(f"{V}/999/feed", data={"message": "same", "link": "https://a"})
    assert await stats(client) == {
        "accepted": 4,
        "duplicates": 1,
        "duplicates_refused": 0,
        "by_platform": {"facebook": 4},
        "faults_injected": {},
        "calls": 4,
        "token_refreshes": {},
    }


async def test_reset_forgets_posts_but_keeps_config(client: httpx.AsyncClient) -> None:
    """Reset empties records and counters; the configuration stays."""
    await configure(client, latency=0.01)
    await client.post(f"{V}/{PAGE}/feed", data={"message": "gone"})
    response = await client.post("/_sim/reset")
    assert response.json() == {"status": "reset"}
    assert await posts(client) == []
    assert (await stats(client))["accepted"] == 0
    assert (await client.get("/_sim/config")).json()["latency"] == 0.01


@pytest.mark.parametrize(
    "change",
    [
        {"faults": ["lightning"]},
        {"fault_rate": 2},
        {"latency": "slow"},
        {"seed": "x"},
        {"colour": "blue"},
        ["not", "an", "object"],
    ],
)
async def test_config_rejects_bad_values(client: httpx.AsyncClient, change: Any) -> None:
    """Invalid configuration is a 400 and changes nothing."""
    response = await client.post("/_sim/config", json=change)
    assert response.status_code == 400
    assert "error" in response.json()
    assert (await client.get("/_sim/config")).json() == DEFAULTS


async def test_config_changes_behaviour(client: httpx.AsyncClient) -> None:
    """A valid config is applied, echoed and takes effect."""
    response = await client.post("/_sim/config", json={"fault_rate": 1, "faults": "permission"})
    assert response.status_code == 200
    assert response.json()["faults"] == ["permission"]
    assert (await client.post(f"{V}/{PAGE}/feed", data={"message": "x"})).status_code == 403


async def test_health_and_posts_filter(client: httpx.AsyncClient) -> None:
    """Health names the platforms and fault kinds; posts filter by account."""
    health = (await client.get("/_sim/health")).json()
    assert health == {
        "status": "ok",
        "platforms": ["facebook", "instagram", "linkedin", "youtube"],
        "fault_kinds": list(FAULT_KINDS),
    }
    await client.post(f"{V}/{PAGE}/feed", data={"message": "mine"})
    await client.post(f"{V}/999/feed", data={"message": "theirs"})
    mine = (await client.get("/_sim/posts", params={"account": PAGE})).json()
    assert [p["message"] for p in mine] == ["mine"]


# -- servers -----------------------------------------------------------------------------


async def test_stopping_releases_hanging_requests() -> None:
    """Leaving run_in_process ends a request hanging in a timeout fault at once."""
    config = SimConfig(fault_rate=1.0, faults=("timeout_before",), hang_seconds=300)
    async with httpx.AsyncClient(headers=AUTH, timeout=30) as client:
        started = time.perf_counter()
        async with run_in_process(config) as url:
            call = asyncio.create_task(client.post(f"{url}{V}/{PAGE}/feed", data={"message": "h"}))
            await asyncio.sleep(0.2)
        with pytest.raises(httpx.TransportError):
            await call
        assert time.perf_counter() - started < 3


async def test_subprocess_helper_serves_and_stops() -> None:
    """SimulatorProcess starts the CLI, reads its URL, serves, and stops cleanly."""
    sim = SimulatorProcess(SimConfig(latency=0.01, seed=3))
    async with sim:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.url)
        async with httpx.AsyncClient(base_url=sim.url, headers=AUTH, timeout=5) as client:
            assert (await client.get("/_sim/health")).json()["status"] == "ok"
            config = (await client.get("/_sim/config")).json()
            assert (config["latency"], config["seed"]) == (0.01, 3)
            response = await client.post(f"{V}/{PAGE}/feed", data={"message": "child"})
            assert response.status_code == 200
            assert (await stats(client))["accepted"] == 1
    assert sim.process is not None
    assert sim.process.returncode == 0


async def test_cli_rejects_unknown_fault_kind() -> None:
    """The CLI refuses a fault kind it does not know."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "publisher.simulator",
        "--faults=lightning",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 2
    assert out == b""
    assert b"lightning" in err
