"""A Graph API on respx that answers every call our Facebook and Instagram adapters make
(as shared/platforms.md shows the answers) and records each one as a GraphCall.

Nodes are told apart by id: the page and IG user are fixed, containers, media, photos, posts
and videos are numbered as they are made. Container status is FINISHED, or PUBLISHED for
the ids in `published` (a container whose media_publish answer was lost).
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import parse_qsl

import httpx
import respx
from graph_reference import GraphCall

PAGE = "104857600123"
IG_USER = "17841400000000001"
HOSTS = ("graph.facebook.com", "graph-video.facebook.com", "graph.instagram.com")
QUOTA = {"data": [{"quota_usage": 1, "config": {"quota_total": 50, "quota_duration": 86400}}]}


class FakeGraph:
    """Every Graph host on one respx router; `calls` in the order they came."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.calls: list[GraphCall] = []
        self.kinds: dict[str, str] = {PAGE: "page", IG_USER: "ig_user"}
        self.published: set[str] = set()
        self.captions: dict[str, str] = {}      # container or media id -> caption
        self.feed: list[dict[str, Any]] = []     # the page's posts, for the feed listing
        self._ids = itertools.count(17_900_000_000_000_001)
        for host in HOSTS:
            router.route(host=host).mock(side_effect=self._answer)

    def new(self, kind: str) -> str:
        """A fresh numeric id for a node of `kind`."""
        node = str(next(self._ids))
        self.kinds[node] = kind
        return node

    def _answer(self, request: httpx.Request) -> httpx.Response:
        _, _version, node, *rest = request.url.path.split("/")
        params = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        if request.method == "POST":
            params |= dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        call = GraphCall(request.method, request.url.host, self.kinds.get(node, "unknown"),
                         node, "/".join(rest), params)
        self.calls.append(call)
        return httpx.Response(200, json=self._body(call))

    def _body(self, call: GraphCall) -> dict[str, Any]:
        handlers = {
            ("page", "POST", "feed"): self._post,
            ("page", "POST", "photos"): self._photo,
            ("page", "POST", "videos"): lambda c: {"id": self.new("video")},
            ("page", "GET", "feed"): lambda c: {"data": self.feed},
            ("ig_user", "POST", "media"): self._container,
            ("ig_user", "POST", "media_publish"): self._publish,
            ("ig_user", "GET", "content_publishing_limit"): lambda c: QUOTA,
            ("ig_user", "GET", "media"): self._media_list,
            ("ig_container", "GET", ""): self._status,
            ("ig_media", "GET", ""): lambda c: {
                "id": c.node_id, "permalink": f"https://www.instagram.com/p/{c.node_id}/"},
            ("video", "GET", ""): lambda c: {"id": c.node_id,
                                             "status": {"video_status": "ready"}},
        }
        handler = handlers.get(call.key)
        if handler is None:
            return {"error": {"message": f"the fake graph has no answer for {call}",
                              "type": "OAuthException", "code": 100}}
        return handler(call)

    def _post(self, call: GraphCall) -> dict[str, Any]:
        post_id = f"{PAGE}_{self.new('page_post')}"
        self.kinds[post_id] = "page_post"
        self.feed.insert(0, {"id": post_id, "message": call.params.get("message", ""),
                             "created_time": "2026-07-01T12:00:00+0000"})
        return {"id": post_id}

    def _photo(self, call: GraphCall) -> dict[str, Any]:
        photo = self.new("photo")
        if call.params.get("published") == "false":
            return {"id": photo}
        return {"id": photo, "post_id": f"{PAGE}_{photo}"}

    def _container(self, call: GraphCall) -> dict[str, Any]:
        container = self.new("ig_container")
        self.captions[container] = call.params.get("caption", "")
        return {"id": container}

    def _publish(self, call: GraphCall) -> dict[str, Any]:
        media = self.new("ig_media")
        self.captions[media] = self.captions.get(call.params.get("creation_id", ""), "")
        return {"id": media}

    def _status(self, call: GraphCall) -> dict[str, Any]:
        code = "PUBLISHED" if call.node_id in self.published else "FINISHED"
        return {"id": call.node_id, "status_code": code, "status": code.title()}

    def _media_list(self, call: GraphCall) -> dict[str, Any]:
        media = [m for m, kind in self.kinds.items() if kind == "ig_media"]
        return {"data": [{"id": m, "caption": self.captions.get(m, ""),
                          "timestamp": "2026-07-01T12:00:00+0000",
                          "permalink": f"https://www.instagram.com/p/{m}/"} for m in media]}
