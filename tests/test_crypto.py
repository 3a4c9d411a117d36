"""Token encryption: AES-GCM, versioned, rotatable, and silent about what it protects."""

from __future__ import annotations

import base64

import pytest

from publisher.crypto import FORMAT_VERSION, TokenCipher, generate_key, parse_key
from publisher.errors import ConfigError, TokenError

TOKEN = "EAAGm0PX4ZCpsBAKZC-super-secret-page-token"
OLD_KEY_TEXT = generate_key()
NEW_KEY_TEXT = generate_key()
OLD_KEY = parse_key(OLD_KEY_TEXT)
NEW_KEY = parse_key(NEW_KEY_TEXT)


def _assert_secret_free(text: str) -> None:
    for secret in (TOKEN, OLD_KEY_TEXT, NEW_KEY_TEXT, OLD_KEY_TEXT.rstrip("="),
                   NEW_KEY_TEXT.rstrip("=")):
        assert secret not in text


def test_round_trip() -> None:
    """A sealed token opens to the same text, in the v1 format, never in clear."""
    cipher = TokenCipher(NEW_KEY)
    sealed = cipher.encrypt(TOKEN)
    assert sealed.startswith(f"{FORMAT_VERSION}:")
    assert TOKEN not in sealed
    assert cipher.decrypt(sealed) == TOKEN
    assert cipher.decrypt(cipher.encrypt("")) == ""
    assert cipher.decrypt(cipher.encrypt("tök€n ✓")) == "tök€n ✓"


def test_each_seal_uses_a_fresh_nonce() -> None:
    """Sealing the same token twice gives two different ciphertexts."""
    cipher = TokenCipher(NEW_KEY)
    assert cipher.encrypt(TOKEN) != cipher.encrypt(TOKEN)


def test_rotation_opens_tokens_sealed_with_a_previous_key() -> None:
    """After rotation, old tokens open while the old key is listed as previous."""
    sealed_old = TokenCipher(OLD_KEY).encrypt(TOKEN)
    rotated = TokenCipher(NEW_KEY, previous=[OLD_KEY])
    assert rotated.decrypt(sealed_old) == TOKEN
    assert rotated.needs_rotation(sealed_old)
    resealed = rotated.encrypt(TOKEN)
    assert not rotated.needs_rotation(resealed)
    assert TokenCipher(NEW_KEY).decrypt(resealed) == TOKEN


def test_token_sealed_with_an_unknown_key_fails_without_secrets() -> None:
    """Without the old key, opening fails with TokenError naming no key material or token."""
    sealed_old = TokenCipher(OLD_KEY).encrypt(TOKEN)
    with pytest.raises(TokenError, match="ENCRYPTION_KEYS_PREVIOUS") as caught:
        TokenCipher(NEW_KEY).decrypt(sealed_old)
    message = str(caught.value)
    _assert_secret_free(message)
    assert sealed_old.split(":")[2] not in message
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("position", [0, 5, 20, -3])
def test_tampered_ciphertext_is_refused(position: int) -> None:
    """Changing any character of the sealed body raises TokenError."""
    cipher = TokenCipher(NEW_KEY)
    version, key_id, body = cipher.encrypt(TOKEN).split(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[position] ^= 0x01
    tampered = f"{version}:{key_id}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(TokenError, match="corrupt or was tampered with") as caught:
        cipher.decrypt(tampered)
    _assert_secret_free(str(caught.value))
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_truncated_ciphertext_is_refused() -> None:
    """A body too short to hold nonce and tag raises TokenError."""
    cipher = TokenCipher(NEW_KEY)
    version, key_id, body = cipher.encrypt(TOKEN).split(":")
    with pytest.raises(TokenError):
        cipher.decrypt(f"{version}:{key_id}:{body[:10]}")
    with pytest.raises(TokenError):
        cipher.decrypt(f"{version}:{key_id}:!!not-base64!!")


@pytest.mark.parametrize("stored", [
    TOKEN, "", "v1:only-two", "v2:abcd1234:AAAA", "v1:a:b:c", "V1:abcd:AAAA",
])
def test_wrong_format_is_refused_without_echoing_it(stored: str) -> None:
    """Anything but v1:<key id>:<body> raises TokenError that does not repeat the input."""
    with pytest.raises(TokenError) as caught:
        TokenCipher(NEW_KEY).decrypt(stored)
    if stored:
        assert stored not in str(caught.value)


@pytest.mark.parametrize("text", ["", "short", "a" * 44, base64.urlsafe_b64encode(b"x" * 31)
                                  .decode(), base64.urlsafe_b64encode(b"x" * 33).decode()])
def test_parse_key_errors_name_the_variable(text: str) -> None:
    """A key that is not 32 bytes of URL-safe base64 raises ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS_PREVIOUS") as caught:
        parse_key(text, "ENCRYPTION_KEYS_PREVIOUS")
    if text:
        assert text not in str(caught.value)
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        parse_key(text)


def test_parse_key_accepts_generated_keys() -> None:
    """generate_key() output (with surrounding spaces) parses to 32 bytes."""
    assert len(parse_key(f"  {generate_key()}\n")) == 32


def test_repr_shows_no_key_material() -> None:
    """The cipher's repr names key ids only."""
    cipher = TokenCipher(NEW_KEY, previous=[OLD_KEY])
    text = repr(cipher) + str(cipher)
    _assert_secret_free(text)
    assert NEW_KEY.hex() not in text
    assert repr(NEW_KEY) not in text
    assert "keys=2" in text


def test_no_exception_from_decrypt_carries_the_token() -> None:
    """Every failure path: neither message, repr, args nor chained errors hold the token."""
    sealed = TokenCipher(OLD_KEY).encrypt(TOKEN)
    version, key_id, body = sealed.split(":")
    attempts = [
        (TokenCipher(NEW_KEY), sealed),
        (TokenCipher(OLD_KEY), f"{version}:{key_id}:{body[:-4]}AAAA"),
        (TokenCipher(OLD_KEY), TOKEN),
        (TokenCipher(OLD_KEY), f"{TOKEN}:{TOKEN}:{TOKEN}"),
    ]
    for cipher, stored in attempts:
        with pytest.raises(TokenError) as caught:
            cipher.decrypt(stored)
        error: BaseException | None = caught.value
        while error is not None:
            _assert_secret_free(str(error) + repr(error) + repr(error.args))
            error = error.__cause__ or error.__context__


def test_unknown_key_field_is_not_echoed() -> None:
    """A key-id field that is not a key id (say, a pasted token) never reaches the message."""
    with pytest.raises(TokenError) as caught:
        TokenCipher(NEW_KEY).decrypt(f"v1:{TOKEN}:AAAA")
    assert TOKEN not in str(caught.value)
    assert "an unknown key" in str(caught.value)
