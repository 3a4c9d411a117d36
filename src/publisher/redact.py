"""Secrets out of everything a platform says back: mask first, then cut.

Platforms echo tokens in error bodies ("Malformed access token EAAB..."). Cutting such a text
to a length before masking can leave the token's first characters at the end of the cut, where
a plain `replace(secret, "***")` no longer finds them. So:

- `guard(*secrets)` holds the secrets of the current call (the access token, a refresh
  token, the app's client secret) in a ContextVar for the duration of an adapter call, a
  token refresh or a reconcile; `remember()` adds one found on the way (platforms/http.send
  adds what it puts in an Authorization header or a token form field).
- `clip(text, limit)` masks those secrets, then cuts. Every place a platform's words are cut
  to a length goes through it.
- `mask_outcome()` is the safety net on what an adapter returns: reason, detail and state,
  nested dicts and lists too.

What is masked, in the secret's plain, JSON-escaped (`\\/`, `\\u00..`) and URL-encoded
(`%2B`, `+`) forms: every whole occurrence; a text's end that is the start of a secret
and a text's start that is the end of one (6 characters or more: somebody else's cut); and
any run of 12 or more characters of a secret elsewhere (a platform quoting part of it).
Shorter runs inside a text are left alone: test tokens such as "fakeLinkedInToken" share
words with ordinary messages, real ones do not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from publisher.models import Outcome

MASK = "***"
EDGE = 6          # a secret's first (last) characters this many or more, at a text's end (start)
RUN = 12          # this many characters of a secret in a row, anywhere
PROBE = RUN // 2  # see _Pattern.probes
MIN_SECRET = 4    # shorter "secrets" (test stubs, empty strings) would mask ordinary words

_PROBE_SLICES = tuple(slice(i, i + PROBE) for i in range(0, 8192, PROBE))

_secrets: ContextVar[list[str] | None] = ContextVar("publisher_redact_secrets", default=None)


@contextmanager
def guard(*secrets: str | None) -> Iterator[list[str]]:
    """Within the block, clip() and mask() hide these secrets, and those of enclosing blocks.
    Yields the list of secrets known in the block (remember() adds to it)."""
    known = list(_secrets.get() or ())
    for secret in secrets:
        _add(known, secret)
    token = _secrets.set(known)
    try:
        yield known
    finally:
        _secrets.reset(token)


def remember(secret: str | None) -> None:
    """Adds a secret to the current guard's (a no-op outside any guard)."""
    known = _secrets.get()
    if known is not None:
        _add(known, secret)


def current() -> tuple[str, ...]:
    """The secrets of the current guard."""
    return tuple(_secrets.get() or ())


def _usable(secrets: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for s in secrets if s and len(s) >= MIN_SECRET))


def _add(known: list[str], secret: str | None) -> None:
    if secret and len(secret) >= MIN_SECRET and secret not in known:
        known.append(secret)


def clip(text: str, limit: int) -> str:
    """The text with the current secrets masked, then cut to `limit` characters."""
    return mask(text)[:limit]


def mask(text: str, secrets: Iterable[str | None] | None = None) -> str:
    """The text with the secrets (the current guard's, unless given) masked by the rules in
    the module's docstring."""
    known = current() if secrets is None else _usable(secrets)
    if not text or not known:
        return text
    return _mask(text, _pattern(known))


def mask_outcome(outcome: Outcome, secrets: Iterable[str | None]) -> Outcome:
    """The outcome with the secrets masked in its reason, detail and state."""
    if outcome.reason is None and not outcome.detail and not outcome.state:
        return outcome  # a success: nothing a platform said is kept
    known = _usable(secrets)
    if not known:
        return outcome
    pattern = _pattern(known)
    reason = None if outcome.reason is None else _mask(outcome.reason, pattern)
    detail = _walk(outcome.detail, pattern)
    state = _walk(outcome.state, pattern)
    if reason == outcome.reason and detail == outcome.detail and state == outcome.state:
        return outcome
    return replace(outcome, reason=reason, detail=detail, state=state)


