"""Instagram professional accounts: image, reel, carousel and story posts.

Per account, through Facebook Login (graph.facebook.com, a Page token that is not refreshed)
or Instagram Login (graph.instagram.com, a 60-day token refreshed there): see graph_host.

A post is a container that Instagram builds itself from public media URLs (invisible, safe
to repeat), then one media_publish call makes it public. The container's id travels in the
post's publish_state, so that a later attempt
- polls the same container instead of making another: a video still processing comes back
  as PENDING without holding a slot, then publishes once FINISHED;
- finds a container already PUBLISHED (the answer to media_publish got lost) and reports it
  published, never publishing it again;
- reads first the containers media_publish answered "make a new container" for (kept in
  previous_containers: an error answer does not prove one was not published), and makes a
  new one only when none of them is live.
An error answer to media_publish that is server trouble (codes 1/2, is_transient, a 5xx) is
UNKNOWN: the container is read again under review (reconcile), never simply resent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from dateutil.parser import isoparse

from publisher import redact
from publisher.models import Account, ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext, TokenGrant
from publisher.platforms.http import json_body, send, snippet
from publisher.platforms.instagram.errors import (
    PUBLISH_LIMIT_SECONDS,
    classify_instagram_error,
    container_error,
    container_missing,
    media_kind,
    post_problem,
    refresh_instagram_token,
)
from publisher.platforms.meta.errors import check_meta_token
from publisher.platforms.reconcile_signals import not_live
from publisher.settings import OAuthClient, PlatformEndpoints

IMAGE_CHECKS = (0.0, 0.8, 1.2)   # seconds before each in-process poll: images finish at once
VIDEO_CHECKS = (0.0,)            # video takes minutes: one look, then come back later
PENDING_SECONDS = (30.0, 60.0)   # while the container is young / older than YOUNG
YOUNG = timedelta(minutes=5)
STUCK = timedelta(minutes=30)    # IN_PROGRESS this long: give up on the container
# A quota reading is trusted this long, counting each post we start on top of it, while
# it leaves this much room: an account's 2nd..nth post in a run skips the read.
QUOTA_TRUSTED_SECONDS = 600.0
QUOTA_HEADROOM = 5
RESET: dict[str, Any] = {"container_id": None, "children": None, "created_at": None,
                         "fingerprint": None, "publish_tried": False}
# A container media_publish failed for is read again in a later run, not at once within this
# one (the retry backoff, 30-60 s by default, comes on top): a publish Instagram was still
# completing must have time to show as PUBLISHED. Instagram's error-codes reference advises
# trying a failed publish again within 30 s to 2 min.
EARLIER_CHECK_SECONDS = 10.0
NOT_LIVE_STATUSES = ("FINISHED", "ERROR", "EXPIRED")   # a container in these never went out


def _fingerprint(post: ClaimedPost) -> str:
    """What the container was made from; a post edited since gets a new container."""
    made_of = [post.post_type, post.content or "", list(post.media_urls),
               {k: post.options.get(k) for k in ("alt_text", "share_to_feed", "thumb_offset")}]
    digest = hashlib.sha256(json.dumps(made_of, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _with(outcome: Outcome, state: dict[str, Any]) -> Outcome:
    return replace(outcome, state={**outcome.state, **state})


def _carry(outcome: Outcome, state: dict[str, Any]) -> Outcome:
    """Adds the container's state unless the outcome already decided it (e.g. a reset)."""
    return outcome if outcome.state else _with(outcome, state)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _previous(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, created_at) of each container kept in previous_containers."""
    kept = state.get("previous_containers")
    return [(str(entry["id"]), str(entry.get("created_at") or ""))
            for entry in (kept if isinstance(kept, list) else [])
            if isinstance(entry, dict) and entry.get("id")]


def _retired(post: ClaimedPost, box: _Container) -> dict[str, Any]:
    """RESET, with the container added to previous_containers: the evidence a later attempt
    reads for PUBLISHED before it makes a new one."""
    kept = [{"id": i, "created_at": c} for i, c in _previous(post.publish_state) if i != box.id]
    return {**RESET, "previous_containers": [*kept, {"id": box.id,
                                                     "created_at": box.created_at}]}


def _time(value: Any) -> datetime | None:
    try:
        moment = isoparse(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        return None
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _age(created_at: str) -> timedelta:
    moment = _time(created_at)
    return datetime.now(UTC) - moment if moment else timedelta(0)


@dataclass(frozen=True, slots=True)
class _Container:
    """A container (or, while children process, a carousel's children) being published."""

    id: str | None
    created_at: str
    fingerprint: str
    children: tuple[str, ...] = ()
    tried: bool = False            # media_publish was sent for it at least once

    def state(self) -> dict[str, Any]:
        return {"container_id": self.id, "children": list(self.children) or None,
                "created_at": self.created_at, "fingerprint": self.fingerprint,
                "publish_tried": self.tried}


@dataclass(frozen=True, slots=True)
class _Status:
    code: str
    text: str


@dataclass
class _QuotaReading:
    read_at: float      # time.monotonic()
    usage: int          # as read, plus the posts started since
    total: int

    def has_room(self) -> bool:
        return (time.monotonic() - self.read_at < QUOTA_TRUSTED_SECONDS
                and self.usage + QUOTA_HEADROOM < self.total)


def graph_host(endpoints: PlatformEndpoints, account: Account) -> str:
    """The account's host: graph.instagram.com takes only Instagram Login (Instagram User)
    tokens, graph.facebook.com only Facebook Login (Page) ones; each answers the other kind
    with code 190 "Cannot parse access token". The paths and version are the same on both
    (developers.facebook.com/docs/instagram-platform/content-publishing)."""
    return endpoints.instagram_graph if account.login_type == "instagram" else endpoints.instagram


class _Graph:
    """The Graph API calls for one IG user, token in the Authorization header."""

    def __init__(self, context: PublishContext, account: Account) -> None:
        endpoints = context.endpoints
        self.context = context
        self.root = f"{graph_host(endpoints, account)}/{endpoints.facebook_api_version}"
        self.user = f"{self.root}/{account.external_id}"
        self.headers = {"Authorization": f"Bearer {context.access_token}"}

    async def call(self, method: str, url: str, *, irreversible: bool = False,
                   **kwargs: Any) -> httpx.Response | Outcome:
        return await send(self.context.client, method, url, irreversible=irreversible,
                          headers=self.headers, **kwargs)

    async def read(self, url: str, fields: str, **params: Any) -> dict[str, Any] | None:
        """A best-effort read (quota, permalink, recent media): None when it fails."""
        sent = await self.call("GET", url, params={"fields": fields, **params})
        if isinstance(sent, Outcome) or sent.is_error:
            return None
        body = json_body(sent)
        return None if body is None or "error" in body else body

    async def create(self, form: dict[str, str]) -> str | Outcome:
        """A new container's id; creating one is invisible and safe to repeat."""
        sent = await self.call("POST", f"{self.user}/media", data=form)
        if isinstance(sent, Outcome):
            return sent
        body = json_body(sent)
        if not sent.is_error and body is not None and "error" not in body and body.get("id"):
            return str(body["id"])
        if sent.is_success and (body is None or "error" not in body):
            return Outcome.retry(f"Instagram answered a container request with no id: "
                                 f"{snippet(sent)!r}", http_status=sent.status_code)
        outcome, recreate = classify_instagram_error(sent, irreversible=False)
        return _with(outcome, RESET) if recreate else outcome

    async def status(self, container: _Container, container_id: str) -> _Status | Outcome:
        sent = await self.call("GET", f"{self.root}/{container_id}",
                               params={"fields": "status_code,status"})
        if isinstance(sent, Outcome):
            return sent
        body = json_body(sent)
        if not sent.is_error and body is not None and isinstance(body.get("status_code"), str):
            return _Status(body["status_code"], str(body.get("status") or ""))
        if container_missing(sent):
            # Code 100/33 may be a passing or a permission answer, not only "gone" (see
            # MISSING_OBJECT): read again later, the post's attempts bound it. A container
            # never sent to media_publish can simply be replaced.
            if container.tried:
                return Outcome.retry(f"container {container_id} could not be read; it will be "
                                     f"read again: {snippet(sent)!r}",
                                     http_status=sent.status_code)
            return _with(Outcome.retry(f"container {container_id} could not be read; it will "
                                       "be prepared again"), RESET)
        if sent.is_success:
            return Outcome.retry(f"Instagram answered a status check with no status_code: "
                                 f"{snippet(sent)!r}", http_status=sent.status_code)
        return classify_instagram_error(sent, irreversible=False)[0]


class InstagramAdapter:
    platform = "instagram"

    def __init__(self, *, image_checks: Sequence[float] = IMAGE_CHECKS,
                 video_checks: Sequence[float] = VIDEO_CHECKS) -> None:
        self._image_checks = tuple(image_checks)
        self._video_checks = tuple(video_checks)
        self._quotas: dict[str, _QuotaReading] = {}   # IG user id -> last reading

    def validate(self, post: ClaimedPost) -> str | None:
        return post_problem(post)

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        assert post.account is not None
        api = _Graph(context, post.account)
        fingerprint = _fingerprint(post)
        saved = post.publish_state
        earlier = await self._earlier_live(api, post)
        if earlier is not None:
            return earlier
        container_id, children = saved.get("container_id"), saved.get("children")
        created_at = str(saved.get("created_at") or _now())
        same = saved.get("fingerprint") == fingerprint
        if isinstance(container_id, str) and container_id:
            box = _Container(container_id, created_at, fingerprint,
                             tried=bool(saved.get("publish_tried")))
            status = await api.status(box, container_id)
            published = isinstance(status, _Status) and status.code == "PUBLISHED"
            if same or published or (box.tried and isinstance(status, Outcome)):
                return await self._settle(api, post, box, (), status)
            # Edited since, and the old container is not live: prepare the new content.
        elif isinstance(children, list) and children and same:
            box = _Container(None, created_at, fingerprint, tuple(map(str, children)))
            return await self._carousel(api, post, box, self._video_checks)
        return await self._fresh(api, post, fingerprint)

    async def _fresh(self, api: _Graph, post: ClaimedPost, fingerprint: str) -> Outcome:
        full = await self._quota_full(api)
        if full is not None:
            return _with(full, RESET)
        videos = [post.post_type == "reel" or media_kind(url) == "video"
                  for url in post.media_urls]
        checks = self._video_checks if any(videos) else self._image_checks
        if post.post_type == "carousel":
            ids = []
            for url, video in zip(post.media_urls, videos, strict=True):
                form = ({"media_type": "VIDEO", "video_url": url} if video
                        else {"image_url": url})
                created = await api.create({**form, "is_carousel_item": "true"})
                if isinstance(created, Outcome):
                    return _with(created, RESET)
                ids.append(created)
            box = _Container(None, _now(), fingerprint, tuple(ids))
            return await self._carousel(api, post, box, checks)
        created = await api.create(self._container_form(post, videos[0]))
        if isinstance(created, Outcome):
            return _with(created, RESET)
        return await self._settle(api, post, _Container(created, _now(), fingerprint), checks)

    def _container_form(self, post: ClaimedPost, video: bool) -> dict[str, str]:
        url, options = post.media_urls[0], post.options
        if post.post_type == "story":
            return {"media_type": "STORIES", ("video_url" if video else "image_url"): url}
        if post.post_type == "reel":
            form = {"media_type": "REELS", "video_url": url, "caption": post.content or ""}
            if "share_to_feed" in options:
                form["share_to_feed"] = "true" if options["share_to_feed"] else "false"
            if "thumb_offset" in options:
                form["thumb_offset"] = str(options["thumb_offset"])
            return form
        form = {"image_url": url, "caption": post.content or ""}
        if options.get("alt_text"):
            form["alt_text"] = str(options["alt_text"])
        return form

    async def _quota_full(self, api: _Graph) -> Outcome | None:
        """DEFER when the 24 h publishing quota is used up; a failed read is no verdict."""
        known = self._quotas.get(api.user)
        if known is not None and known.has_room():
            known.usage += 1
            return None
        body = await api.read(f"{api.user}/content_publishing_limit", "quota_usage,config")
        data = body.get("data") if body else None
        entry = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        config = entry.get("config")
        usage = entry.get("quota_usage")
        total = config.get("quota_total") if isinstance(config, dict) else None
        if isinstance(usage, int | float) and isinstance(total, int | float):
            self._quotas[api.user] = _QuotaReading(time.monotonic(), int(usage) + 1, int(total))
        if isinstance(usage, int | float) and isinstance(total, int | float) and usage >= total:
            return Outcome.defer(f"the account used its Instagram publishing quota ({usage} of "
                                 f"{total} posts in 24 h)", PUBLISH_LIMIT_SECONDS,
                                 pause_account=True,
                                 quota_usage=usage, quota_total=total)
        return None

    async def _poll(self, api: _Graph, box: _Container, container_id: str,
                    checks: Sequence[float]) -> _Status | Outcome:
        delays = list(checks) or [0.0]
        while True:
            delay = delays.pop(0)
            if delay:
                await asyncio.sleep(delay)
            status = await api.status(box, container_id)
            if not delays or isinstance(status, Outcome) or status.code != "IN_PROGRESS":
                return status

    def _not_ready(self, status: _Status | Outcome, box: _Container) -> Outcome | None:
        """The outcome for anything but FINISHED (None) and PUBLISHED (handled by caller)."""
        if isinstance(status, Outcome):
            return _carry(status, box.state())   # unless it said otherwise, the container is good
        age = _age(box.created_at)
        if status.code == "IN_PROGRESS":
            if age > STUCK:
                return _with(Outcome.retry(f"Instagram is still processing the media after "
                                           f"{age.total_seconds() / 60:.0f} minutes; it will be "
                                           "prepared again"), RESET)
            after = PENDING_SECONDS[0] if age < YOUNG else PENDING_SECONDS[1]
            return Outcome.pending("Instagram is still processing the media", after,
                                   box.state())
        if status.code == "EXPIRED":
            return _with(Outcome.retry("the prepared media expired (not published within 24 h);"
                                       " it will be prepared again"), RESET)
        if status.code == "ERROR":
            return _with(container_error(status.text), RESET)
        if status.code == "FINISHED":
            return None
        # A status this code doesn't know: keep the container (it may be live), look again.
        shown = redact.clip(status.code, 40)
        return _with(Outcome.retry(f"unexpected container status {shown!r}"),
                     box.state())

    async def _carousel(self, api: _Graph, post: ClaimedPost, box: _Container,
                        checks: Sequence[float]) -> Outcome:
        """Children first (a video child may need to come back later), then the parent."""
        for child in box.children:
            waiting = self._not_ready(await self._poll(api, box, child, checks), box)
            if waiting is not None:
                return waiting
        created = await api.create({"media_type": "CAROUSEL", "children": ",".join(box.children),
                                    "caption": post.content or ""})
        if isinstance(created, Outcome):
            return _carry(created, box.state())
        parent = _Container(created, _now(), box.fingerprint)
        return await self._settle(api, post, parent, self._image_checks)

    async def _settle(self, api: _Graph, post: ClaimedPost, box: _Container,
                      checks: Sequence[float], status: _Status | Outcome | None = None) -> Outcome:
        assert box.id is not None
        if status is None:
            status = await self._poll(api, box, box.id, checks)
        if isinstance(status, _Status) and status.code == "PUBLISHED":
            return await self._already_published(api, post, box)
        return self._not_ready(status, box) or await self._send(api, post, box)

    async def _send(self, api: _Graph, post: ClaimedPost, box: _Container) -> Outcome:
        """The one irreversible call: media_publish on a FINISHED container."""
        assert box.id is not None
        # The container goes onto the row with the stamp: if this worker dies during the
        # call, the review check reads it (PUBLISHED: live; FINISHED: never published).
        if not await api.context.begin_sending(replace(box, tried=True).state()):
            return Outcome(kind=OutcomeKind.LEASE_LOST, reason="claim lost before sending",
                           state=box.state())
        box = replace(box, tried=True)
        sent = await api.call("POST", f"{api.user}/media_publish", irreversible=True,
                              data={"creation_id": box.id})
        if isinstance(sent, Outcome):
            return _with(sent, box.state())
        body = json_body(sent)
        if sent.is_error or body is None or "error" in body or not body.get("id"):
            if sent.is_success and (body is None or "error" not in body):
                return _with(Outcome.unknown(f"Instagram accepted media_publish but returned "
                                             f"no media id: {snippet(sent)!r}",
                                             http_status=sent.status_code), box.state())
            outcome, recreate = classify_instagram_error(sent, irreversible=True)
            if not recreate:
                return _with(outcome, box.state())
            # "Make a new container", says Instagram; but the error does not prove this one
            # was not published, so it is kept and read first (_earlier_live), a while later.
            if outcome.kind is OutcomeKind.RETRY:
                outcome = replace(outcome, retry_after=max(outcome.retry_after or 0.0,
                                                           EARLIER_CHECK_SECONDS))
            return _with(outcome, _retired(post, box))
        media_id = str(body["id"])
        link = await api.read(f"{api.root}/{media_id}", "permalink")
        url = link.get("permalink") if link else None
        detail: dict[str, Any] = {"container_id": box.id}
        if not isinstance(url, str):
            url, detail["note"] = None, "published; its permalink could not be read"
        return Outcome(kind=OutcomeKind.PUBLISHED, platform_post_id=media_id, url=url,
                       detail=detail, state={**box.state(), "media_id": media_id})

    async def _earlier_live(self, api: _Graph, post: ClaimedPost) -> Outcome | None:
        """Reads the containers kept in previous_containers (media_publish answered "make a
        new container" for them): one PUBLISHED means the post is live. None when none is
        (or there are none); while one cannot be told, nothing new is made (attempts cap it)."""
        for container_id, created_at in _previous(post.publish_state):
            box = _Container(container_id, created_at, _fingerprint(post), tried=True)
            status = await api.status(box, container_id)
            if isinstance(status, Outcome):
                return status
            if status.code == "PUBLISHED":
                return await self._already_published(api, post, box)
            if status.code not in NOT_LIVE_STATUSES:
                shown = redact.clip(status.code, 40)
                return Outcome.retry(f"an earlier container {container_id} is {shown!r}: it "
                                     "will be read again before a new one is made")
        return None

    async def _already_published(self, api: _Graph, post: ClaimedPost,
                                 box: _Container) -> Outcome:
        """A PUBLISHED container is live: find its media by caption, never publish again."""
        assert box.id is not None
        caption, found = (post.content or "").strip(), None
        if caption:
            body = await api.read(f"{api.user}/media", "id,caption,timestamp,permalink",
                                  limit=25)
            data = body.get("data") if body else None
            made = _time(box.created_at)
            since = made - timedelta(minutes=5) if made else None
            found = next((m for m in (data if isinstance(data, list) else [])
                          if isinstance(m, dict) and m.get("id")
                          and str(m.get("caption") or "").strip() == caption
                          and _not_before(m.get("timestamp"), since)), None)
        note = "the container was already published (an earlier answer was lost); "
        state = {**box.state(), "publish_tried": True}
        if found is None:
            return Outcome(kind=OutcomeKind.PUBLISHED, platform_post_id=box.id, url=None,
                           state=state, detail={"container_id": box.id, "note": note + (
                               "its media was not found among the account's recent posts, "
                               "so the container id stands in for the media id")})
        url = found.get("permalink")
        return Outcome(kind=OutcomeKind.PUBLISHED, platform_post_id=str(found["id"]),
                       url=url if isinstance(url, str) else None,
                       state={**state, "media_id": str(found["id"])},
                       detail={"container_id": box.id, "note": note + "found among recent posts"})

    async def reconcile(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        """The container is the evidence: PUBLISHED is live, FINISHED was never published
        (publishing it now is safe), ERROR or EXPIRED never went out."""
        container_id = post.publish_state.get("container_id")
        if not isinstance(container_id, str) or not container_id:
            return Outcome.unknown("no Instagram container was recorded for this post: check "
                                   "the account before publishing it again")
        assert post.account is not None
        api = _Graph(context, post.account)
        earlier = await self._earlier_live(api, post)
        if earlier is not None:
            return earlier if earlier.kind is OutcomeKind.PUBLISHED else Outcome.unknown(
                f"could not check an earlier container: {earlier.reason}")
        box = _Container(container_id, "", "", tried=True)
        status = await api.status(box, container_id)
        if isinstance(status, Outcome):
            return Outcome.unknown(f"could not read container {container_id}: {status.reason}")
        if status.code in ("PUBLISHED", "FINISHED"):
            return await self.publish(post, context)  # finds it live, or publishes it once
        if status.code in ("ERROR", "EXPIRED"):
            return not_live(f"container {container_id} is {status.code}: it never went out")
        return Outcome.unknown(f"container {container_id} is {status.code}")

    async def check_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints,
                          account: Account, access_token: str) -> Outcome | None:
        """Whether the account's own host still takes its token (GET /me?fields=id): the
        Page token on graph.facebook.com, the Instagram User token on graph.instagram.com."""
        return await check_meta_token(
            client, f"{graph_host(endpoints, account)}/{endpoints.facebook_api_version}",
            access_token)

    def refreshes(self, account: Account) -> bool:
        """Only Instagram Login tokens are refreshed: GET graph.instagram.com/
        refresh_access_token takes a long-lived Instagram User token (60 days, refreshable
        once 24 h old) and refuses any other with code 190 (developers.facebook.com/docs/
        instagram-platform/reference/refresh_access_token). A Facebook Login account holds a
        Page token, which does not expire when made from a long-lived user token
        (developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived):
        nothing to refresh; if it is revoked, publishing answers 190 and the user reconnects."""
        return account.login_type == "instagram"

    async def refresh_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints, *,
                            access_token: str, refresh_token: str | None,
                            oauth: OAuthClient | None) -> TokenGrant | Outcome:
        """A new 60-day Instagram Login token (no refresh token: the access token is it).
        TokenManager calls it only for accounts that `refreshes`."""
        return await refresh_instagram_token(client, endpoints, access_token)


def _not_before(timestamp: Any, since: datetime | None) -> bool:
    moment = _time(timestamp)
    return since is None or moment is None or moment >= since
