"""Every YouTube request our adapter builds, checked against Google's own references.

References, loaded from the installed packages at test time (youtube_discovery.py):
- the YouTube Data API v3 discovery document bundled in google-api-python-client: method
  and path of videos.insert, its query parameters, the Video schema (fields, JSON types,
  enums, date-time formats), mediaUpload.accept and maxSize;
- googleapiclient itself, building and sending the same resumable upload (initiation
  headers, chunk Content-Range), and its media-type matcher;
- google-auth sending the refresh_token grant (and saying which token errors it retries).

The adapter is driven with respx through the same upload model as its unit tests, once per
option combination, and every request it sends is checked; a body field, query parameter
or media type the reference does not know fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import google.auth.transport
import httpx
import pytest
import respx
from google.auth.exceptions import RefreshError
from google.oauth2 import _client as google_oauth_client
from google.oauth2.credentials import Credentials
from youtube_discovery import (
    AUTH_VERSION,
    CLIENT_VERSION,
    DOC,
    VIDEOS_INSERT,
    accepted,
    body_problems,
    known_query_parameters,
    reference_insert,
)
from youtube_support import (
    FakeMedia,
    FakeYouTube,
    Q,
    context,
    gate,
    make_adapter,
    make_post,
    media,
    router,
    youtube,
)

from publisher.models import ClaimedPost, OutcomeKind
from publisher.platforms.base import PublishContext, TokenGrant
from publisher.platforms.youtube.adapter import PRIVACY
from publisher.settings import OAuthClient, PlatformEndpoints

__all__ = ["context", "gate", "make_post", "media", "router", "youtube"]  # fixtures

ADAPTER = make_adapter()
PostFactory = Callable[..., ClaimedPost]
FUTURE = "2026-12-24T18:00:00+01:00"
REFRESH = "1//0gContractRefreshToken"
OAUTH = OAuthClient(client_id="1234-contract.apps.googleusercontent.com",
                    client_secret="GOCSPX-contract")
# Google's documented host for resumable uploads (developers.google.com/youtube/v3/guides/
# using_resumable_upload_protocol: "Host: www.googleapis.com"); googleapiclient uses the
# document's rootUrl instead. Both serve /upload/youtube/v3/videos.
DOCUMENTED_UPLOAD_HOST = "www.googleapis.com"
VIDEO_SAMPLES = ("video/mp4", "video/quicktime", "video/webm", "video/x-matroska")

POST_CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    **{f"privacy-{p}": {"options": {"privacy": p}} for p in PRIVACY},
    "publish-at": {"options": {"publish_at": FUTURE}},
    "private-publish-at": {"options": {"privacy": "private", "publish_at": FUTURE}},
    "tags": {"options": {"tags": ["news", "local news", "é"]}},
    "category-str": {"options": {"category_id": "10"}},
    "category-int": {"options": {"category_id": 27}},
    "kids": {"options": {"made_for_kids": True}},
    "not-kids": {"options": {"made_for_kids": False}},
    "unicode": {"title": "Über — 映画 " + "t" * 80, "content": "é" * 2500},
    "no-description": {"content": None},
    "everything": {"options": {"privacy": "private", "publish_at": FUTURE, "tags": ["a"],
                               "category_id": 2, "made_for_kids": True, "short": True}},
}
POSTS = [pytest.param(post, id=name) for name, post in POST_CASES.items()]
# Every body field the posts above make the adapter send; a new one must be added to POSTS.
EXERCISED = {"snippet.title", "snippet.description", "snippet.tags", "snippet.categoryId",
             "status.privacyStatus", "status.publishAt", "status.selfDeclaredMadeForKids"}


def leaves(value: Any, where: str = "") -> set[str]:
    """The dotted paths of a JSON object's non-object values."""
    if not isinstance(value, dict):
        return {where}
    return {path for key, item in value.items() for path in leaves(item, f"{where}.{key}"
                                                                  .lstrip("."))}


