"""Token encryption at rest: AES-256-GCM in a versioned, rotation-ready format.

A stored token looks like ``v1:<key id>:<base64url(nonce || ciphertext+tag)>``. The key id
is derived from the key, so a token names the key that sealed it: after a rotation the old
key stays in ENCRYPTION_KEYS_PREVIOUS until every token has been re-sealed with the new one.
The key itself never reaches the database, and no message here contains a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from publisher.errors import ConfigError, TokenError

FORMAT_VERSION = "v1"
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_NONCE_BYTES = 12
_TAG_BYTES = 16


def generate_key() -> str:
    """A new random key, in the form ENCRYPTION_KEY expects."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_key(text: str, variable: str = "ENCRYPTION_KEY") -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            f"{variable} must be 32 random bytes in URL-safe base64 (44 characters); "
            "make one with `python -m publisher keygen`"
        )
    return raw


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"publisher-key-id" + key).hexdigest()[:8]


def sealed_key_id(stored: str) -> str | None:
    """The key id a stored token names, when it has the shape of a token we sealed (v1, a
    well-formed key id, a body long enough to hold nonce and tag); None for anything else.
    Key ids are not secrets: they are a hash of the key, which cannot be recovered."""
    parts = stored.split(":")
    if len(parts) != 3 or parts[0] != FORMAT_VERSION or not _KEY_ID.fullmatch(parts[1]):
        return None
    try:
        body = base64.urlsafe_b64decode(parts[2].encode())
    except (binascii.Error, ValueError):
        return None
    return parts[1] if len(body) >= _NONCE_BYTES + _TAG_BYTES else None


class TokenCipher:
    """Seals with the current key; opens with the current or any previous key."""

    def __init__(self, current: bytes, previous: Iterable[bytes] = ()) -> None:
        self._current_id = _key_id(current)
        self._keys = {_key_id(key): AESGCM(key) for key in (*previous, current)}

    def __repr__(self) -> str:
        return f"TokenCipher(current={self._current_id}, keys={len(self._keys)})"

    @property
    def current_key_id(self) -> str:
        """The id of ENCRYPTION_KEY, which new tokens are sealed with."""
        return self._current_id

    @property
    def previous_key_ids(self) -> tuple[str, ...]:
        """The ids of the keys in ENCRYPTION_KEYS_PREVIOUS, in order."""
        return tuple(k for k in self._keys if k != self._current_id)

    def encrypt(self, token: str, *, _nonce: bytes | None = None) -> str:
        """Seals `token` with the current key (README: "Token format").

        `_nonce` is for the format's test vectors only (tests/test_token_format.py):
        reusing a nonce with a key breaks AES-GCM, so production code never passes it."""
        nonce = os.urandom(_NONCE_BYTES) if _nonce is None else _nonce
        if len(nonce) != _NONCE_BYTES:
            raise ValueError(f"the nonce must be {_NONCE_BYTES} bytes")
        sealed = self._keys[self._current_id].encrypt(nonce, token.encode(), None)
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{FORMAT_VERSION}:{self._current_id}:{body}"

    def decrypt(self, stored: str) -> str:
        parts = stored.split(":")
        if len(parts) != 3 or parts[0] != FORMAT_VERSION:
            raise TokenError("stored token is not in the v1 encrypted format")
        _, key_id, body = parts
        aead = self._keys.get(key_id)
        if aead is None:
            # Name the key only when the field looks like a key id: never echo stored text.
            named = f"key {key_id}" if _KEY_ID.fullmatch(key_id) else "an unknown key"
            raise TokenError(
                f"stored token was sealed with {named}, which is neither ENCRYPTION_KEY "
                "nor in ENCRYPTION_KEYS_PREVIOUS"
            )
        try:
            blob = base64.urlsafe_b64decode(body.encode())
            return aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], None).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise TokenError("stored token is corrupt or was tampered with") from None

    def needs_rotation(self, stored: str) -> bool:
        """True when the token was sealed with a key other than the current one."""
        parts = stored.split(":")
        return len(parts) != 3 or parts[1] != self._current_id
