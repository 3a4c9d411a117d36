"""The adapter interface every platform implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx

from publisher.models import ClaimedPost, Outcome
from publisher.settings import PlatformEndpoints


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishContext:
    """What an adapter gets for one post: the shared client, the decrypted token, and
    `begin_sending`, which it must await right before the call that makes the post public.
    It returns False when the claim was lost: then nothing may be sent."""

    client: httpx.AsyncClient
    access_token: str
    endpoints: PlatformEndpoints
    begin_sending: Callable[[], Awaitable[bool]]


class PlatformAdapter(Protocol):
    """Knows one platform's endpoints, limits and errors; keeps no state between posts."""

    platform: str

    def validate(self, post: ClaimedPost) -> str | None:
        """Why this post can never be published as it is, or None if it can."""
        ...

    async def publish(self, post: ClaimedPost, context: PublishContext) -> Outcome:
        """Publishes the post and reports what happened; never raises for platform errors."""
        ...


async def publish_masked(adapter: PlatformAdapter, post: ClaimedPost,
                         context: PublishContext) -> Outcome:
    """Publishes through the adapter and masks the token in what comes back: platforms echo
    it in some errors ("Malformed access token EAA..."), and a token must never reach a
    stored error or a log."""
    outcome = await adapter.publish(post, context)
    secret = context.access_token
    if not secret:
        return outcome

    def mask(value: Any) -> Any:
        return value.replace(secret, "***") if isinstance(value, str) else value

    if secret not in (outcome.reason or "") and not any(
            isinstance(v, str) and secret in v for v in outcome.detail.values()):
        return outcome
    return replace(outcome, reason=mask(outcome.reason),
                   detail={k: mask(v) for k, v in outcome.detail.items()})
