"""The one rule for media URLs, and fetching media that we upload ourselves (YouTube video,
LinkedIn images), safely.

The rule (media_url_problem, for every platform, before any call): https only, with a host,
without a user name or password, and the host is not a non-public address: no literal
private, loopback, link-local (cloud metadata), multicast or reserved address in any
spelling (127.1, 0x7f.0.0.1, 2130706433, [::ffff:127.0.0.1]), no local name (localhost,
*.local, *.internal, a name without a domain, ...). Before a post is sent its hosts are
resolved too (media_urls_problem): a name that resolves only to non-public addresses is
refused. What we fetch ourselves is held to more: a name that does not resolve, or resolves
to any non-public address, is refused, so a post cannot make the publisher read from inside
its own network. Redirects are followed by hand, each hop checked the same way. Bodies are
streamed in chunks, never held whole in memory. The configured simulator's host:port is the
one exception to the rule.

Left for later: the check resolves the name, then httpx resolves it again to connect, so a
DNS answer that changes between the two (rebinding) is not caught.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import time
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit

import httpx

from publisher.models import Outcome

MAX_REDIRECTS = 3
CHUNK_BYTES = 1 << 20
# Names that only mean something inside a network (RFC 6761/6762/8375 and common habits),
# and cloud metadata services reachable by a public-looking name.
LOCAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa", "lan",
                  "intranet", "corp", "private")
_LOCAL_NAME = re.compile(r"(?:^|\.)(?:" + "|".join(map(re.escape, LOCAL_SUFFIXES)) + r")$")
METADATA_NAMES = frozenset({"metadata.goog", "metadata.google.internal",
                            "metadata.tencentyun.com", "instance-data.ec2.internal"})
RESOLVE_TIMEOUT_SECONDS = 2.0
RESOLVED_FOR_SECONDS = 60.0   # a host's addresses are looked up once a minute at most
RESOLVED_MAX = 4096
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f\\]")  # clients read these in ways we cannot check
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# host, port -> (valid until, addresses; empty: does not resolve)
_resolved: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}


@dataclass(frozen=True, slots=True)
class MediaStream:
    """An open media download: its size and type as the server states them, and its body."""

    url: str
    length: int | None
    content_type: str
    response: httpx.Response

    def chunks(self, size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        return self.response.aiter_bytes(size)


def media_url_problem(url: str, allowed_hosts: Collection[str] = ()) -> str | None:
    """Why this media URL may not be used, or None: the one rule every platform's media
    meets before any call (see the module's docstring). Names only the file, never the
    query (it may carry a signature)."""
    why = _refusal(url, {h.lower() for h in allowed_hosts})
    return None if why is None else f"media URL {_name(url)!r} is not a public https URL: {why}"


def scheme_problem(urls: Collection[str], allowed_hosts: Collection[str] = ()) -> str | None:
    """The first of these URLs that breaks the rule, said as media_url_problem says it."""
    for url in urls:
        problem = media_url_problem(url, allowed_hosts)
        if problem is not None:
            return problem
    return None


async def media_urls_problem(urls: Collection[str],
                             allowed_hosts: Collection[str] = ()) -> str | None:
    """The rule, then the hosts' addresses: a name that resolves only to non-public
    addresses is refused (one that does not resolve is left to the platform, which fetches
    it: a DNS hiccup here must not fail a post for good)."""
    allowed = {h.lower() for h in allowed_hosts}
    for url in urls:
        why = _refusal(url, allowed)
        if why is None and urlsplit(url).netloc.lower() not in allowed:
            why = await _address_refusal(url, any_private=False)
        if why is not None:
            return f"media URL {_name(url)!r} is not a public https URL: {why}"
    return None


def _name(url: str) -> str:
    try:
        name = PurePosixPath(urlsplit(url).path).name
    except ValueError:
        name = ""
    return name or "(no file name)"  # never the whole URL: it may carry user:pass or a query


def _refusal(url: str, allowed: Collection[str]) -> str | None:
    if _UNSAFE.search(url):
        return "it contains spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "it is not a valid URL (its host or port cannot be read)"
    if parts.netloc.lower() in allowed:
        return None
    if parts.scheme != "https":
        return "it is not https"
    if "@" in parts.netloc:
        return "it carries a user name or password (user:pass@)"
    if not parts.hostname:
        return "it has no host"
    if port == 0:
        return "its port is 0"
    return _host_refusal(parts.hostname)


@functools.lru_cache(maxsize=4096)  # a verdict per host name: posts share a few media hosts
def _host_refusal(hostname: str) -> str | None:
    host = hostname.rstrip(".")
    if ":" not in host:  # not IPv6: the name as a client reads it (fullwidth digits, ⓛ...)
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return f"its host {host[:80]!r} is not a valid host name"
    try:
        address = _literal_address(host)
    except ValueError:
        return f"its host {host[:80]!r} is not a valid address"
    if address is not None:
        return None if _public(address) else f"its host {host[:80]} is a non-public address"
    if not _HOST_NAME.fullmatch(host):
        if "." not in host:
            return f"its host {host[:80]!r} is a non-public address (a name without a domain)"
        return f"its host {host[:80]!r} is not a valid host name"
    if host in METADATA_NAMES or _LOCAL_NAME.search(host):
        return f"its host {host} is a non-public address (a local or metadata name)"
    return None


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host spells, in any spelling a client accepts (127.1, 0x7f.0.0.1,
    2130706433, 0177.0.0.1), or None for a name. ValueError: neither."""
    if ":" in host:
        return ipaddress.ip_address(host.split("%")[0])
    if not _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1].lower()):
        return None
    try:  # a numeric last label makes it an IPv4 address, as browsers read it
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError as exc:
        raise ValueError(host) from exc


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def _forbidden(address: str) -> bool:
    return not _public(ipaddress.ip_address(address.split("%")[0]))


async def _addresses(host: str, port: int) -> tuple[str, ...]:
    """The host's addresses (empty: it does not resolve), looked up once a minute at most."""
    key, now = (host, port), time.monotonic()
    known = _resolved.get(key)
    if known is not None and known[0] > now:
        return known[1]
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS)
        found = tuple(str(info[4][0]) for info in infos)
    except (OSError, UnicodeError):  # gaierror and TimeoutError are OSErrors
        found = ()
    if len(_resolved) >= RESOLVED_MAX:
        _resolved.clear()
    _resolved[key] = (now + RESOLVED_FOR_SECONDS, found)
    return found


async def _address_refusal(url: str, *, any_private: bool) -> str | None:
    """any_private: refuse a name that does not resolve or has any non-public address
    (what we fetch ourselves); else only one whose every address is non-public."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    addresses = await _addresses(host, parts.port or 443)
    if not addresses:
        return f"its host {host!r} does not resolve" if any_private else None
    private = [a for a in addresses if _forbidden(a)]
    if private and (any_private or len(private) == len(addresses)):
        return f"its host {host!r} resolves to a non-public address ({private[0]})"
    return None


class MediaFetcher:
    """Opens media URLs for streaming, refusing non-public ones."""

    def __init__(self, client: httpx.AsyncClient, allowed_hosts: Collection[str] = ()) -> None:
        self._client = client
        self._allowed = {h.lower() for h in allowed_hosts}  # e.g. the simulator's host:port

    async def problem(self, url: str) -> str | None:
        """Why this URL may not be fetched, or None: the media URL rule, then every address
        its host resolves to must be public."""
        why = _refusal(url, self._allowed)
        if why is None and urlsplit(url).netloc.lower() not in self._allowed:
            why = await _address_refusal(url, any_private=True)
        if why is None:
            return None
        return f"media URL {_name(url)!r} is not a public https URL: {why}"

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
