"""Media we fetch ourselves: only public https URLs, streamed, redirects checked."""

from __future__ import annotations

import httpx
import pytest
import respx

from publisher.models import OutcomeKind
from publisher.platforms import media
from publisher.platforms.media import MediaFetcher, MediaStream, media_urls_problem, scheme_problem


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/video.mp4",           # loopback
    "https://localhost/video.mp4",           # loopback by name
    "https://10.1.2.3/video.mp4",            # private
    "https://172.16.0.9/video.mp4",          # private
    "https://192.168.1.10/video.mp4",        # private
    "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
    "https://[::1]/video.mp4",               # IPv6 loopback
    "https://[fe80::1]/video.mp4",           # IPv6 link-local
    "https://[::ffff:127.0.0.1]/video.mp4",  # IPv4-mapped loopback
    "https://0.0.0.0/video.mp4",             # unspecified
    "https://224.0.0.1/video.mp4",           # multicast
])
async def test_non_public_addresses_are_refused(url: str) -> None:
    """Private, loopback, link-local and similar addresses are refused with the reason."""
    async with httpx.AsyncClient() as client:
        problem = await MediaFetcher(client).problem(url)
    assert problem is not None
    assert "non-public address" in problem


async def test_plain_http_is_refused() -> None:
    """Only https is allowed for public media."""
    async with httpx.AsyncClient() as client:
        problem = await MediaFetcher(client).problem("http://93.184.216.34/v.mp4")
    assert problem is not None
    assert "not https" in problem


async def test_unresolvable_host_is_refused() -> None:
    """A host that does not resolve is a clear problem, not a crash."""
    async with httpx.AsyncClient() as client:
        problem = await MediaFetcher(client).problem("https://no-such-host.invalid/v.mp4")
    assert problem is not None
    assert "does not resolve" in problem


async def test_configured_simulator_host_is_allowed() -> None:
    """The simulator's own address is allowed only when it is configured."""
    async with httpx.AsyncClient() as client:
        assert await MediaFetcher(client, {"127.0.0.1:8787"}).problem(
            "http://127.0.0.1:8787/_media/v.mp4") is None
        assert await MediaFetcher(client).problem("http://127.0.0.1:8787/_media/v.mp4")


@respx.mock
async def test_public_media_streams_in_chunks() -> None:
    """A public https URL opens as a stream with its length and type."""
    respx.get("https://93.184.216.34/v.mp4").mock(return_value=httpx.Response(
        200, content=b"x" * 3000, headers={"content-type": "video/mp4"}))
    async with httpx.AsyncClient() as client, \
            MediaFetcher(client).open("https://93.184.216.34/v.mp4") as stream:
        assert isinstance(stream, MediaStream)
        assert (stream.length, stream.content_type) == (3000, "video/mp4")
        chunks = [chunk async for chunk in stream.chunks(1024)]
    assert [len(c) for c in chunks] == [1024, 1024, 952]


@respx.mock
async def test_redirect_to_a_private_address_is_refused() -> None:
    """Each redirect hop is checked: a public URL cannot bounce to the metadata service."""
    respx.get("https://93.184.216.34/v.mp4").mock(return_value=httpx.Response(
        302, headers={"location": "https://169.254.169.254/latest/meta-data"}))
    async with httpx.AsyncClient() as client, \
            MediaFetcher(client).open("https://93.184.216.34/v.mp4") as stream:
        assert not isinstance(stream, MediaStream)
        assert stream.kind is OutcomeKind.FAILED
        assert "169.254.169.254" in (stream.reason or "")


@respx.mock
@pytest.mark.parametrize(("status", "kind"), [(404, OutcomeKind.FAILED),
                                              (403, OutcomeKind.FAILED),
                                              (503, OutcomeKind.RETRY),
                                              (429, OutcomeKind.RETRY)])
