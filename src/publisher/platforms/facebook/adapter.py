"""Facebook Pages: text, link, photo and multi-photo posts through the Graph API."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from publisher import redact
from publisher.models import Account, ClaimedPost, Outcome, OutcomeKind
from publisher.platforms import post_rules as rules
from publisher.platforms.base import PublishContext
from publisher.platforms.http import json_body, send, snippet
from publisher.platforms.meta.errors import check_meta_token, classify_meta_error
from publisher.platforms.reconcile_signals import absent, not_live
from publisher.settings import PlatformEndpoints

MAX_MESSAGE_CHARS = 63_206
MAX_PHOTOS = 10
POST_TYPES = ("text", "link", "photo", "photos", "video")
MEDIA_LESS = ("text", "link")   # a link post shows the link's own preview
OPTIONS: dict[str, rules.Option] = {}  # none read: any option is refused, never ignored
VIDEO_EXTENSIONS = (".mp4", ".mov")
# A video's id comes back before Facebook has processed it, and processing can still fail.
# Its status (developers.facebook.com/docs/graph-api/reference/video-status) is read once
# right away, then by later runs (PENDING: no slot held while Facebook works), at most this
# long: a video still processing after that goes to review instead of waiting forever.
VIDEO_LOOK_AGAIN_SECONDS = 30.0
VIDEO_PROCESSING_LIMIT = timedelta(hours=1)
VIDEO_FAILED = ("error", "expired")   # video_status values that never go live
# Reconcile: the feed since "sending" (less this slack), one page of at most FEED_LIMIT
# posts. Only a post the feed shows by its own text can be found absent there: a video is
# looked for by its id; mention tags (@[id:Name]) are shown as names.
FEED_LIMIT = 100
FEED_SLACK_SECONDS = 300
FEED_MATCHED = ("text", "link", "photo", "photos")
MENTION = "@["


class FacebookAdapter:
    platform = "facebook"

    def validate(self, post: ClaimedPost) -> str | None:
        problem = (rules.post_type_problem("facebook", post.post_type, POST_TYPES)
                   or rules.options_problem("facebook", post, OPTIONS)
                   or rules.media_not_taken("facebook", post, MEDIA_LESS))
        if problem is not None:
            return problem
        text = post.content or ""
        if len(text) > MAX_MESSAGE_CHARS:
            return f"facebook text is {len(text)} characters; the limit is {MAX_MESSAGE_CHARS}"
        if post.post_type == "text" and not rules.visible(text):
            return ("a facebook text post needs text (spaces and invisible characters such as "
                    "zero-width spaces do not count)")
        if post.post_type == "link" and not (post.link_url or "").startswith(("http://",
                                                                              "https://")):
            return "a facebook link post needs an http(s) link_url"
        if post.post_type == "photo" and len(post.media_urls) != 1:
            return f"a facebook photo post needs exactly 1 image URL, got {len(post.media_urls)}"
        if post.post_type == "video":
            if len(post.media_urls) != 1:
                return (f"a facebook video post needs exactly 1 video URL, "
                        f"got {len(post.media_urls)}")
            path = urlsplit(post.media_urls[0]).path.lower()
            if not path.endswith(VIDEO_EXTENSIONS):
                return "a facebook video must be an .mp4 or .mov file"
        if post.post_type == "photos" and not 2 <= len(post.media_urls) <= MAX_PHOTOS:
            return (f"a facebook multi-photo post needs 2-{MAX_PHOTOS} image URLs, "
                    f"got {len(post.media_urls)}")
        return None

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        assert post.account is not None
        page = post.account.external_id
        base = f"{context.endpoints.facebook}/{context.endpoints.facebook_api_version}/{page}"
        headers = {"Authorization": f"Bearer {context.access_token}"}
        message = post.content or ""
        sent_video = post.publish_state.get("video_id") if post.post_type == "video" else None
        if isinstance(sent_video, str) and sent_video:
            # Sent by an earlier attempt: only its processing is left to look at, never resent.
            return await self._video_processed(context, page, sent_video,
                                               post.publish_state.get("video_sent_at"))

        if post.post_type == "video":
            # Videos go to the graph-video host; Facebook fetches file_url itself.
            base = (f"{context.endpoints.facebook_video}/"
                    f"{context.endpoints.facebook_api_version}/{page}")
            path, form = "videos", {"file_url": post.media_urls[0], "description": message}
            if post.title:
                form["title"] = post.title
        elif post.post_type == "photo":
            path, form = "photos", {"url": post.media_urls[0], "caption": message,
                                    "published": "true"}
        else:
            path, form = "feed", {"message": message}
            if post.post_type == "link":
                form["link"] = post.link_url or ""
            if post.post_type == "photos":
                media = await self._upload_unpublished(context, base, headers, post.media_urls)
                if isinstance(media, Outcome):
                    return media
                form["attached_media"] = json.dumps([{"media_fbid": m} for m in media])

        if not await context.begin_sending():
            return Outcome(kind=OutcomeKind.LEASE_LOST, reason="claim lost before sending")
        sent = await send(context.client, "POST", f"{base}/{path}", irreversible=True,
                          data=form, headers=headers)
        if isinstance(sent, Outcome):
            return sent
        if post.post_type != "video":
            return self._published(sent)
        outcome = self._published(sent, video_page=page)
        if outcome.kind is not OutcomeKind.PUBLISHED or outcome.platform_post_id is None:
            return outcome
        return await self._video_processed(context, page, outcome.platform_post_id, None)

    async def check_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints,
                          account: Account, access_token: str) -> Outcome | None:
        """Whether the Graph API still takes the Page token (GET /me?fields=id)."""
        return await check_meta_token(
            client, f"{endpoints.facebook}/{endpoints.facebook_api_version}", access_token)

    async def reconcile(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        """Looks for the post among the Page's posts since it was sent, by its text. Found:
        published. Not found in a listing read whole over that window: absent (evidence,
        not proof: the feed may lag or hold a post back a while; reconcile.settle_review
        decides, under RECONCILE_REQUEUE_FACEBOOK). Anything less: UNKNOWN."""
        assert post.account is not None
        page = post.account.external_id
        video = post.publish_state.get("video_id") if post.post_type == "video" else None
        if isinstance(video, str) and video:
            return await self._reconcile_video(context, page, post, video)
        base = f"{context.endpoints.facebook}/{context.endpoints.facebook_api_version}/{page}"
        sent = post.sending_started_at or post.scheduled_at
        params = {"fields": "id,message,created_time", "limit": str(FEED_LIMIT)}
        if sent is not None:
            params["since"] = str(int(sent.timestamp()) - FEED_SLACK_SECONDS)
        answer = await send(context.client, "GET", f"{base}/feed", irreversible=False,
                            params=params,
                            headers={"Authorization": f"Bearer {context.access_token}"})
        if isinstance(answer, Outcome):
            return Outcome.unknown(f"could not list the page's posts: {answer.reason}")
        body = json_body(answer)
        if answer.is_error or body is None or not isinstance(body.get("data"), list):
            return Outcome.unknown(f"could not list the page's posts (HTTP {answer.status_code})")
        items = [item for item in body["data"] if isinstance(item, dict)]
        for item in items:
            if item.get("message") == (post.content or ""):
                post_id = str(item.get("id"))
                return Outcome.published(post_id, f"https://www.facebook.com/{post_id}")
        unsure = _absence_unprovable(post, body, items)
        if unsure is not None:
            return Outcome.unknown(f"not found among the page's posts since it was sent, but "
                                   f"{unsure}: it may still appear; check the page before "
                                   "publishing it again")
        return absent("not found among the page's posts since it was sent (the whole "
                      "listing was read); it may still appear: check the page before "
                      "publishing it again", listed=len(items))

    async def _reconcile_video(self, context: PublishContext, page: str, post: ClaimedPost,
                               video_id: str) -> Outcome:
        """A sent video is its own evidence: ready is live, error never went out."""
        seen = await self._video_processed(context, page, video_id,
                                           post.publish_state.get("video_sent_at"))
        if seen.kind is OutcomeKind.PUBLISHED:
            return seen
        if seen.kind is OutcomeKind.RETRY and seen.state.get("video_id") is None:
            return replace(not_live(seen.reason or "the video failed"), state=seen.state)
        return Outcome.unknown(f"video {video_id}: {seen.reason}")

    async def _video_processed(self, context: PublishContext, page: str, video_id: str,
                               sent_at: Any) -> Outcome:
        """Reads the sent video's status once (GET /{video-id}?fields=status): ready is
        published, error or expired never went out (upload it again), anything else is
        looked at again later, until VIDEO_PROCESSING_LIMIT."""
        since = _moment(sent_at)
        state = {"video_id": video_id, "video_sent_at": (since or datetime.now(UTC)).isoformat()}
        url = f"{context.endpoints.facebook}/{context.endpoints.facebook_api_version}/{video_id}"
        answer = await send(context.client, "GET", url, irreversible=False,
                            params={"fields": "status"},
                            headers={"Authorization": f"Bearer {context.access_token}"})
        status = _video_status(answer)
        if isinstance(status, Outcome) and status.kind is OutcomeKind.DEFER:
            return replace(status, state=state)       # throttled: wait, no attempt used
        if status == "ready":
            return Outcome(kind=OutcomeKind.PUBLISHED, platform_post_id=video_id,
                           url=f"https://www.facebook.com/{page}/videos/{video_id}", state=state)
        if isinstance(status, tuple):
            # Not live, and a new upload may well work: a later run tries (attempts cap it).
            return Outcome(kind=OutcomeKind.RETRY, retry_after=VIDEO_LOOK_AGAIN_SECONDS,
                           state={"video_id": None, "video_sent_at": None},
                           reason=f"Facebook could not process the video ({status[0]}): "
                                  f"{status[1]}; it will be uploaded again",
                           detail={"video_id": video_id, "video_status": status[0]})
        shown = status.reason if isinstance(status, Outcome) else f"it is {status!r}"
        age = datetime.now(UTC) - (since or datetime.now(UTC))
        if age > VIDEO_PROCESSING_LIMIT:
            return Outcome(kind=OutcomeKind.UNKNOWN, state=state, detail={"video_id": video_id},
                           reason=f"the video was sent {age.total_seconds() / 60:.0f} minutes "
                                  f"ago and is still not ready ({shown}): it may yet appear; "
                                  "check the page before publishing it again")
        return Outcome.pending(f"Facebook is processing the video ({shown})",
                               VIDEO_LOOK_AGAIN_SECONDS, state)

    async def _upload_unpublished(self, context: PublishContext, base: str,
                                  headers: dict[str, str],
                                  urls: tuple[str, ...]) -> list[str] | Outcome:
        """Unpublished photos are invisible until attached: safe to repeat."""
        ids = []
        for url in urls:
            sent = await send(context.client, "POST", f"{base}/photos", irreversible=False,
                              data={"url": url, "published": "false"}, headers=headers)
            if isinstance(sent, Outcome):
                return sent
            body = json_body(sent)
            if sent.is_error or body is None or "error" in body or "id" not in body:
                return _error_or_nonsense(sent, irreversible=False)
            ids.append(str(body["id"]))
        return ids

    def _published(self, response: httpx.Response, *, video_page: str | None = None) -> Outcome:
        body = json_body(response)
        if response.is_error or body is None or "error" in body:
            return _error_or_nonsense(response, irreversible=True)
        post_id = body.get("post_id") or body.get("id")
        if not isinstance(post_id, str | int):
            return Outcome.unknown(f"the platform accepted the post but returned no id: "
                                   f"{snippet(response)!r}", http_status=response.status_code)
        if video_page is not None:
            return Outcome.published(str(post_id),
                                     f"https://www.facebook.com/{video_page}/videos/{post_id}")
        return Outcome.published(str(post_id), f"https://www.facebook.com/{post_id}")


def _absence_unprovable(post: ClaimedPost, body: dict[str, Any],
                        items: list[dict[str, Any]]) -> str | None:
    """Why a feed read without the post cannot count as evidence of its absence (None: it
    can): the read must cover everything since sending, and the post must be one the
    feed shows with the text we sent."""
    if post.sending_started_at is None:
        return "no sending time was recorded to bound the search"
    paging = body.get("paging")
    if isinstance(paging, dict) and paging.get("next"):
        return f"the page has more than {FEED_LIMIT} posts since then"
    if post.post_type not in FEED_MATCHED:
        return f"a {post.post_type} post may not show in the feed by its text"
    text = post.content or ""
    if not text.strip():
        return "the post has no text to look for"
    if MENTION in text:
        return "Facebook shows mention tags as names, so its text cannot be compared"
    loose = _loose(text)
    if any(_loose(str(item.get("message") or "")) == loose for item in items):
        return "a post with nearly the same text is there"
    return None


def _loose(text: str) -> str:
    """Text compared without case or spacing (Facebook may trim what it shows)."""
    return " ".join(text.split()).casefold()


def _error_or_nonsense(response: httpx.Response, *, irreversible: bool) -> Outcome:
    body = json_body(response)
    if response.is_success and (body is None or "error" not in body):
        what = "a body that is not JSON" if body is None else "a body without an id"
        reason = (f"the platform answered HTTP {response.status_code} with {what}: "
                  f"{snippet(response)!r}")
        detail: dict[str, Any] = {"http_status": response.status_code}
        # A 2xx to the publishing call means it may well be live: never resend blindly.
        return Outcome.unknown(reason, **detail) if irreversible else Outcome.retry(reason,
                                                                                    **detail)
    return classify_meta_error(response, irreversible=irreversible)


def _video_status(answer: httpx.Response | Outcome) -> str | tuple[str, str] | Outcome:
    """video_status as read ("ready", "processing", ...), (status, why) for one that never
    goes live, or the Outcome of a failed read."""
    if isinstance(answer, Outcome):
        return answer
    body = json_body(answer)
    status = body.get("status") if body is not None and "error" not in body else None
    video_status = status.get("video_status") if isinstance(status, dict) else None
    if answer.is_error or not isinstance(video_status, str):
        if answer.is_success:
            return Outcome.retry(f"the video status answer has no status.video_status: "
                                 f"{snippet(answer)!r}")
        return classify_meta_error(answer, irreversible=False)
    if video_status not in VIDEO_FAILED:
        return redact.clip(video_status, 40)
    assert isinstance(status, dict)
    return video_status, _processing_error(status)


def _processing_error(status: dict[str, Any]) -> str:
    """The first error message of the phase that failed, if Facebook gave one."""
    for phase in ("processing_phase", "uploading_phase", "publishing_phase"):
        detail = status.get(phase)
        errors = detail.get("errors") if isinstance(detail, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return redact.clip(str(errors[0].get("message") or "no message"), 200)
    return "no reason given"


def _moment(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment
