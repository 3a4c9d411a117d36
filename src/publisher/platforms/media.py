"""Fetching media that we upload ourselves (YouTube video, LinkedIn images), safely.

Only public https URLs: a URL whose host resolves to a private, loopback, link-local
(cloud metadata), multicast or reserved address is refused, so a post cannot make the
publisher read from inside its own network. Redirects are followed by hand, each hop
checked the same way. Bodies are streamed in chunks, never held whole in memory.

Left for later: the check resolves the name, then httpx resolves it again to connect, so a
DNS answer that changes between the two (rebinding) is not caught.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from publisher.models import Outcome

MAX_REDIRECTS = 3
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class MediaStream:
    """An open media download: its size and type as the server states them, and its body."""

    url: str
    length: int | None
    content_type: str
    response: httpx.Response

    def chunks(self, size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        return self.response.aiter_bytes(size)


def scheme_problem(urls: Collection[str], allowed_hosts: Collection[str] = ()) -> str | None:
    """Every platform takes media only from public https URLs (the platforms download it, or
    we do): checked before any call. The configured simulator's own host is the exception."""
    for url in urls:
        parts = urlsplit(url)
        if parts.netloc.lower() in allowed_hosts:
            continue
        if parts.scheme != "https" or not parts.hostname:
            name = parts.path.rsplit("/", 1)[-1] or url[:60]
            return f"media URL {name!r} is not a public https URL; only https media can be used"
    return None


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved


class MediaFetcher:
    """Opens media URLs for streaming, refusing non-public ones."""

    def __init__(self, client: httpx.AsyncClient, allowed_hosts: Collection[str] = ()) -> None:
        self._client = client
        self._allowed = {h.lower() for h in allowed_hosts}  # e.g. the simulator's host:port

    async def problem(self, url: str) -> str | None:
        """Why this URL may not be fetched, or None."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host:
            return f"media URL {url!r} has no host"
        if parts.netloc.lower() in self._allowed:
            return None
        if parts.scheme != "https":
            return f"media URL {url!r} is not https; only public https URLs are allowed"
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parts.port or 443, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return f"media URL host {host!r} does not resolve"
        for info in infos:
            address = str(info[4][0])
            if _forbidden(address):
                return (f"media URL host {host!r} resolves to a non-public address ({address}); "
                        "only public https URLs are allowed")
        return None

    @asynccontextmanager
    async def open(self, url: str, *, offset: int = 0,
                   length: int | None = None) -> AsyncIterator[MediaStream | Outcome]:
        """Yields the open stream, or the Outcome that says why it could not be opened.
        With offset or length, asks for that byte range only. Read a long body in ranges:
        the connection reads ahead into memory while the body is not being consumed."""
        headers = {}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{last}"
        for _ in range(MAX_REDIRECTS + 1):
            problem = await self.problem(url)
            if problem is not None:
                yield Outcome.failed(problem)
                return
            request = self._client.build_request("GET", url, headers=headers)
            try:
                response = await self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                yield Outcome.retry(f"could not download media {url!r}: {type(exc).__name__}")
                return
            try:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code >= 500 or response.status_code == 429:
                    yield Outcome.retry(f"media host answered HTTP {response.status_code} "
                                        f"for {url!r}")
                    return
                if response.status_code not in (200, 206):
                    yield Outcome.failed(f"media URL {url!r} answered HTTP "
                                         f"{response.status_code}")
                    return
                length = response.headers.get("content-length")
                yield MediaStream(url=url, length=int(length) if length else None,
                                  content_type=response.headers.get("content-type", ""),
                                  response=response)
                return
            finally:
                await response.aclose()
        yield Outcome.failed(f"media URL redirects more than {MAX_REDIRECTS} times")
