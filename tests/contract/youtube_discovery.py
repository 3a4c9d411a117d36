"""The YouTube Data API v3 as Google publishes it: the discovery document that ships inside
the installed google-api-python-client (googleapiclient/discovery_cache/documents/
youtube.v3.json), loaded from the package at test time, never from a copy of ours.

    DOC / VIDEOS_INSERT     the document and its videos.insert method
    reference_insert(...)   the videos.insert request googleapiclient itself builds and sends
                            (initiation POST and chunk PUTs), recorded by a fake http
    body_problems(...)      every way a request body departs from a schema (unknown field,
                            wrong JSON type, value outside an enum, unparsable date-time)
    accepted(media_type)    whether mediaUpload.accept takes a media type, by
                            googleapiclient's own matcher (mimeparse, as discovery.py uses it)
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata, resources
from typing import Any

import httplib2
from googleapiclient import mimeparse
from googleapiclient.discovery import build_from_document
from googleapiclient.http import MediaIoBaseUpload

DOCUMENT = resources.files("googleapiclient") / "discovery_cache/documents/youtube.v3.json"
DOC: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
VIDEOS_INSERT: dict[str, Any] = DOC["resources"]["videos"]["methods"]["insert"]
SCHEMAS: dict[str, Any] = DOC["schemas"]
CLIENT_VERSION = metadata.version("google-api-python-client")
AUTH_VERSION = metadata.version("google-auth")


def accepted(media_type: str) -> bool:
    """True when videos.insert's mediaUpload.accept takes `media_type`."""
    return bool(mimeparse.best_match([media_type], ",".join(VIDEOS_INSERT["mediaUpload"]
                                                           ["accept"])))


def known_query_parameters() -> dict[str, Any]:
    """The query parameters videos.insert knows: its own and the API-wide ones."""
    return {**DOC["parameters"], **VIDEOS_INSERT["parameters"]}


# --- bodies against schemas ---------------------------------------------------------------


def body_problems(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Why `value` is not an instance of `schema` (empty when it is)."""
    if "$ref" in schema:
        return body_problems(value, SCHEMAS[schema["$ref"]], where)
    kind = schema.get("type")
    checks = {"object": _object, "array": _array, "string": _string, "boolean": _boolean,
              "integer": _integer, "number": _number}
    if kind not in checks:
        return [f"{where or '/'}: the schema has a type this check does not know: {kind!r}"]
    return checks[kind](value, schema, where)


def _object(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where or '/'}: expected a JSON object, got {type(value).__name__}"]
    problems = []
    properties = schema.get("properties")
    for name, item in value.items():
        if properties is not None and name in properties:
            problems += body_problems(item, properties[name], f"{where}.{name}".lstrip("."))
        elif "additionalProperties" in schema:
            problems += body_problems(item, schema["additionalProperties"], f"{where}.{name}")
        else:
            problems.append(f"{where}.{name}".lstrip(".") + ": not a field of the schema")
    return problems


def _array(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{where}: expected a JSON array, got {type(value).__name__}"]
    return [problem for n, item in enumerate(value)
            for problem in body_problems(item, schema["items"], f"{where}[{n}]")]


def _string(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{where}: expected a JSON string, got {type(value).__name__} {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    form = schema.get("format")
    if form == "date-time":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return [f"{where}: {value!r} is not an RFC 3339 date-time"]
    if form in ("int64", "uint64") and not value.lstrip("-").isdigit():
        return [f"{where}: {value!r} is not a decimal {form}"]
    return []


def _boolean(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    return [] if isinstance(value, bool) else [f"{where}: expected a JSON boolean, got "
                                               f"{type(value).__name__} {value!r}"]


def _integer(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if isinstance(value, int) and not isinstance(value, bool):
        return []
    return [f"{where}: expected a JSON integer, got {type(value).__name__} {value!r}"]


def _number(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return []
    return [f"{where}: expected a JSON number, got {type(value).__name__} {value!r}"]


# --- the reference client's own requests ------------------------------------------------------


@dataclass
class Sent:
    """One request googleapiclient handed to its http object."""

    method: str
    uri: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingHttp:
    """An httplib2.Http stand-in: answers from a script, records what it was asked."""

    answers: list[tuple[int, dict[str, str], bytes]]
    sent: list[Sent] = field(default_factory=list)

    def request(self, uri: str, method: str = "GET", body: Any = None,
                headers: dict[str, str] | None = None, redirections: int = 5,
                connection_type: Any = None) -> tuple[httplib2.Response, bytes]:
        data = body.read() if hasattr(body, "read") else body or b""
        data = data.encode() if isinstance(data, str) else data
        self.sent.append(Sent(method, uri, {k.lower(): v for k, v in (headers or {}).items()},
                              data))
        status, answer_headers, content = self.answers.pop(0)
        return httplib2.Response({"status": str(status), **answer_headers}), content


def reference_insert(*, part: str, body: dict[str, Any], data: bytes, media_type: str,
                     chunk_bytes: int) -> list[Sent]:
    """The requests googleapiclient sends for a resumable videos.insert of `data`: the
    initiation POST, then one PUT per chunk (the service is built from the same document)."""
    session = ("https://youtube.googleapis.com/upload/youtube/v3/videos?uploadType=resumable"
               "&upload_id=reference")
    chunks = -(-len(data) // chunk_bytes)
    answers: list[tuple[int, dict[str, str], bytes]] = [(200, {"location": session}, b"")]
    answers += [(308, {"range": f"bytes=0-{(n + 1) * chunk_bytes - 1}"}, b"")
                for n in range(chunks - 1)]
    answers.append((200, {}, json.dumps({"id": "reference"}).encode()))
    http = RecordingHttp(answers)
    service = build_from_document(DOC, http=http)
    upload = MediaIoBaseUpload(io.BytesIO(data), mimetype=media_type, chunksize=chunk_bytes,
                               resumable=True)
    request = service.videos().insert(part=part, body=body, media_body=upload)
    done = None
    while done is None:
        _, done = request.next_chunk(http=http)
    return http.sent