class _Pattern:
    """What to look for: every form of the secrets (longest first), their RUN-character
    pieces, and the PROBE-character pieces of those."""

    __slots__ = ("forms", "grams", "probes")

    def __init__(self, secrets: tuple[str, ...]) -> None:
        forms = {form for secret in secrets for form in _forms(secret)}
        self.forms = tuple(sorted(forms, key=len, reverse=True))
        self.grams = frozenset(form[i:i + RUN] for form in forms
                               for i in range(len(form) - RUN + 1))
        # A run of RUN characters holds a PROBE-character piece starting at a multiple of
        # PROBE: a text with none of those pieces has no run, and is passed over cheaply.
        self.probes = frozenset(gram[i:i + PROBE] for gram in self.grams
                                for i in range(RUN - PROBE + 1))


@lru_cache(maxsize=64)  # a pattern of a long token holds some thousand short strings
def _pattern(secrets: tuple[str, ...]) -> _Pattern:
    return _Pattern(secrets)


def _forms(secret: str) -> set[str]:
    """The ways a platform may echo the secret: as is, JSON-escaped, URL-encoded."""
    escaped = json.dumps(secret)[1:-1]
    encoded = quote(secret, safe="")
    forms = {secret, escaped, escaped.replace("/", "\\/"), encoded, _lower_escapes(encoded),
             quote_plus(secret, safe=""), quote(secret, safe="/")}
    return {form for form in forms if len(form) >= MIN_SECRET}


def _lower_escapes(encoded: str) -> str:
    """%2B -> %2b: percent-escapes in lower case, the rest as it is."""
    parts = encoded.split("%")
    return parts[0] + "".join("%" + part[:2].lower() + part[2:] for part in parts[1:])


def _mask(text: str, pattern: _Pattern) -> str:
    for form in pattern.forms:
        if form in text:
            text = text.replace(form, MASK)
    if len(text) >= RUN:
        text = _mask_runs(text, pattern)
    if len(text) >= EDGE:
        text = _mask_edges(text, pattern.forms)
    return text


def _mask_runs(text: str, pattern: _Pattern) -> str:
    """Every run of RUN or more characters of a secret, wherever it is."""
    count = (len(text) - PROBE) // PROBE + 1  # aligned PROBE-character pieces
    if count <= len(_PROBE_SLICES) and pattern.probes.isdisjoint(
            map(text.__getitem__, _PROBE_SLICES[:count])):
        return text
    grams = pattern.grams
    pieces: list[str] = []
    kept = 0             # text[:kept] is already in pieces
    start = end = -1     # the run being masked
    for i in range(len(text) - RUN + 1):
        if text[i:i + RUN] in grams:
            if i > end:  # a new run: close the previous one
                if end >= 0:
                    pieces += (text[kept:start], MASK)
                    kept = end
                start = i
            end = i + RUN
    if end < 0:
        return text
    pieces += (text[kept:start], MASK, text[end:])
    return "".join(pieces)


def _mask_edges(text: str, forms: tuple[str, ...]) -> str:
    """A text ending in a secret's first EDGE+ characters, or starting with its last."""
    for form in forms:
        if len(form) <= EDGE:
            continue
        # The earliest start of a tail that begins the secret: the longest such tail.
        at = text.find(form[:EDGE], max(0, len(text) - len(form) + 1))
        while at != -1:
            if form.startswith(text[at:]):
                text = text[:at] + MASK
                break
            at = text.find(form[:EDGE], at + 1)
        # The latest end of a head that ends the secret: the longest such head.
        at = text.rfind(form[-EDGE:], 0, min(len(text), len(form) - 1))
        while at != -1:
            if form.endswith(text[:at + EDGE]):
                text = MASK + text[at + EDGE:]
                break
            at = text.rfind(form[-EDGE:], 0, at + EDGE - 1)
    return text


def _walk(value: Any, pattern: _Pattern) -> Any:
    if isinstance(value, str):
        return _mask(value, pattern)
    if isinstance(value, dict):
        return {key: _walk(item, pattern) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_walk(item, pattern) for item in value)
    return value
