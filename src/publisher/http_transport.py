"""An httpx transport on aiohttp: the same client API, a connection pool that costs O(1) per
request (httpcore's pool scans every connection on every request and response close).

Errors are mapped honestly, because the adapters decide on them whether a post may be sent
again (see platforms/http.py). A "nothing was sent" exception is raised only when the request
provably never left:

    aiohttp                                          httpx
    ConnectionTimeoutError (pool wait or connect)    ConnectTimeout      nothing was sent
    ClientConnectorError (DNS, refused, TLS, cert)   ConnectError        nothing was sent
    InvalidURL, NonHttpUrlClientError                UnsupportedProtocol nothing was sent
    our write timeout fired                          WriteTimeout        maybe sent
    SocketTimeoutError, any other timeout            ReadTimeout         maybe sent
    ServerDisconnectedError, ClientPayloadError,
      ClientResponseError (malformed response)       RemoteProtocolError maybe sent
    anything else (ClientOSError, resets, ...)       ReadError           maybe sent

The same holds while the response body streams. An exception raised by a streamed request
body's own source propagates as itself, as with httpcore. The aiohttp exception is kept as
__cause__, scrubbed of the request headers (bearer tokens); messages name only its class.

aiohttp itself re-sends a request once, on a new connection, when the connection failed before
an answer came, but only an idempotent one (GET, PUT, DELETE, ...) whose body it can replay:
bodies over 64 KiB are streamed here, so not replayed. A YouTube chunk PUT is idempotent by its
Content-Range. A POST or PATCH is never re-sent.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator
from functools import lru_cache
from typing import TYPE_CHECKING

import httpx

from publisher import redact

if TYPE_CHECKING:
    import aiohttp

# aiohttp is imported on first use, not with this module: it takes ~0.2 s, and a run with
# nothing due makes no request.

# aiohttp would add these; httpx already sent the ones it wants.
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
# A body this small fits the socket buffer, so writing it cannot stall; a larger one is fed
# in pieces this big, so the write timeout measures progress, as httpcore's does per send.
_PIECE = 1 << 16
_MAX_HEADER_LINE = 100 * 1024  # httpcore's h11 limit; aiohttp's default is 8 KiB

log = logging.getLogger("publisher.http")


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session for all requests, opened on first use inside the running loop."""

    def __init__(self, *, max_connections: int, keepalive_expiry: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl = ssl_context or httpx.create_ssl_context()  # one, shared: building is slow
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry, ssl=self._ssl)
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
            auto_decompress=False,  # httpx decodes Content-Encoding itself
            skip_auto_headers=_SKIP_AUTO_HEADERS, timeout=aiohttp.ClientTimeout(),
            max_line_size=_MAX_HEADER_LINE, max_field_size=_MAX_HEADER_LINE)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not log.isEnabledFor(logging.DEBUG):
            return await self._request(request)
        started = time.perf_counter()
        try:
            response = await self._request(request)
        except Exception as exc:
            _log_request(request, started, None, type(exc).__name__)
            raise
        _log_request(request, started, response.status_code, None)
        return response

    async def _request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp
        from yarl import URL

        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        headers = [(_text(k), _text(v)) for k, v in request.headers.raw
                   if k.lower() != b"transfer-encoding"]
        chunked = "transfer-encoding" in request.headers  # aiohttp refuses the header itself
        source: bytes | AsyncIterable[bytes] | None
        if isinstance(request.stream, httpx.ByteStream):
            source = request.content or None
        else:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            source = request.stream
        upload = None
        try:
            async with asyncio.timeout(None) as clock:
                body: bytes | _Upload | None
                if source is None or (isinstance(source, bytes) and len(source) <= _PIECE):
                    body = source
                else:
                    body = upload = _Upload(source, clock, timeouts.get("write"))
                try:
                    response = await session.request(
                        request.method, URL(str(request.url), encoded=True), data=body,
                        headers=headers, chunked=chunked or None, allow_redirects=False,
                        timeout=_client_timeout(timeouts.get("connect"), timeouts.get("read"),
                                                timeouts.get("pool")))
                finally:
                    if upload is not None:
                        upload.clock = None  # the timeout context ends here
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            if upload is not None and upload.error is not None:
                raise upload.error from upload.error.__cause__
            if clock.expired():
                raise httpx.WriteTimeout("the request body could not be written in time; "
                                         "part may have been sent", request=request) from exc
            raise _httpx_error(exc, request) from exc
        return httpx.Response(
            response.status, headers=list(response.raw_headers),
            stream=_ResponseStream(response, request), request=request,
            extensions={"http_version": b"HTTP/1.0" if response.version == (1, 0) else b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode("latin-1", "replace")})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Upload:
    """A request body fed to aiohttp piece by piece, each piece to be written within the write
    timeout; an error of the body's own source is kept, to be re-raised as itself."""

    def __init__(self, source: bytes | AsyncIterable[bytes], clock: asyncio.Timeout,
                 seconds: float | None) -> None:
        self.source = source
        self.clock: asyncio.Timeout | None = clock
        self.seconds = seconds
        self.error: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[bytes | memoryview]:
        chunks = _once(self.source) if isinstance(self.source, bytes) else self.source
        iterator = aiter(chunks)
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except Exception as exc:
                self.error = exc
                raise
            view = memoryview(chunk)
            for start in range(0, len(view), _PIECE):
                self._arm(None if self.seconds is None else loop.time() + self.seconds)
                yield view[start:start + _PIECE]
            self._arm(None)  # waiting on the source is not the write's time

    def _arm(self, deadline: float | None) -> None:
        if self.clock is not None:
            self.clock.reschedule(deadline)