async def test_media_host_errors(status: int, kind: OutcomeKind) -> None:
    """A missing file fails the post; a media host in trouble is retried later."""
    respx.get("https://93.184.216.34/v.mp4").mock(return_value=httpx.Response(status))
    async with httpx.AsyncClient() as client, \
            MediaFetcher(client).open("https://93.184.216.34/v.mp4") as stream:
        assert not isinstance(stream, MediaStream)
        assert stream.kind is kind
        assert str(status) in (stream.reason or "")


@respx.mock
async def test_resume_asks_for_a_range() -> None:
    """Opening at an offset sends a Range header."""
    route = respx.get("https://93.184.216.34/v.mp4").mock(return_value=httpx.Response(
        206, content=b"tail", headers={"content-type": "video/mp4"}))
    async with httpx.AsyncClient() as client, \
            MediaFetcher(client).open("https://93.184.216.34/v.mp4", offset=100) as stream:
        assert isinstance(stream, MediaStream)
    assert route.calls.last.request.headers["range"] == "bytes=100-"


@pytest.mark.parametrize(("urls", "allowed", "bad"), [
    (("https://cdn.example.com/a.jpg",), (), None),
    (("http://cdn.example.com/a.jpg",), (), "a.jpg"),
    (("https://cdn.example.com/a.jpg", "ftp://cdn.example.com/b.jpg"), (), "b.jpg"),
    (("file:///etc/passwd",), (), "passwd"),
    (("http://127.0.0.1:8787/_media/v.mp4",), ("127.0.0.1:8787",), None),
    (("http://127.0.0.1:9999/_media/v.mp4",), ("127.0.0.1:8787",), "v.mp4"),
])
def test_scheme_problem_allows_https_and_the_simulator_only(
        urls: tuple[str, ...], allowed: tuple[str, ...], bad: str | None) -> None:
    """Media must be https, except on the configured simulator's host; the reason names it."""
    problem = scheme_problem(urls, allowed)
    if bad is None:
        assert problem is None
    else:
        assert problem is not None
        assert bad in problem
        assert "https" in problem


# --- the address check before any call (every platform): media_urls_problem --------------------

FAKE_DNS = {"rebound.example.com": ("127.0.0.1", "10.0.0.2"),
            "mixed.example.com": ("93.184.216.34", "10.0.0.2"),
            "public.example.com": ("93.184.216.34",),
            "gone.example.com": ()}


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names resolve as FAKE_DNS says (no network, no cache between tests)."""
    async def addresses(host: str, port: int) -> tuple[str, ...]:
        return FAKE_DNS[host]
    monkeypatch.setattr(media, "_addresses", addresses)


@pytest.mark.usefixtures("fake_dns")
@pytest.mark.parametrize(("host", "refused"), [
    pytest.param("rebound.example.com", True, id="only-non-public"),
    pytest.param("mixed.example.com", False, id="mixed: the platform fetches it"),
    pytest.param("public.example.com", False, id="public"),
    pytest.param("gone.example.com", False, id="does-not-resolve: left to the platform"),
])
async def test_a_name_resolving_only_to_non_public_addresses_is_refused(
        host: str, refused: bool) -> None:
    problem = await media_urls_problem([f"https://{host}/a.jpg"])
    assert (problem is not None) is refused
    if refused:
        assert problem is not None
        assert "resolves to a non-public address" in problem


@pytest.mark.usefixtures("fake_dns")
async def test_what_we_fetch_ourselves_is_held_to_every_address() -> None:
    """MediaFetcher applies the same rule, then refuses any non-public address at all."""
    async with httpx.AsyncClient() as client:
        fetcher = MediaFetcher(client)
        mixed = await fetcher.problem("https://mixed.example.com/v.mp4")
        gone = await fetcher.problem("https://gone.example.com/v.mp4")
        spelled = await fetcher.problem("https://0x7f.1/v.mp4")
    assert mixed is not None
    assert "non-public address" in mixed
    assert gone is not None
    assert "does not resolve" in gone
    assert spelled is not None
    assert "non-public address" in spelled


async def test_the_configured_simulator_skips_the_address_check() -> None:
    assert await media_urls_problem(["http://127.0.0.1:8787/_media/v.mp4"],
                                    ("127.0.0.1:8787",)) is None
