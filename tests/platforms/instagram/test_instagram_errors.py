"""Every row of the Instagram subcode table, and the Meta codes as they reach Instagram calls.

Subcodes arrive two ways (shared/platforms.md section 7): as a container whose status_code
is ERROR with the subcode in `status`, and as error_subcode in an error body on container
creation or media_publish. Each row is walked both ways.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
from instagram_support import (
    ADAPTER,
    TOKEN,
    Gate,
    Graph,
    PostFactory,
    assert_no_token,
    calls_to,
    context_fixture,
    gate_fixture,
    graph_fixture,
    ig_fixture,
    make_post_fixture,
    status,
)

from publisher.models import Outcome, OutcomeKind
from publisher.platforms.base import PublishContext, publish_masked
from publisher.platforms.instagram.adapter import EARLIER_CHECK_SECONDS
from publisher.platforms.instagram.errors import SUBCODE_TABLE
from publisher.platforms.meta.errors import DEFAULT_THROTTLE_SECONDS

# The shared fixtures: importing them here registers them under their short names.
FIXTURES = (context_fixture, gate_fixture, graph_fixture, ig_fixture, make_post_fixture)

RETRY, FAILED, DEFER = OutcomeKind.RETRY, OutcomeKind.FAILED, OutcomeKind.DEFER
PENDING, REAUTH, UNKNOWN = OutcomeKind.PENDING, OutcomeKind.REAUTH, OutcomeKind.UNKNOWN


@dataclass(frozen=True)
class Row:
    """What a subcode must come to: kind, words in the reason, wait, container kept."""

    kind: OutcomeKind
    says: str
    code: int = -1                 # the Meta code it comes with in an error body
    wait: float | None = None
    keeps_container: bool = False  # after media_publish: the same container is used again


EXPECTED = {
    2207001: Row(RETRY, "server error"),
    2207003: Row(RETRY, "timed out downloading", code=-2),
    2207032: Row(RETRY, "failed to create"),
    2207052: Row(RETRY, "could not download the media", code=9004),
    2207020: Row(RETRY, "expired", code=-2),
    2207053: Row(RETRY, "processed the video"),
    2207004: Row(FAILED, "larger than 8 MB", code=36000),
    2207005: Row(FAILED, "media format", code=36001),
    2207009: Row(FAILED, "aspect ratio", code=36003),
    2207026: Row(FAILED, "video's format", code=352),
    2207057: Row(FAILED, "thumbnail offset", code=100),
    2207010: Row(FAILED, "caption is too long", code=100),
    2207042: Row(DEFER, "publishing limit", code=9, wait=3600.0, keeps_container=True),
    2207027: Row(PENDING, "not ready", code=9007, wait=30.0, keeps_container=True),
    2207050: Row(REAUTH, "restricted"),
    2207051: Row(FAILED, "spam"),
}


def meta(code: int, message: str = "An error occurred", *, subcode: int | None = None,
         transient: bool = False) -> dict[str, Any]:
    """A Graph API error body, as Meta sends it."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "is_transient": transient, "fbtrace_id": "AbCdEf123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def check(outcome: Outcome, row: Row) -> None:
    """The outcome has the row's kind, words and wait, and no token anywhere."""
    assert outcome.kind is row.kind, outcome
    assert row.says in (outcome.reason or ""), outcome.reason
    if row.kind in (DEFER, PENDING):
        assert outcome.retry_after == row.wait
    if row.kind is DEFER:
        assert outcome.pause_account is True
    assert_no_token(outcome)


def test_every_table_row_is_walked() -> None:
    """The expected outcomes below cover exactly the rows of SUBCODE_TABLE."""
    assert set(EXPECTED) == set(SUBCODE_TABLE)