def _log_request(request: httpx.Request, started: float, status: int | None,
                 error: str | None) -> None:
    """One DEBUG line per request: method, host, path, status (or error), time to the
    answer's headers. Never the query string (Instagram's token refresh carries the token
    there) nor a header; a path holding a secret of the current call is masked."""
    url = request.url
    host = f"{url.host}:{url.port}" if url.port else url.host  # never the userinfo
    path = redact.mask(url.path)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    log.debug("http %s %s%s -> %s in %.1f ms", request.method, host, path,
              status if error is None else error, elapsed_ms, extra={"fields": {
                  "event": "http_request", "method": request.method, "host": host,
                  "path": path, "status": status, "error": error, "ms": elapsed_ms}})


def _text(raw: bytes) -> str:
    # aiohttp writes headers as UTF-8: decoding so keeps httpx's bytes.
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            raise _httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        self._response.release()  # back to the pool, or closed if the body was not all read


@lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None,
                    pool: float | None) -> aiohttp.ClientTimeout:
    # aiohttp's `connect` spans waiting for a pool slot and connecting; no total, as httpx.
    import aiohttp

    whole = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=None, connect=whole, sock_connect=connect, sock_read=read)


def _httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception an aiohttp one amounts to; when in doubt, "maybe sent"."""
    import aiohttp
    from multidict import CIMultiDict, CIMultiDictProxy

    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientResponseError):
        # Its repr shows the request headers, and with them the bearer token.
        exc.request_info = aiohttp.RequestInfo(exc.request_info.url, exc.request_info.method,
                                               CIMultiDictProxy(CIMultiDict()),
                                               exc.request_info.real_url)
        exc.args = (exc.request_info, exc.history)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(f"timed out connecting ({name}); nothing was sent",
                                    request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(f"could not connect ({name}: {exc.strerror}); "
                                  "nothing was sent", request=request)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(f"unusable URL ({name}); nothing was sent",
                                         request=request)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(f"timed out waiting for the server ({name}) after the "
                                 "request was sent", request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                  | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(f"the server broke off or answered nonsense ({name}) "
                                         "after the request was sent", request=request)
    return httpx.ReadError(f"the connection failed ({name}) after the request was sent",
                           request=request)
