"""LinkedIn (Posts API): text, link, image and multi-image posts by members and organizations.

Preparation is invisible and safe to repeat: each image is registered (initializeUpload),
streamed from its URL to LinkedIn's upload URL, and checked until AVAILABLE. Then one
POST /rest/posts makes the post public; LinkedIn answers 201 with the post's URN in the
x-restli-id header. Images still processing after a few quick checks make the post PENDING,
with their URNs kept in publish_state so the next attempt reuses them instead of uploading
again.

An error answer to POST /rest/posts does not prove nothing was made: a 5xx (with LinkedIn's
body or not) leaves the outcome UNKNOWN, and reconcile() looks for the post among the
author's recent posts. A 422 "Content is a duplicate of urn:li:share:N" names the live post:
it is recorded as published.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from publisher import redact
from publisher.models import Account, ClaimedPost, Outcome, OutcomeKind
from publisher.platforms import post_rules as rules
from publisher.platforms.base import PublishContext, TokenGrant
from publisher.platforms.http import json_body, send, snippet
from publisher.platforms.linkedin.errors import classify_linkedin_error, classify_token_error
from publisher.platforms.reconcile_signals import absent
from publisher.settings import OAuthClient, PlatformEndpoints

MAX_COMMENTARY_CHARS = 3000
MIN_IMAGES, MAX_IMAGES = 2, 20
POST_TYPES = ("text", "link", "image", "images")
MEDIA_LESS = ("text",)          # a link post takes one image: its thumbnail
# What the adapter reads from platform_options, and where (any other option is refused).
OPTIONS = {"alt_texts": rules.text_list("image", "images",
                                        expects="a list of strings, one per image"),
           "link_title": rules.text("link"),
           "link_description": rules.text("link")}
IMAGE_CHECKS = 3                # quick status checks after uploading, IMAGE_CHECK_SECONDS apart
IMAGE_CHECK_SECONDS = 1.0
PENDING_SECONDS = 30.0          # images still processing: look again after this
MAX_PENDING_ROUNDS = 10         # then start over with fresh uploads (RETRY)
REVIEW_COUNT = 50               # reconcile: the author's newest posts looked through
REVIEW_SLACK_SECONDS = 300.0    # a post created this long before "sending" is not ours
STATE_IMAGES = "linkedin_images"        # publish_state: {media url: image URN}
STATE_ROUNDS = "linkedin_image_waits"
RESTLI_HEADERS = {"X-Restli-Protocol-Version": "2.0.0", "Content-Type": "application/json"}

_AUTHOR = re.compile(r"urn:li:(?:person:[A-Za-z0-9_-]+|organization:\d+)")
# Commentary is LinkedIn "little text": these characters are markup and must be escaped, or
# the text is cut at the first one ("(" opens a mention). Mentions written as
# @[Name](urn:li:organization:123) are kept as markup.
_RESERVED = re.compile(r"[\\|{}@\[\]()<>#*_~]")
_MENTION = re.compile(r"@\[[^\]\n]+\]\(urn:li:(?:person|organization):[\w-]+\)")
_AVAILABLE, _PROCESSING, _BROKEN, _GONE, _UNCHECKABLE = (
    "AVAILABLE", "PROCESSING", "PROCESSING_FAILED", "GONE", "UNCHECKABLE")


def little_text(text: str) -> str:
    """The commentary with little-text markup characters escaped, mentions left intact."""
    parts, last = [], 0
    for mention in _MENTION.finditer(text):
        parts.append(_escape(text[last:mention.start()]))
        parts.append(mention.group(0))
        last = mention.end()
    parts.append(_escape(text[last:]))
    return "".join(parts)


def _escape(text: str) -> str:
    return _RESERVED.sub(lambda m: "\\" + m.group(0), text)


def post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"


@dataclass(frozen=True, slots=True)
class _Api:
    """One post's view of the REST API: base URL, headers, author, and its error table."""

    context: PublishContext
    author: str
    clock: Callable[[], datetime]

    @property
    def base(self) -> str:
        return f"{self.context.endpoints.linkedin}/rest"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.context.access_token}",
                "LinkedIn-Version": self.context.endpoints.linkedin_version, **RESTLI_HEADERS}

    async def call(self, method: str, path: str, *, irreversible: bool = False,
                   **kwargs: Any) -> httpx.Response | Outcome:
        return await send(self.context.client, method, f"{self.base}{path}",
                          irreversible=irreversible, headers=self.headers, **kwargs)

    def error(self, response: httpx.Response, *, irreversible: bool = False) -> Outcome:
        return classify_linkedin_error(response, irreversible=irreversible,
                                       version=self.context.endpoints.linkedin_version,
                                       author=self.author, now=self.clock())


