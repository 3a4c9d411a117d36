"""The Graph API edges as the facebook-business SDK (Meta's own, generated from the API's
specification) lists them, loaded from the installed package at test time.

How the SDK's lists are read. Each SDK method (Page.create_feed, IGUser.create_media,
IGMedia.api_get, ...) builds a FacebookRequest carrying the HTTP method, the edge, a
TypeChecker made from the method's `param_types`/`enums` dicts, and the target class whose
`Field` class names the readable fields. Called with pending=True the SDK returns that request
without sending it (no API object, no network), so the checks below ask the SDK's own
request, exactly as it would check its own callers:

    method / edge      request._method, request._endpoint
    parameter names    request._param_checker.is_valid_key(name)
    parameter values   request._param_checker.is_valid_pair(name, value)   (types, enums)
    fields             request._accepted_fields  (the target class's Field values)
    host               FacebookSession.GRAPH; for video uploads the host of the SDK's
                       video uploader

This was chosen over parsing each method's source with ast: it survives changes in how the
generated code is laid out, and it is the check the SDK itself runs. It relies on four
attribute names of FacebookRequest; test_the_sdk_builds_requests_without_sending fails
loudly if a new SDK version renames them, rather than letting the checks pass vacuously.

Only the Graph API's generic read parameters (fields and paging: limit, since, until, after,
before: developers.facebook.com/docs/graph-api/results) are allowed on a GET beyond what
the SDK lists for the edge, because the SDK leaves them to its Cursor.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from facebook_business import apiconfig, video_uploader
from facebook_business.adobjects.advideo import AdVideo
from facebook_business.adobjects.igmedia import IGMedia
from facebook_business.adobjects.iguser import IGUser
from facebook_business.adobjects.page import Page
from facebook_business.adobjects.pagepost import PagePost
from facebook_business.adobjects.shadowigmediabuilder import ShadowIGMediaBuilder
from facebook_business.api import FacebookRequest
from facebook_business.session import FacebookSession

SDK_VERSION = metadata.version("facebook-business")
SDK_API_VERSION: str = apiconfig.ads_api_config["API_VERSION"]
GENERIC_READ_PARAMS = frozenset({"fields", "limit", "since", "until", "after", "before"})
GRAPH_HOST = urlsplit(FacebookSession.GRAPH).netloc
# The SDK's video uploader posts to its own host (a literal in VideoUploadRequest.send).
VIDEO_HOST = urlsplit(re.findall(r"url_override='([^']+)'",
                                 inspect.getsource(video_uploader.VideoUploadRequest.send))[0]
                      ).netloc
# Instagram API with Instagram Login serves the same IG edges on its own host, which the
# SDK (Facebook Login only) does not know: developers.facebook.com/docs/instagram-platform/
# instagram-api-with-instagram-login/content-publishing.
INSTAGRAM_LOGIN_HOST = "graph.instagram.com"

# (node kind, HTTP method, edge; "" for a read of the node itself) -> the SDK method.
EDGES: dict[tuple[str, str, str], Callable[[str], FacebookRequest]] = {
    ("page", "POST", "feed"): lambda i: Page(fbid=i).create_feed(pending=True),
    ("page", "POST", "photos"): lambda i: Page(fbid=i).create_photo(pending=True),
    ("page", "POST", "videos"): lambda i: Page(fbid=i).create_video(pending=True),
    ("page", "GET", "feed"): lambda i: Page(fbid=i).get_feed(pending=True),
    ("page_post", "GET", ""): lambda i: PagePost(fbid=i).api_get(pending=True),
    ("video", "GET", ""): lambda i: AdVideo(fbid=i).api_get(pending=True),
    ("ig_user", "POST", "media"): lambda i: IGUser(fbid=i).create_media(pending=True),
    ("ig_user", "POST", "media_publish"):
        lambda i: IGUser(fbid=i).create_media_publish(pending=True),
    ("ig_user", "GET", "media"): lambda i: IGUser(fbid=i).get_media(pending=True),
    ("ig_user", "GET", "content_publishing_limit"):
        lambda i: IGUser(fbid=i).get_content_publishing_limit(pending=True),
    ("ig_container", "GET", ""): lambda i: ShadowIGMediaBuilder(fbid=i).api_get(pending=True),
    ("ig_media", "GET", ""): lambda i: IGMedia(fbid=i).api_get(pending=True),
}


@dataclass(frozen=True)
class GraphCall:
    """One Graph API request an adapter sent: query and form merged into `params`."""

    method: str
    host: str
    node_kind: str
    node_id: str
    edge: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.node_kind, self.method, self.edge)

    def __str__(self) -> str:
        return f"{self.method} /{{{self.node_kind}}}{'/' + self.edge if self.edge else ''}"


def sdk_request(call: GraphCall) -> FacebookRequest | None:
    """The request the SDK builds for the same edge, or None when it has no such edge."""
    build = EDGES.get(call.key)
    return build(call.node_id) if build is not None else None


def problems(call: GraphCall) -> list[str]:
    """Each way `call` departs from the SDK's definition of its edge (empty: none)."""
    request = sdk_request(call)
    if request is None:
        return [f"{call}: no facebook-business SDK edge is mapped for this call"]
    found = []
    if call.host not in hosts(call):
        found.append(f"{call}: sent to {call.host}, the SDK sends it to {GRAPH_HOST}")
    if (request._method, request._endpoint) != (call.method, call.edge):
        found.append(f"{call}: the SDK's edge is {request._method} /{request._endpoint}")
    checker = request._param_checker
    for name, raw in call.params.items():
        if name == "fields":
            accepted = set(request._accepted_fields)
            found += [f"{call}: field {f!r} is not a field the SDK lists for "
                      f"{request._target_class.__name__}"
                      for f in raw.split(",") if f not in accepted]
        elif not checker.is_valid_key(name):
            if not (call.method == "GET" and name in GENERIC_READ_PARAMS):
                found.append(f"{call}: parameter {name!r} is not one the SDK lists for "
                             "this edge")
        elif not checker.is_valid_pair(name, decoded(raw, checker.get_type(name))):
            found.append(f"{call}: parameter {name}={raw[:60]!r} is not of the SDK's type "
                         f"{checker.get_type(name)!r}")
    return found


def hosts(call: GraphCall) -> set[str]:
    """The hosts this edge may be sent to: the SDK's Graph host; its video host for video
    uploads; the Instagram Login host for Instagram's edges."""
    allowed = {GRAPH_HOST}
    if call.key == ("page", "POST", "videos"):
        allowed.add(VIDEO_HOST)
    if call.node_kind.startswith("ig_"):
        allowed.add(INSTAGRAM_LOGIN_HOST)
    return allowed


def decoded(raw: str, sdk_type: str) -> Any:
    """A form value as the SDK's type checker expects it: JSON for lists, maps and objects
    (how the SDK itself encodes them), a comma list where JSON is not given (Meta documents
    children=a,b)."""
    if sdk_type.startswith(("list", "map")) or sdk_type == "Object":
        try:
            return json.loads(raw)
        except ValueError:
            if sdk_type.startswith("list"):
                return [part for part in raw.split(",") if part]
    return raw
