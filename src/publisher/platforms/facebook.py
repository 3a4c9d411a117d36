"""Facebook Pages: text, link, photo and multi-photo posts through the Graph API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from publisher.models import ClaimedPost, Outcome, OutcomeKind
from publisher.platforms.base import PublishContext
from publisher.platforms.http import json_body, send, snippet
from publisher.platforms.meta_errors import classify_meta_error

MAX_MESSAGE_CHARS = 63_206
MAX_PHOTOS = 10
POST_TYPES = ("text", "link", "photo", "photos", "video")
VIDEO_EXTENSIONS = (".mp4", ".mov")


class FacebookAdapter:
    platform = "facebook"

    def validate(self, post: ClaimedPost) -> str | None:
        if post.post_type not in POST_TYPES:
            return (f"facebook does not support post type {post.post_type!r} here; "
                    f"use one of {', '.join(POST_TYPES)}")
        text = post.content or ""
        if len(text) > MAX_MESSAGE_CHARS:
            return f"facebook text is {len(text)} characters; the limit is {MAX_MESSAGE_CHARS}"
        if post.post_type == "text" and not text.strip():
            return "a facebook text post needs text"
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
        return self._published(sent, video_page=page if post.post_type == "video" else None)

    async def reconcile(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        """Looks for the post among the Page's posts since it was sent, by its text. Not
        finding it proves nothing (the feed may lag, the post may be hidden): UNKNOWN."""
        assert post.account is not None
        page = post.account.external_id
        base = f"{context.endpoints.facebook}/{context.endpoints.facebook_api_version}/{page}"
        sent = post.sending_started_at or post.scheduled_at
        params = {"fields": "id,message,created_time", "limit": "100"}
        if sent is not None:
            params["since"] = str(int(sent.timestamp()) - 300)
        answer = await send(context.client, "GET", f"{base}/feed", irreversible=False,
                            params=params,
                            headers={"Authorization": f"Bearer {context.access_token}"})
        if isinstance(answer, Outcome):
            return Outcome.unknown(f"could not list the page's posts: {answer.reason}")
        body = json_body(answer)
        if answer.is_error or body is None or not isinstance(body.get("data"), list):
            return Outcome.unknown(f"could not list the page's posts (HTTP {answer.status_code})")
        for item in body["data"]:
            if isinstance(item, dict) and item.get("message") == (post.content or ""):
                post_id = str(item.get("id"))
                return Outcome.published(post_id, f"https://www.facebook.com/{post_id}")
        return Outcome.unknown("not found among the page's posts since it was sent; it may "
                               "still appear: check the page before publishing it again")

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