class LinkedInAdapter:
    platform = "linkedin"

    def __init__(self, *, image_checks: int = IMAGE_CHECKS,
                 image_check_seconds: float = IMAGE_CHECK_SECONDS,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._checks = image_checks
        self._check_seconds = image_check_seconds
        self._clock = clock or (lambda: datetime.now(UTC))

    def validate(self, post: ClaimedPost) -> str | None:
        if post.account is None:
            return "the post has no LinkedIn account"
        author = post.account.external_id
        if not _AUTHOR.fullmatch(author):
            return (f"the LinkedIn account id {author!r} is not an author URN: it must be "
                    "urn:li:person:<id> or urn:li:organization:<number>")
        problem = (rules.post_type_problem("linkedin", post.post_type, POST_TYPES)
                   or rules.options_problem("linkedin", post, OPTIONS)
                   or rules.media_not_taken("linkedin", post, MEDIA_LESS))
        if problem is not None:
            return problem
        text, count = post.content or "", len(post.media_urls)
        if len(text) > MAX_COMMENTARY_CHARS:
            return (f"linkedin commentary is {len(text)} characters; the limit is "
                    f"{MAX_COMMENTARY_CHARS}")
        if post.post_type == "text" and not rules.visible(text):
            return ("a linkedin text post needs commentary text (spaces and invisible "
                    "characters such as zero-width spaces do not count)")
        if post.post_type == "link":
            problem = _link_problem(post)
            if problem:
                return problem
        if post.post_type == "image" and count != 1:
            return f"a linkedin image post needs exactly 1 image URL, got {count}"
        if post.post_type == "images" and not MIN_IMAGES <= count <= MAX_IMAGES:
            return (f"a linkedin multi-image post needs {MIN_IMAGES}-{MAX_IMAGES} image URLs, "
                    f"got {count}")
        alt = post.options.get("alt_texts")
        if alt is not None and (not isinstance(alt, list)
                                or not all(isinstance(a, str) for a in alt)):
            return "options.alt_texts must be a list of strings, one per image"
        if isinstance(alt, list) and len(alt) > count:
            return f"options.alt_texts has {len(alt)} entries for {count} image(s)"
        return None

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        assert post.account is not None
        api = _Api(context, post.account.external_id, self._clock)
        urns: dict[str, str] = {}
        if post.media_urls:
            prepared = await self._prepare_images(post, api)
            if isinstance(prepared, Outcome):
                return prepared
            urns = prepared
        body = _post_body(post, api.author, [urns[url] for url in post.media_urls])

        if not await context.begin_sending():
            return Outcome(kind=OutcomeKind.LEASE_LOST, reason="claim lost before sending")
        sent = await api.call("POST", "/posts", irreversible=True, json=body)
        if isinstance(sent, Outcome):
            return sent
        if not sent.is_success:
            return api.error(sent, irreversible=True)
        urn = unquote(sent.headers.get("x-restli-id", "")).strip()
        if not urn.startswith("urn:li:"):
            # Accepted but unnamed: it may well be live, so it is never resent blindly.
            return Outcome.unknown(f"LinkedIn accepted the post (HTTP {sent.status_code}) but "
                                   f"sent no post URN in x-restli-id: {snippet(sent)!r}",
                                   http_status=sent.status_code)
        return Outcome.published(urn, post_url(urn))

    async def reconcile(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        """Looks for the post among the author's newest posts (learn.microsoft.com/linkedin/
        marketing/community-management/shares/posts-api), by its commentary (as sent,
        escaped) and creation time. Not found in a listing that holds every post since
        sending: absent (reconcile.settle_review decides, under RECONCILE_REQUEUE_LINKEDIN);
        not readable (a member token may not read posts: r_member_social is restricted) or
        not all of it: UNKNOWN."""
        assert post.account is not None
        api = _Api(context, post.account.external_id, self._clock)
        commentary = little_text(post.content or "")
        if not commentary:
            return Outcome.unknown("a LinkedIn post without commentary cannot be told apart "
                                   "from the author's other posts: check the page")
        # "Find Posts by Authors": a Rest.li finder, the URN encoded in the query.
        url = (f"{api.base}/posts?q=author&author={quote(api.author, safe='')}"
               f"&count={REVIEW_COUNT}&sortBy=LAST_MODIFIED")
        sent = await send(context.client, "GET", url, irreversible=False,
                          headers={**api.headers, "X-RestLi-Method": "FINDER"})
        if isinstance(sent, Outcome):
            return Outcome.unknown(f"could not list the author's posts: {sent.reason}")
        elements = (json_body(sent) or {}).get("elements")
        if not sent.is_success or not isinstance(elements, list):
            return Outcome.unknown(f"could not list the author's posts (HTTP "
                                   f"{sent.status_code}): {snippet(sent)!r}")
        since = post.sending_started_at or post.scheduled_at
        for element in elements:
            if isinstance(element, dict) and _is_the_post(element, commentary, since):
                urn = str(element.get("id"))
                return Outcome.published(urn, post_url(urn))
        if post.sending_started_at is not None and _covers(elements, post.sending_started_at):
            # The author's posts since sending, all of them, read from LinkedIn's own store.
            return absent("not found among the author's posts since it was sent (all of "
                          "them were listed)", listed=len(elements))
        return Outcome.unknown("not found among the author's newest posts; it may still "
                               "appear: check the page before publishing it again")

    # --- images: preparation, invisible and repeatable ------------------------------------

    async def _prepare_images(self, post: ClaimedPost, api: _Api) -> dict[str, str] | Outcome:
        """Each media URL's image URN, once LinkedIn has them (or we cannot tell)."""
        known = post.publish_state.get(STATE_IMAGES)
        known = known if isinstance(known, dict) else {}
        urns: dict[str, str] = {}
        waiting: list[str] = []
        for url in dict.fromkeys(post.media_urls):
            reused = known.get(url)
            if isinstance(reused, str) and reused:
                status = await self._image_status(api, reused)
                if isinstance(status, Outcome):
                    return status
                if status in (_AVAILABLE, _UNCHECKABLE, _PROCESSING):
                    urns[url] = reused
                    if status == _PROCESSING:
                        waiting.append(url)
                    continue
                # Gone or failed: upload it again.
            uploaded = await self._upload(api, url)
            if isinstance(uploaded, Outcome):
                return uploaded
            urns[url] = uploaded
            waiting.append(url)

        for check in range(self._checks):
            if not waiting:
                break
            if check:
                await asyncio.sleep(self._check_seconds)
            still = []
            for url in waiting:
                status = await self._image_status(api, urns[url])
                if isinstance(status, Outcome):
                    return status
                if status in (_UNCHECKABLE, _GONE):
                    # Cannot tell: member tokens may not read images (403), and an API
                    # without the status endpoint says 404/405. Go ahead, as Postiz does.
                    return urns
                if status == _BROKEN:
                    return Outcome.failed(f"LinkedIn could not process the image {url!r} "
                                          "(PROCESSING_FAILED)", image=urns[url])
                if status != _AVAILABLE:
                    still.append(url)
            waiting = still
        if not waiting:
            return urns

        rounds = int(post.publish_state.get(STATE_ROUNDS) or 0) + 1
        if rounds > MAX_PENDING_ROUNDS:
            return Outcome(kind=OutcomeKind.RETRY, state={STATE_IMAGES: {}, STATE_ROUNDS: 0},
                           reason=f"LinkedIn did not finish processing {len(waiting)} image(s) "
                                  f"after {MAX_PENDING_ROUNDS} checks; uploading them again")
        return Outcome.pending(f"LinkedIn is still processing {len(waiting)} image(s)",
                               PENDING_SECONDS, {STATE_IMAGES: urns, STATE_ROUNDS: rounds})

    async def _upload(self, api: _Api, url: str) -> str | Outcome:
        """Streams one image from its URL into a freshly registered LinkedIn image: its URN.
        The media is opened first, so a bad URL or type costs no LinkedIn call."""
        async with api.context.media().open(url) as media:
            if isinstance(media, Outcome):
                return media
            kind = media.content_type.split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                return Outcome.failed(f"media {url!r} is {kind or 'of no stated type'}, not an "
                                      "image: LinkedIn image posts need image/* "
                                      "(JPEG, PNG or GIF)", content_type=kind)
            registered = await self._initialize_upload(api)
            if isinstance(registered, Outcome):
                return registered
            upload_url, image = registered
            headers = {"Authorization": f"Bearer {api.context.access_token}",
                       "Content-Type": "application/octet-stream"}
            encoded = media.response.headers.get("content-encoding", "identity")
            if media.length is not None and encoded == "identity":
                # A compressed download is decoded as it streams: its length is not ours.
                headers["Content-Length"] = str(media.length)
            put = await send(api.context.client, "PUT", upload_url, irreversible=False,
                             content=media.chunks(), headers=headers)
        if isinstance(put, Outcome):
            return put
        if not put.is_success:
            return api.error(put)
        return image

    async def _initialize_upload(self, api: _Api) -> tuple[str, str] | Outcome:
        """(uploadUrl, image URN) of a new, still invisible image owned by the author."""
        sent = await api.call("POST", "/images?action=initializeUpload",
                              json={"initializeUploadRequest": {"owner": api.author}})
        if isinstance(sent, Outcome):
            return sent
        if not sent.is_success:
            return api.error(sent)
        value = (json_body(sent) or {}).get("value")
        upload_url = value.get("uploadUrl") if isinstance(value, dict) else None
        image = value.get("image") if isinstance(value, dict) else None
        if not (isinstance(upload_url, str) and isinstance(image, str)
                and image.startswith("urn:li:image:")):
            return Outcome.retry(f"LinkedIn's initializeUpload answer has no uploadUrl and image "
                                 f"URN: {snippet(sent)!r}", http_status=sent.status_code)
        if not _trusted_upload_url(upload_url, api.context.endpoints.linkedin):
            # The bearer token goes to this URL: only over https (or to the configured API).
            return Outcome.retry("LinkedIn's upload URL is not https: "
                                 f"{redact.clip(upload_url, 80)!r}")
        return upload_url, image

    async def _image_status(self, api: _Api, urn: str) -> str | Outcome:
        """AVAILABLE, PROCESSING, PROCESSING_FAILED, GONE (404) or UNCHECKABLE (403, 405)."""
        sent = await api.call("GET", f"/images/{quote(urn, safe='')}")
        if isinstance(sent, Outcome):
            return sent
        if sent.status_code in (403, 405):
            return _UNCHECKABLE
        if sent.status_code == 404:
            return _GONE
        if not sent.is_success:
            return api.error(sent)
        status = (json_body(sent) or {}).get("status")
        return status if status in (_AVAILABLE, _BROKEN) else _PROCESSING

    # --- tokens ------------------------------------------------------------------------------

    async def check_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints,
                          account: Account, access_token: str) -> Outcome | None:
        """Whether LinkedIn still takes the token: GET /v2/userinfo (OpenID Connect). A 401
        is a dead token (REAUTH); a 403 is a live one without the openid scope userinfo
        needs (an organization's token), so it counts as taken."""
        sent = await send(client, "GET", f"{endpoints.linkedin}/v2/userinfo",
                          irreversible=False,
                          headers={"Authorization": f"Bearer {access_token}"})
        if isinstance(sent, Outcome):
            return sent
        if sent.is_success or sent.status_code == 403:
            return None
        return classify_linkedin_error(sent, irreversible=False,
                                       version=endpoints.linkedin_version,
                                       author=account.external_id, now=self._clock())

    async def refresh_token(self, client: httpx.AsyncClient, endpoints: PlatformEndpoints, *,
                            access_token: str, refresh_token: str | None,
                            oauth: OAuthClient | None) -> TokenGrant | Outcome:
        """A new access token from the refresh_token grant (approved partner apps only)."""
        if oauth is None:
            return Outcome.reauth("the LinkedIn access token expired and no LinkedIn app is "
                                  "configured to refresh it (LINKEDIN_CLIENT_ID and "
                                  "LINKEDIN_CLIENT_SECRET): the member must reconnect LinkedIn")
        if not refresh_token:
            return Outcome.reauth("the LinkedIn access token expired and there is no refresh "
                                  "token (LinkedIn issues them only to approved partner apps): "
                                  "the member must reconnect LinkedIn")
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": oauth.client_id, "client_secret": oauth.client_secret}
        sent = await send(client, "POST", f"{endpoints.linkedin_oauth}/oauth/v2/accessToken",
                          irreversible=False, data=form, headers={"Accept": "application/json"})
        secrets = (refresh_token, oauth.client_secret, access_token)
        if isinstance(sent, Outcome):
            return redact.mask_outcome(sent, secrets)
        body = json_body(sent) or {}
        token = body.get("access_token")
        if sent.is_success and isinstance(token, str) and token:
            new_refresh = body.get("refresh_token")
            return TokenGrant(access_token=token,
                              refresh_token=new_refresh if isinstance(new_refresh, str)
                              and new_refresh else None,
                              expires_in=_seconds(body.get("expires_in")))
        if sent.is_success:
            return Outcome.retry(f"LinkedIn's token endpoint answered HTTP {sent.status_code} "
                                 "without an access token", http_status=sent.status_code)
        return redact.mask_outcome(classify_token_error(sent), secrets)


def _covers(elements: list[Any], sent: datetime) -> bool:
    """Whether the listing (newest modified first) holds every post created since `sent`:
    it is the author's whole list (shorter than asked for), or its last element was last
    modified before then, so any later post (created, hence modified, after) came before
    it."""
    if len(elements) < REVIEW_COUNT:
        return True
    last = elements[-1] if isinstance(elements[-1], dict) else {}
    modified = last.get("lastModifiedAt")
    return (isinstance(modified, int | float) and not isinstance(modified, bool)
            and modified / 1000 < sent.timestamp() - REVIEW_SLACK_SECONDS)


def _is_the_post(element: dict[str, Any], commentary: str, since: datetime | None) -> bool:
    """Same commentary, a post URN, and not created well before this post was sent."""
    if element.get("commentary") != commentary:
        return False
    if not str(element.get("id") or "").startswith("urn:li:"):
        return False
    created = element.get("createdAt")
    if since is None or not isinstance(created, int | float):
        return True
    return created / 1000 >= since.timestamp() - REVIEW_SLACK_SECONDS


def _link_problem(post: ClaimedPost) -> str | None:
    if not (post.link_url or "").startswith(("http://", "https://")):
        return "a linkedin link post needs an http(s) link_url"
    title = _link_title(post)
    if not isinstance(title, str) or not rules.visible(title):
        return ("a linkedin link post needs a title (options.link_title or the post title; "
                "spaces and invisible characters do not count): LinkedIn does not fetch link "
                "previews itself")
    description = post.options.get("link_description")
    if description is not None and not isinstance(description, str):
        return "options.link_description must be text"
    if len(post.media_urls) > 1:
        return (f"a linkedin link post takes at most 1 image URL (its thumbnail), "
                f"got {len(post.media_urls)}")
    return None


def _link_title(post: ClaimedPost) -> Any:
    return post.options.get("link_title") or post.title


def _post_body(post: ClaimedPost, author: str, images: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "author": author, "commentary": little_text(post.content or ""), "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                         "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False}
    alt = post.options.get("alt_texts")
    alts = [a if isinstance(a, str) else "" for a in alt] if isinstance(alt, list) else []

    def image(index: int, urn: str) -> dict[str, str]:
        text = alts[index] if index < len(alts) else ""
        return {"id": urn, "altText": text} if text else {"id": urn}

    if post.post_type == "link":
        article = {"source": post.link_url or "",
                   "title": str(_link_title(post))}
        if post.options.get("link_description"):
            article["description"] = str(post.options["link_description"])
        if images:
            article["thumbnail"] = images[0]
        body["content"] = {"article": article}
    elif post.post_type == "image":
        body["content"] = {"media": image(0, images[0])}
    elif post.post_type == "images":
        body["content"] = {"multiImage": {"images": [image(n, u) for n, u in enumerate(images)]}}
    return body


def _trusted_upload_url(url: str, api_base: str) -> bool:
    parts, base = urlsplit(url), urlsplit(api_base)
    return parts.scheme == "https" or (parts.scheme, parts.netloc) == (base.scheme, base.netloc)


def _seconds(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
