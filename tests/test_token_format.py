"""The stored token format as the README specifies it for the product's OAuth callback:
the test vectors in tests/vectors/token_format.json hold for publisher.crypto, the README
shows exactly those vectors, and the README's JavaScript reference implementation seals to
them and interoperates with ours."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from publisher.crypto import TokenCipher, parse_key

ROOT = Path(__file__).resolve().parent.parent
VECTORS_FILE = Path(__file__).resolve().parent / "vectors" / "token_format.json"
SECTION = "### Token format (for the product's OAuth callback)"

# Runs the README's module (token.mjs) on the vectors: a fixed-nonce seal and an open of
# each, and a seal with a random nonce, for Python to open.
_HARNESS = """
import { readFileSync } from "node:fs";
import { sealToken, openToken } from "./token.mjs";
const { vectors } = JSON.parse(readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify(vectors.map((v) => ({
  fixed: sealToken(v.key, v.plaintext, Buffer.from(v.nonce_hex, "hex")),
  opened: openToken([v.key], v.stored),
  fresh: sealToken(v.key, v.plaintext),
}))));
"""


def _vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text("utf-8"))["vectors"]
    return vectors


def _readme_section() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert SECTION in readme, "the README lost its token format section"
    section = readme.split(SECTION, 1)[1]
    return re.split(r"\n#{2,3} ", section, maxsplit=1)[0]


def _readme_block(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", _readme_section(), flags=re.DOTALL)
    assert len(blocks) == 1, f"expected one ```{language} block in the token format section"
    return str(blocks[0])


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["key_id"] + ":" + v["nonce_hex"])
def test_seal_with_the_fixed_nonce_gives_the_stored_text(vector: dict[str, Any]) -> None:
    """publisher.crypto seals each vector's plaintext with its key and nonce to its text."""
    cipher = TokenCipher(parse_key(vector["key"]))
    assert cipher.current_key_id == vector["key_id"]
    sealed = cipher.encrypt(vector["plaintext"], _nonce=bytes.fromhex(vector["nonce_hex"]))
    assert sealed == vector["stored"]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["key_id"] + ":" + v["nonce_hex"])
def test_open_gives_the_plaintext(vector: dict[str, Any]) -> None:
    """Each vector's stored text opens to its plaintext with its key."""
    assert TokenCipher(parse_key(vector["key"])).decrypt(vector["stored"]) == vector["plaintext"]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["key_id"] + ":" + v["nonce_hex"])
def test_the_spelled_out_steps_give_the_stored_text(vector: dict[str, Any]) -> None:
    """The README's recipe, step by step (key id = first 8 hex of SHA-256("publisher-key-id"
    || key); body = padded base64url of nonce || ciphertext || tag), matches the vector."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = base64.urlsafe_b64decode(vector["key"])
    nonce = bytes.fromhex(vector["nonce_hex"])
    key_id = hashlib.sha256(b"publisher-key-id" + key).hexdigest()[:8]
    sealed = AESGCM(key).encrypt(nonce, vector["plaintext"].encode("utf-8"), None)  # no AAD
    body = base64.urlsafe_b64encode(nonce + sealed).decode()
    assert len(sealed) == len(vector["plaintext"].encode("utf-8")) + 16
    assert f"v1:{key_id}:{body}" == vector["stored"]


def test_the_vectors_cover_padding_and_the_url_safe_alphabet() -> None:
    """Between them the vectors show '=' padding, '-' and '_', an empty and a non-ASCII
    plaintext, and two keys: the details a reimplementation most often gets wrong."""
    vectors = _vectors()
    bodies = [v["stored"].split(":")[2] for v in vectors]
    assert any(b.endswith("=") for b in bodies)
    assert any("-" in b for b in bodies)
    assert any("_" in b for b in bodies)
    assert "" in [v["plaintext"] for v in vectors]
    assert any(not v["plaintext"].isascii() for v in vectors)
    assert len({v["key"] for v in vectors}) == 2


def test_the_readme_shows_the_vectors_file() -> None:
    """The README's vectors are the JSON file's, so the two cannot drift apart."""
    assert json.loads(_readme_block("json")) == _vectors()


def test_unpadded_base64_is_refused() -> None:
    """The padding is part of the format (as the README warns about Node's 'base64url')."""
    from publisher.errors import TokenError

    vector = next(v for v in _vectors() if v["stored"].endswith("="))
    with pytest.raises(TokenError):
        TokenCipher(parse_key(vector["key"])).decrypt(vector["stored"].rstrip("="))


@pytest.mark.skipif(shutil.which("node") is None,
                    reason="`node` is not installed: the README's JavaScript reference "
                           "implementation cannot be run here")
async def test_the_readme_javascript_produces_the_vectors(tmp_path: Path) -> None:
    """The README's JavaScript, run with node, seals every vector to its stored text and
    opens it, and what it seals with a random nonce opens in publisher.crypto."""
    (tmp_path / "token.mjs").write_text(_readme_block("js"), "utf-8")
    (tmp_path / "check.mjs").write_text(_HARNESS, "utf-8")
    node = shutil.which("node")
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node, str(tmp_path / "check.mjs"), str(VECTORS_FILE), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    results = json.loads(stdout)
    vectors = _vectors()
    assert [r["fixed"] for r in results] == [v["stored"] for v in vectors]
    assert [r["opened"] for r in results] == [v["plaintext"] for v in vectors]
    for result, vector in zip(results, vectors, strict=True):
        assert result["fresh"] != vector["stored"]  # a random nonce, not the fixed one
        cipher = TokenCipher(parse_key(vector["key"]))
        assert cipher.decrypt(result["fresh"]) == vector["plaintext"]