@pytest.mark.parametrize(("subcode", "row"), EXPECTED.items(), ids=map(str, EXPECTED))
async def test_container_error_status(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory,
        subcode: int, row: Row) -> None:
    """status_code ERROR: the subcode in `status` decides; the errored container is dropped."""
    graph.container("c1", status("ERROR", f"Error: Media upload has failed with error code "
                                          f"{subcode}", container="c1"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    check(outcome, row)
    assert str(subcode) in (outcome.reason or "")
    assert outcome.detail["subcode"] == subcode
    assert outcome.state["container_id"] is None
    assert graph.publish.call_count == 0
    assert gate.calls == 0


@pytest.mark.parametrize(("subcode", "row"), EXPECTED.items(), ids=map(str, EXPECTED))
async def test_media_publish_error(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory,
        subcode: int, row: Row) -> None:
    """An error body on media_publish: the row's outcome. A "make a new container" row still
    keeps the container, in previous_containers: the error does not prove it was not
    published, and a later attempt reads it first (no sooner than 30 s later)."""
    graph.container("c1", "FINISHED")
    graph.publish.respond(400, json=meta(row.code, "Instagram says no", subcode=subcode))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    check(outcome, row)
    assert f"{row.code}/{subcode}" in (outcome.reason or "")
    assert outcome.detail == {"http_status": 400, "code": row.code, "subcode": subcode}
    assert outcome.state["container_id"] == ("c1" if row.keeps_container else None)
    kept = [entry["id"] for entry in outcome.state.get("previous_containers", [])]
    assert kept == ([] if row.keeps_container else ["c1"])
    if row.kind is RETRY:
        assert outcome.retry_after == EARLIER_CHECK_SECONDS
    assert gate.calls == 1


@pytest.mark.parametrize(("subcode", "row"), EXPECTED.items(), ids=map(str, EXPECTED))
async def test_container_creation_error(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory, subcode: int, row: Row) -> None:
    """An error body on container creation: the row's outcome, nothing polled or sent."""
    graph.create.mock(return_value=httpx.Response(
        400, json=meta(row.code, "Instagram says no", subcode=subcode)))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    check(outcome, row)
    assert outcome.state["container_id"] is None
    assert [c.request.url.path.rsplit("/", 1)[-1] for c in ig.calls] == [
        "content_publishing_limit", "media"]
    assert gate.calls == 0


@pytest.mark.parametrize("text", ["", "ERROR", "Error: something new 2209999"],
                         ids=["empty", "no-subcode", "unlisted-subcode"])
async def test_container_error_without_known_subcode_is_retried_fresh(
        graph: Graph, context: PublishContext, make_post: PostFactory, text: str) -> None:
    """An ERROR container without a listed subcode: RETRY with a new container next time."""
    graph.container("c1", status("ERROR", text, container="c1"))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is RETRY
    assert "could not prepare the media" in (outcome.reason or "")
    assert outcome.state["container_id"] is None


async def test_container_error_subcode_as_a_number(
        graph: Graph, context: PublishContext, make_post: PostFactory) -> None:
    """`status` may carry the bare subcode as a number."""
    graph.container("c1", httpx.Response(200, json={"status_code": "ERROR", "status": 2207026}))

    outcome = await publish_masked(ADAPTER, make_post(), context)

    check(outcome, EXPECTED[2207026])


def usage(minutes: float) -> dict[str, str]:
    """An X-Business-Use-Case-Usage header for the IG user (estimate in minutes)."""
    return {"X-Business-Use-Case-Usage": json.dumps({"17841400000000001": [
        {"type": "instagram", "call_count": 100, "total_cputime": 10, "total_time": 10,
         "estimated_time_to_regain_access": minutes}]})}


@dataclass(frozen=True)
class Case:
    """A Meta answer to an Instagram call, and the outcome it must come to."""

    status: int
    body: dict[str, Any] | bytes
    kind: OutcomeKind
    wait: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> httpx.Response:
        body = self.body if isinstance(self.body, bytes) else json.dumps(self.body).replace(
            "{token}", TOKEN).encode()
        return httpx.Response(self.status, content=body, headers=self.headers)


PUBLISH_CASES = {
    # Never twice: server trouble on media_publish may follow a published container.
    "transient-1": Case(500, meta(1, "An unknown error has occurred."), UNKNOWN),
    "transient-1-on-400": Case(400, meta(1, "An unknown error occurred"), UNKNOWN),
    "transient-2": Case(503, meta(2, "Service temporarily unavailable", transient=True),
                        UNKNOWN),
    "is-transient": Case(400, meta(100, "Please retry", transient=True), UNKNOWN),
    "5xx-unlisted-code": Case(500, meta(-1, "Unexpected"), UNKNOWN),
    "token-190-463": Case(400, meta(190, "Error validating access token", subcode=463), REAUTH),
    "token-echoed": Case(400, meta(190, "Malformed access token {token}"), REAUTH),
    "permission-10": Case(403, meta(10, "Application does not have permission"), REAUTH),
    "throttle-4-usage": Case(400, meta(4, "Application request limit reached"), DEFER,
                             wait=600.0, headers=usage(10)),
    "throttle-80002": Case(400, meta(80002, "There have been too many calls"), DEFER,
                           wait=DEFAULT_THROTTLE_SECONDS),
    "code-9-no-subcode": Case(400, meta(9, "Application request limit reached"), DEFER,
                              wait=3600.0),
    "bad-input-100": Case(400, meta(100, "Invalid parameter"), FAILED),
    "502-html": Case(502, b"<html>Bad Gateway</html>", UNKNOWN),
    "429-no-body": Case(429, b"", DEFER, wait=DEFAULT_THROTTLE_SECONDS),
}


@pytest.mark.parametrize("case", PUBLISH_CASES.values(), ids=PUBLISH_CASES.keys())
async def test_meta_errors_on_media_publish_keep_the_container(
        graph: Graph, context: PublishContext, make_post: PostFactory, case: Case) -> None:
    """Meta codes on media_publish follow the Meta table; the container stays for next time."""
    graph.container("c1", "FINISHED")
    graph.publish.mock(return_value=case.response())

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is case.kind, outcome
    if case.wait is not None:
        assert outcome.retry_after == case.wait
    assert outcome.state["container_id"] == "c1"
    assert outcome.state["publish_tried"] is True
    assert_no_token(outcome)


PREPARE_CASES = {
    # The same server trouble on a preparation call: safe to try again.
    "transient-1": Case(500, meta(1, "An unknown error has occurred."), RETRY),
    "transient-2": Case(400, meta(2, "Service temporarily unavailable", transient=True), RETRY),
    "token-190": Case(400, meta(190, "Error validating access token", subcode=467), REAUTH),
    "throttle-80002": Case(400, meta(80002, "Too many calls"), DEFER, wait=300.0,
                           headers=usage(5)),
    "bad-input-100": Case(400, meta(100, "Invalid parameter"), FAILED),
    "502-html": Case(502, b"<html>Bad Gateway</html>", RETRY),
    "200-without-id": Case(200, {"success": True}, RETRY),
    "200-not-json": Case(200, b"<html>OK</html>", RETRY),
}


@pytest.mark.parametrize("case", PREPARE_CASES.values(), ids=PREPARE_CASES.keys())
async def test_meta_errors_on_container_creation(
        graph: Graph, context: PublishContext, gate: Gate, make_post: PostFactory,
        case: Case) -> None:
    """Errors creating a container: preparation, so a 5xx or odd 2xx is RETRY, never UNKNOWN."""
    graph.create.mock(return_value=case.response())

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is case.kind, outcome
    if case.wait is not None:
        assert outcome.retry_after == case.wait
    assert gate.calls == 0
    assert_no_token(outcome)


@pytest.mark.parametrize("case", PREPARE_CASES.values(), ids=PREPARE_CASES.keys())
async def test_meta_errors_on_status_poll_keep_the_container(
        ig: respx.MockRouter, graph: Graph, context: PublishContext, gate: Gate,
        make_post: PostFactory, case: Case) -> None:
    """Errors reading a container's status: same table, and the container is kept."""
    graph.container("c1", case.response())

    outcome = await publish_masked(ADAPTER, make_post(), context)

    assert outcome.kind is case.kind, outcome
    assert outcome.state["container_id"] == "c1"
    assert len(calls_to(ig, "GET", "/c1")) == 1
    assert gate.calls == 0
    assert_no_token(outcome)
