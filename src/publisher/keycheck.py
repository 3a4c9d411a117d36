"""Before a run touches any post: does ENCRYPTION_KEY open the tokens the run will need?

A valid key that is the wrong one (the staging key in production, a rotation that dropped
the old key too soon) would otherwise fail every due post for good, one at a time. So a
run or worker first tries its keys on a small sample of sealed access tokens of the active
accounts that have due posts, and refuses to start when

- none of the sampled tokens opens, and
- the sampled tokens that are in our format name key ids we do not hold, or fail
  authentication under a key we do hold.

Then it is a settings error (ConfigError, exit 2) naming ENCRYPTION_KEY and
ENCRYPTION_KEYS_PREVIOUS and the key ids on both sides (key ids are hashes, not secrets),
and no post has been touched. Tokens not in our format (garbage, plain text) say nothing
about the key: they stay per-account failures, as in the run itself. One token that opens
is enough: the others are per-account problems too. No sample (no accounts, nothing due):
nothing to check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from publisher.crypto import TokenCipher, sealed_key_id
from publisher.errors import ConfigError, TokenError
from publisher.store import Store

log = logging.getLogger("publisher")

SAMPLE_SIZE = 12  # tokens tried: a few per key id named, enough to see one key that works


@dataclass(frozen=True, kw_only=True)
class KeyCheck:
    """What the sample showed. Holds key ids and counts only, never a token."""

    sampled: int = 0
    opened: int = 0
    unknown_ids: dict[str, int] = field(default_factory=dict)  # key id we lack -> tokens
    refused_ids: dict[str, int] = field(default_factory=dict)  # key id we hold, tag failed
    malformed: int = 0  # not in our format: not counted for or against the key

    @property
    def wrong_key(self) -> bool:
        return self.opened == 0 and bool(self.unknown_ids or self.refused_ids)


def assess(cipher: TokenCipher, tokens: list[str]) -> KeyCheck:
    """Tries the cipher's keys on each sealed token."""
    opened = malformed = 0
    unknown: dict[str, int] = {}
    refused: dict[str, int] = {}
    held = {cipher.current_key_id, *cipher.previous_key_ids}
    for token in tokens:
        key_id = sealed_key_id(token)
        if key_id is None:
            malformed += 1
            continue
        try:
            cipher.decrypt(token)
        except TokenError:
            bucket = refused if key_id in held else unknown
            bucket[key_id] = bucket.get(key_id, 0) + 1
            continue
        opened += 1
    return KeyCheck(sampled=len(tokens), opened=opened, unknown_ids=unknown,
                    refused_ids=refused, malformed=malformed)


def wrong_key_message(check: KeyCheck, cipher: TokenCipher) -> str:
    counted = sum(check.unknown_ids.values()) + sum(check.refused_ids.values())
    parts = [f"ENCRYPTION_KEY opens none of the {counted} sealed access token(s) sampled "
             "from accounts with due posts"]
    if check.unknown_ids:
        parts.append("they name key id(s) " + _ids(check.unknown_ids) + ", which this "
                     "process does not hold")
    if check.refused_ids:
        parts.append("token(s) naming key id(s) " + _ids(check.refused_ids) + ", which "
                     "this process holds, fail authentication (altered or corrupt)")
    previous = ", ".join(cipher.previous_key_ids) or "none"
    parts.append(f"this process holds ENCRYPTION_KEY = key id {cipher.current_key_id} and "
                 f"ENCRYPTION_KEYS_PREVIOUS = key id(s) {previous}")
    parts.append("set ENCRYPTION_KEY to the key the tokens were sealed with, or add that key "
                 "to ENCRYPTION_KEYS_PREVIOUS; no post was claimed or changed")
    return "; ".join(parts)


def _ids(counts: dict[str, int]) -> str:
    return ", ".join(f"{key_id} ({n} token{'s' if n != 1 else ''})"
                     for key_id, n in sorted(counts.items()))


async def check_key(store: Store, cipher: TokenCipher, *,
                    sample_size: int = SAMPLE_SIZE) -> KeyCheck:
    """Raises ConfigError when the keys open none of the sampled tokens (see the module
    docstring); reads only, so every post is left exactly as it was."""
    check = assess(cipher, await store.sample_sealed_tokens(sample_size))
    if check.wrong_key:
        raise ConfigError(wrong_key_message(check, cipher))
    if check.unknown_ids or check.refused_ids:
        # Some accounts' tokens need a key we lack: those posts fail with that reason.
        log.warning("some sampled tokens do not open with the configured keys",
                    extra={"fields": {"event": "key_check", "opened": check.opened,
                                      "unknown_key_ids": sorted(check.unknown_ids),
                                      "refused_key_ids": sorted(check.refused_ids)}})
    return check
