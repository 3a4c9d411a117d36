"""The fault kinds the simulator can inject, what each does, and how they are named.

Most kinds stop a call before the platform acts (nothing is created). The dangerous ones
let the platform act first: ``timeout_after``, ``malformed`` and the ``*_after_create``
kinds (and ``linkedin_duplicate``) create the post, then answer with a hang, nonsense, an
error or a dropped connection, so a client cannot tell from the answer that its post is live.
"""

from __future__ import annotations

from typing import Any

GENERIC_FAULTS: tuple[str, ...] = (
    "transient",
    "throttle",
    "rate_limit_429",
    "token_expired",
    "permission",
    "bad_input",
    "timeout_before",
    "timeout_after",
    "malformed",
    "reset",
    "error_after_create",
    "reset_after_create",
)
"""Fault kinds every publishing call can draw, each platform answering in its own shape."""

META_FAULTS: tuple[str, ...] = ("meta_error_after_create", "meta_throttle")
"""Kinds only Facebook and Instagram draw (Meta's error codes)."""

AFTER_CREATE_FAULTS = frozenset(
    {"error_after_create", "meta_error_after_create", "reset_after_create", "linkedin_duplicate"}
)
"""Kinds that let the handler create the post, then replace its successful answer with an
error or a dropped connection: the post is live, and the answer says otherwise."""

FAULT_HELP: dict[str, str] = {
    "transient": "a 5xx in the platform's shape before anything is created",
    "throttle": "the platform's per-account throttle (Meta 80001/80002, LinkedIn MEMBER "
    "DAY 429, YouTube rateLimitExceeded)",
    "rate_limit_429": "HTTP 429 (Retry-After where the platform sends one)",
    "token_expired": "the platform's expired-token answer (401, Meta 190/463)",
    "permission": "a missing permission (403, Meta 10/200)",
    "bad_input": "a validation error (400/422, Meta 100)",
    "timeout_before": "hang before the platform acts (nothing created), then a 5xx",
    "timeout_after": "create the post, then hang (the answer never comes in time)",
    "malformed": "create the post, then answer 200 with an HTML body",
    "reset": "drop the connection before the platform acts (nothing created)",
    "error_after_create": "create the post, then answer the platform's 5xx with an error "
    "body (on YouTube: on the final chunk, the video exists)",
    "reset_after_create": "create the post, then drop the connection",
    "meta_error_after_create": "Facebook/Instagram: create the post, then answer HTTP 400 "
    "with Meta code 1 (unknown error) or code 2 (is_transient), in turn",
    "meta_throttle": "Facebook/Instagram: a throttle as Meta sends it, not 429: codes "
    "4 (403), 17 (400), 32 (403), 613 (400) in turn, with X-App-Usage (100 % for code "
    "4) and X-Business-Use-Case-Usage (100 %, estimated_time_to_regain_access) headers",
    "linkedin_duplicate": "LinkedIn: create the post, then answer 422 DUPLICATE_POST "
    "'Content is a duplicate of urn:li:share:N' naming it (LinkedIn also refuses a repeated "
    "commentary by the same author on its own: see linkedin_refuse_duplicates)",
    "upload_interrupt": "YouTube: break a chunk PUT after half its bytes (any chunk)",
    "upload_token_expired": "YouTube: a chunk PUT (any chunk) finds the bearer token expired: "
    "401 authError, nothing stored, and that token stays expired for every YouTube call",
    "container_error": "Instagram: a new container goes to ERROR (subcode 2207001)",
    "video_error": "Facebook: POST /videos answers the video's id, then its processing fails "
    "(status.video_status error); it never goes live",
}
"""What each fault kind does (``python -m publisher.simulator --help`` lists them)."""

FAULT_KINDS: tuple[str, ...] = (
    *GENERIC_FAULTS,
    *META_FAULTS,
    "linkedin_duplicate",
    "upload_interrupt",
    "upload_token_expired",
    "container_error",
    "video_error",
)
"""Every fault kind the simulator can inject (described in :data:`FAULT_HELP`).

A configured kind is drawn only by the calls that support it: the generic kinds by every
publishing call, the Meta kinds by Facebook's and Instagram's, ``linkedin_duplicate`` by
``POST /rest/posts``, the upload kinds by YouTube chunk PUTs, ``container_error`` (and
``meta_throttle``) by Instagram container creation, ``video_error`` by Facebook's
``POST /videos``.
"""

DEFAULT_FAULTS: tuple[str, ...] = ("transient", "throttle", "rate_limit_429", "reset")
"""Kinds drawn when a fault rate is set but no kinds are named: retryable, no long hangs."""


def parse_faults(value: Any) -> tuple[str, ...]:
    """Fault kinds from a list or a comma-separated string."""
    if isinstance(value, str):
        return tuple(k.strip() for k in value.split(",") if k.strip())
    if isinstance(value, list | tuple) and all(isinstance(k, str) for k in value):
        return tuple(value)
    raise ValueError("faults must be a list of kind names or a comma-separated string")