async def upload(make_post: PostFactory, context: PublishContext, youtube: FakeYouTube,
                 **post: Any) -> tuple[httpx.Request, list[httpx.Request]]:
    """Publishes one post; its initiation POST and its chunk PUTs."""
    opened_before, puts_before = len(youtube.opened), len(youtube.put_route.calls)
    outcome = await ADAPTER.publish(make_post(**post), context)
    assert outcome.kind is OutcomeKind.PUBLISHED, outcome.reason
    [opened] = youtube.opened[opened_before:]
    return opened, [call.request for call in youtube.put_route.calls[puts_before:]]


# --- method, path, query ---------------------------------------------------------------------


async def test_insert_is_the_documents_method_and_resumable_path(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """The session opens with videos.insert's HTTP method on its resumable upload path."""
    opened, _ = await upload(make_post, context, youtube)
    ours = urlsplit(str(opened.url))
    reference = urlsplit(reference_insert(part="snippet,status", body={}, data=b"x",
                                          media_type="video/mp4", chunk_bytes=Q)[0].uri)
    protocols = VIDEOS_INSERT["mediaUpload"]["protocols"]

    assert opened.method == VIDEOS_INSERT["httpMethod"] == "POST"
    # googleapiclient sends a resumable upload to the simple path with uploadType=resumable;
    # the document's resumable.path is the older spelling of the same protocol.
    assert reference.path == protocols["simple"]["path"]
    assert dict(parse_qsl(reference.query))["uploadType"] == "resumable"
    assert ours.path in (reference.path, protocols["resumable"]["path"])
    assert dict(parse_qsl(ours.query))["uploadType"] == "resumable"
    assert ours.scheme == "https"
    assert ours.netloc in (urlsplit(DOC["rootUrl"]).netloc, DOCUMENTED_UPLOAD_HOST)


@pytest.mark.parametrize("post", POSTS)
async def test_query_parameters_are_known_to_videos_insert(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory, post: dict[str, Any]) -> None:
    """Each query parameter is one videos.insert knows, of its type; `part` names Video
    parts and covers every part the body sets (YouTube ignores parts not named)."""
    opened, _ = await upload(make_post, context, youtube, **post)
    known = known_query_parameters()
    query = parse_qs(urlsplit(str(opened.url)).query, keep_blank_values=True)

    assert set(query) <= set(known), set(query) - set(known)
    required = {name for name, spec in known.items() if spec.get("required")}
    assert required <= set(query)
    for name, values in query.items():
        spec = known[name]
        assert len(values) == 1 or spec.get("repeated"), name
        for value in values:
            if spec["type"] == "boolean":
                assert value in ("true", "false"), (name, value)
            if "enum" in spec:
                assert value in spec["enum"], (name, value)
    parts = query["part"][0].split(",")
    assert set(parts) <= set(DOC["schemas"]["Video"]["properties"])
    assert set(json.loads(opened.content)) <= set(parts)


# --- the body ----------------------------------------------------------------------------------


@pytest.mark.parametrize("post", POSTS)
async def test_body_fits_the_video_schema(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory, post: dict[str, Any]) -> None:
    """Every body field is a field of the Video schema, with its JSON type and enum."""
    opened, _ = await upload(make_post, context, youtube, **post)
    body = json.loads(opened.content)

    assert VIDEOS_INSERT["request"] == {"$ref": "Video"}
    assert body_problems(body, VIDEOS_INSERT["request"]) == []


async def test_the_posts_reach_every_field_the_adapter_sets(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """The option combinations above make the adapter send every field it can set, so
    the schema test checks each one (a new field must get a combination here)."""
    sent: set[str] = set()
    for post in POST_CASES.values():
        opened, _ = await upload(make_post, context, youtube, **post)
        sent |= leaves(json.loads(opened.content))

    assert sent == EXERCISED


def test_the_schema_check_refuses_what_youtube_would_not_take() -> None:
    """The checker itself: unknown fields, wrong types and values outside enums fail."""
    problems = body_problems({"snippet": {"title": "t", "categoryId": 22, "tag": ["x"]},
                              "status": {"privacyStatus": "friends", "publishAt": "soon",
                                         "selfDeclaredMadeForKids": "no"}},
                             VIDEOS_INSERT["request"])

    assert len(problems) == 5, problems
    assert any("categoryId" in p and "string" in p for p in problems)
    assert any("snippet.tag:" in p for p in problems)
    assert any("friends" in p for p in problems)
    assert any("publishAt" in p for p in problems)
    assert any("selfDeclaredMadeForKids" in p and "boolean" in p for p in problems)


# --- media ------------------------------------------------------------------------------------


async def upload_typed(media_type: str, youtube: FakeYouTube, media: FakeMedia,
                       context: PublishContext, make_post: PostFactory) -> None:
    """Uploads media served as `media_type`: the type we declare is one the method accepts,
    on the initiation and on every chunk; the size is the media's and within maxSize."""
    media.content_type = media_type
    opened, puts = await upload(make_post, context, youtube)
    declared = opened.headers["x-upload-content-type"]

    assert declared == media_type
    assert accepted(declared)
    assert int(opened.headers["x-upload-content-length"]) == media.total
    assert media.total <= int(VIDEOS_INSERT["mediaUpload"]["maxSize"])
    assert {put.headers["content-type"] for put in puts} == {declared}


@pytest.mark.parametrize("media_type", VIDEO_SAMPLES)
async def test_video_media_types_are_uploaded(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory, media_type: str) -> None:
    """Media typed video/... (accept: video/*) is uploaded as that type."""
    await upload_typed(media_type, youtube, media, context, make_post)


async def test_octet_stream_media_is_uploaded(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """Media typed application/octet-stream (S3-style hosting) is in accept: uploaded."""
    await upload_typed("application/octet-stream", youtube, media, context, make_post)


def test_every_accepted_media_type_has_a_test() -> None:
    """The two tests above cover each entry of mediaUpload.accept (a new one fails here)."""
    covered = {"video/*": VIDEO_SAMPLES, "application/octet-stream": ("application/"
                                                                     "octet-stream",)}

    assert set(VIDEOS_INSERT["mediaUpload"]["accept"]) == set(covered)
    assert all(accepted(sample) for samples in covered.values() for sample in samples)
    assert not accepted("image/png")


# --- the upload against googleapiclient's own -----------------------------------------------


async def test_upload_requests_match_googleapiclients(
        youtube: FakeYouTube, media: FakeMedia, context: PublishContext,
        make_post: PostFactory) -> None:
    """googleapiclient, sending the same body and bytes in the same chunk size, declares
    the same media type and length, JSON metadata, query parameter names (ours a subset)
    and the same Content-Range for each chunk."""
    opened, puts = await upload(make_post, context, youtube, options={"tags": ["a"]})
    query = dict(parse_qsl(urlsplit(str(opened.url)).query))
    sent = reference_insert(part=query["part"], body=json.loads(opened.content),
                            data=bytes(media.data), media_type=media.content_type,
                            chunk_bytes=Q)
    first, chunks = sent[0], sent[1:]

    assert first.method == opened.method
    for header in ("x-upload-content-type", "x-upload-content-length"):
        assert opened.headers[header] == first.headers[header], header
    assert opened.headers["content-type"].split(";")[0] == first.headers["content-type"]
    assert json.loads(opened.content) == json.loads(first.body)
    assert set(query) <= set(dict(parse_qsl(urlsplit(first.uri).query)))
    assert [put.method for put in puts] == [chunk.method for chunk in chunks]
    assert [put.headers["content-range"] for put in puts] == [
        chunk.headers["content-range"] for chunk in chunks]


# --- OAuth: the refresh_token grant against google-auth ----------------------------------------


class RecordingRequest(google.auth.transport.Request):
    """google-auth's transport, recording what it is asked and answering from a script."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.answer = (status, body)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, url: str, method: str = "GET", body: Any = None,
                 headers: Any = None, timeout: Any = None, **kwargs: Any) -> Any:
        self.calls.append({"url": url, "method": method, "body": body,
                           "headers": {k.lower(): v for k, v in (headers or {}).items()}})
        status, data = self.answer
        return _Answer(status, json.dumps(data).encode())


class _Answer(google.auth.transport.Response):
    def __init__(self, status: int, data: bytes) -> None:
        self._status, self._data = status, data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": "application/json"}

    @property
    def data(self) -> bytes:
        return self._data


GRANT = {"access_token": "ya29.contract", "expires_in": 3599, "token_type": "Bearer",
         "scope": "https://www.googleapis.com/auth/youtube.upload"}


async def test_token_refresh_is_the_request_google_auth_sends(
        router: respx.MockRouter) -> None:
    """Same URL (google-auth's default token endpoint), method, content type and form."""
    recorder = RecordingRequest(200, GRANT)
    credentials = Credentials.from_authorized_user_info({
        "refresh_token": REFRESH, "client_id": OAUTH.client_id,
        "client_secret": OAUTH.client_secret})
    credentials.refresh(recorder)
    [theirs] = recorder.calls
    route = router.post(theirs["url"]).respond(200, json=GRANT)

    async with httpx.AsyncClient(timeout=5) as client:
        grant = await ADAPTER.refresh_token(client, PlatformEndpoints(), access_token="old",
                                            refresh_token=REFRESH, oauth=OAUTH)

    assert isinstance(grant, TokenGrant)
    assert credentials.token == grant.access_token == GRANT["access_token"]
    ours = route.calls.last.request
    assert theirs["url"] == "https://oauth2.googleapis.com/token"
    assert str(ours.url) == theirs["url"]
    assert ours.method == theirs["method"] == "POST"
    assert (ours.headers["content-type"].split(";")[0]
            == theirs["headers"]["content-type"] == "application/x-www-form-urlencoded")
    assert dict(parse_qsl(ours.content.decode())) == dict(parse_qsl(theirs["body"].decode()))


def google_auth_retries(status: int, body: dict[str, Any]) -> bool:
    """Whether google-auth calls this token endpoint answer retryable."""
    with pytest.raises(RefreshError) as raised:
        google_oauth_client.refresh_grant(RecordingRequest(status, body),
                                          "https://oauth2.googleapis.com/token", REFRESH,
                                          OAUTH.client_id, OAUTH.client_secret,
                                          can_retry=False)
    return bool(raised.value.retryable)


async def refresh_outcome(router: respx.MockRouter, status: int,
                          body: dict[str, Any]) -> OutcomeKind:
    router.post("https://oauth2.googleapis.com/token").respond(status, json=body)
    async with httpx.AsyncClient(timeout=5) as client:
        outcome = await ADAPTER.refresh_token(client, PlatformEndpoints(), access_token="old",
                                              refresh_token=REFRESH, oauth=OAUTH)
    assert not isinstance(outcome, TokenGrant)
    return outcome.kind


TRANSIENT_TOKEN_ERRORS = [
    pytest.param(400, {"error": code}, id=f"400-{code}")
    for code in ("temporarily_unavailable", "server_error", "internal_failure")
] + [pytest.param(400, {"error": "x", "error_description": "temporarily_unavailable"},
                  id="400-description")
     ] + [pytest.param(status, {"error": "x"}, id=str(status))
          for status in (500, 503, 504, 408, 429)]


@pytest.mark.parametrize(("status", "body"), TRANSIENT_TOKEN_ERRORS)
async def test_token_errors_google_auth_retries_are_retried(
        router: respx.MockRouter, status: int, body: dict[str, Any]) -> None:
    """What google-auth retries, our refresh retries too (never needs_reauth)."""
    assert google_auth_retries(status, body)
    assert await refresh_outcome(router, status, body) is OutcomeKind.RETRY


async def test_a_refused_grant_is_not_retried(router: respx.MockRouter) -> None:
    """invalid_grant is final in google-auth, and a reconnect for us."""
    body = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}

    assert not google_auth_retries(400, body)
    assert await refresh_outcome(router, 400, body) is OutcomeKind.REAUTH


def test_references_are_the_installed_packages() -> None:
    """The references are the test dependencies, at the versions pyproject asks for."""
    major, minor = (int(n) for n in CLIENT_VERSION.split(".")[:2])

    assert (major, minor) >= (2, 100)
    assert int(AUTH_VERSION.split(".")[0]) >= 2
    assert DOC["name"] == "youtube"
    assert DOC["version"] == "v3"
