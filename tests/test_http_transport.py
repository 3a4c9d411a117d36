"""AiohttpTransport against real local servers (asyncio.start_server, scripted per test).

The failure tests check the line the adapters rely on: a "nothing was sent" exception only
when the request provably never left, a "maybe sent" one otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from publisher.app import http_client
from publisher.http_transport import AiohttpTransport
from publisher.settings import Settings

NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
            httpx.UnsupportedProtocol)
MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
              httpx.RemoteProtocolError, httpx.CloseError)
SECRET = "s3cr3t-bearer-token-value"


@dataclass
class Seen:
    """What arrived at a server: one entry per request, and the number of connections."""

    connections: int = 0
    requests: list[Request] = field(default_factory=list)


@dataclass
class Request:
    line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Seen], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request as it came over the wire (None at EOF)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    line, *lines = head[:-4].decode("latin-1").split("\r\n")
    headers = [(k, v.strip()) for k, v in (h.split(":", 1) for h in lines)]
    request = Request(line, headers, b"")
    if request.header("transfer-encoding") == "chunked":
        body = bytearray()
        while size := int((await reader.readline()).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readline()
        request.body = bytes(body)
    elif length := request.header("content-length"):
        request.body = await reader.readexactly(int(length))
    return request


def response(status: str = "200 OK", body: bytes = b"",
             headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def answer_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
    """Answers every request on the connection with JSON describing it."""
    while (request := await read_request(reader)) is not None:
        seen.requests.append(request)
        echo = {"line": request.line, "body": request.body.decode("latin-1")}
        writer.write(response(body=json.dumps(echo).encode(),
                              headers=(("Content-Type", "application/json"),)))
        await writer.drain()


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[str, Seen]]:
    """A server on 127.0.0.1 running `handler` per connection; yields (base URL, Seen)."""
    seen = Seen()
    tasks: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        seen.connections += 1
        try:
            await handler(reader, writer, seen)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def client(**timeouts: float) -> httpx.AsyncClient:
    transport = AiohttpTransport(max_connections=10, keepalive_expiry=4.0)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, **timeouts))


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from or during."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def assert_maybe_sent(exc: BaseException) -> None:
    assert isinstance(exc, MAYBE_SENT), repr(exc)
    assert not isinstance(exc, NOT_SENT), repr(exc)
    assert exc.__cause__ is not None


async def forever() -> None:
    await asyncio.Event().wait()


# --- round trips -------------------------------------------------------------------------

async def test_get_and_post_json_round_trip() -> None:
    async with serve(answer_all) as (url, seen), client() as http:
        got = await http.get(f"{url}/a%2Fb/c%20d?x=%2F&y=1+2")
        posted = await http.post(f"{url}/items", json={"name": "Zoë", "n": 1})
    assert got.status_code == 200
    # the URL goes out exactly as httpx encoded it: nothing re-quoted or normalised
    assert got.json()["line"] == "GET /a%2Fb/c%20d?x=%2F&y=1+2 HTTP/1.1"
    assert posted.json()["line"] == "POST /items HTTP/1.1"
    sent = seen.requests[1]
    assert sent.header("content-type") == "application/json"
    assert sent.header("content-length") == str(len(sent.body))
    assert json.loads(sent.body) == {"name": "Zoë", "n": 1}
    assert got.http_version == "HTTP/1.1"
    assert got.reason_phrase == "OK"


async def test_headers_go_out_as_httpx_made_them_and_come_back_all() -> None:
    async def multi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    seen: Seen) -> None:
        request = await read_request(reader)
        assert request is not None
        seen.requests.append(request)
        writer.write(response("201 Made Here", b"{}", (
            ("Set-Cookie", "a=1; Path=/"), ("X-Multi", "one"), ("Set-Cookie", "b=2"),
            ("X-Multi", "two"))))
        await writer.drain()

    async with serve(multi) as (url, seen), client() as http:
        request = http.build_request("POST", f"{url}/h", content=b"no type", headers=[
            ("X-Trace", "abc"), ("X-Dup", "1"), ("X-Dup", "2"), ("Cookie", "mine=1"),
            ("X-Name", "Zoë".encode())])
        for name in ("User-Agent", "Accept", "Accept-Encoding"):
            del request.headers[name]  # nor may aiohttp put in its own
        answer = await http.send(request)
    sent = seen.requests[0]
    # byte for byte what httpx built, in its order: aiohttp added and dropped nothing
    assert sent.headers == [(k.decode("latin-1"), v.decode("latin-1"))
                            for k, v in request.headers.raw]
    assert sent.header("content-type") is None
    assert answer.status_code == 201
    assert answer.reason_phrase == "Made Here"
    assert answer.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]
    assert answer.headers.get_list("x-multi") == ["one", "two"]
    assert [k for k, _ in answer.headers.raw] == [
        b"Content-Length", b"Set-Cookie", b"X-Multi", b"Set-Cookie", b"X-Multi"]


async def test_compressed_response_is_decoded_once_by_httpx() -> None:
    packed = gzip.compress(b"hello " * 1000)

    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      seen: Seen) -> None:
        await read_request(reader)
        writer.write(response(body=packed, headers=(("Content-Encoding", "gzip"),)))
        await writer.drain()

    async with serve(gzipped) as (url, _), client() as http:
        answer = await http.get(url)
        raw = b""
        async with http.stream("GET", url) as streamed:
            async for piece in streamed.aiter_raw():
                raw += piece
    assert answer.content == b"hello " * 1000
    assert raw == packed  # aiohttp left the body alone


# --- bodies --------------------------------------------------------------------------------

async def test_streamed_body_with_content_length_is_sent_as_is() -> None:
    pieces = [bytes([i]) * 100_000 for i in range(5)]

    async def source() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async with serve(answer_all) as (url, seen), client() as http:
        answer = await http.put(f"{url}/upload", content=source(), headers={
            "Content-Length": "500000", "Content-Type": "application/octet-stream"})
    assert answer.status_code == 200
    sent = seen.requests[0]
    assert sent.header("transfer-encoding") is None
    assert sent.header("content-length") == "500000"
    assert sent.body == b"".join(pieces)


async def test_streamed_body_without_length_goes_chunked() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    async with serve(answer_all) as (url, seen), client() as http:
        await http.post(f"{url}/upload", content=source())
    sent = seen.requests[0]
    assert sent.header("transfer-encoding") == "chunked"
    assert sent.header("content-length") is None
    assert sent.body == b"first,second"


async def test_large_bytes_body_arrives_whole() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: fed to aiohttp in pieces
    async with serve(answer_all) as (url, seen), client() as http:
        await http.put(f"{url}/chunk", content=body)
    assert seen.requests[0].header("content-length") == str(len(body))
    assert seen.requests[0].body == body


async def test_response_streams_chunk_by_chunk() -> None:
    go_on = asyncio.Event()

    async def in_two_parts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           seen: Seen) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nfirst")
        await writer.drain()
        await go_on.wait()  # the rest only once the client has the first part
        writer.write(b"end")
        await writer.drain()

    async with serve(in_two_parts) as (url, _), client() as http, \
            http.stream("GET", url) as streamed:
        parts = aiter(streamed.aiter_bytes())
        first = await asyncio.wait_for(anext(parts), 5)
        go_on.set()
        rest = [piece async for piece in parts]
    assert first == b"first"
    assert b"".join(rest) == b"end"


async def test_body_source_error_propagates_as_itself() -> None:
    broken = httpx.ReadError("the media download broke off")

    async def source() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise broken

    async with serve(answer_all) as (url, _), client() as http:
        with pytest.raises(httpx.ReadError) as caught:
            await http.put(f"{url}/upload", content=source(),
                           headers={"Content-Length": "200000"})
    assert caught.value is broken


# --- the pool --------------------------------------------------------------------------

async def test_keep_alive_reuses_one_connection() -> None:
    async with serve(answer_all) as (url, seen), client() as http:
        await http.get(f"{url}/one")
        await http.post(f"{url}/two", content=b"2")
        async with http.stream("GET", f"{url}/three") as streamed:
            await streamed.aread()
    assert len(seen.requests) == 3
    assert seen.connections == 1


def test_http_client_can_be_built_outside_a_loop() -> None:
    http = http_client(Settings(max_concurrency=4))

    async def use() -> int:
        async with serve(answer_all) as (url, _), http:
            return (await http.get(url)).status_code

    assert asyncio.run(use()) == 200


async def test_the_run_client_keeps_no_cookies() -> None:
    """A Set-Cookie from a platform is not sent back on the next request."""
    async def set_cookie(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         seen: Seen) -> None:
        while (request := await read_request(reader)) is not None:
            seen.requests.append(request)
            writer.write(response(headers=(("Set-Cookie", "session=abc; Path=/"),)))
            await writer.drain()

    async with serve(set_cookie) as (url, seen), http_client(Settings(max_concurrency=4)) as http:
        await http.get(f"{url}/first")
        await http.get(f"{url}/second")
        assert not http.cookies
    assert [r.header("cookie") for r in seen.requests] == [None, None]


# --- nothing was sent ---------------------------------------------------------------------

async def test_connection_refused_is_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client() as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(f"http://127.0.0.1:{port}/")
    assert isinstance(caught.value.__cause__, OSError)


async def test_unknown_host_is_connect_error() -> None:
    async with client() as http:
        with pytest.raises((httpx.ConnectError, httpx.ConnectTimeout)):  # a slow resolver
            await http.get("http://no-such-host.invalid/")


async def test_connect_timeout_is_connect_timeout() -> None:
    # A listening socket whose accept queue is full drops further SYNs: connecting hangs.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                fillers.append(filler)
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            await asyncio.sleep(0.1)
            async with client(connect=0.5) as http:
                try:
                    await http.get(f"http://127.0.0.1:{port}/")
                except httpx.ConnectError as exc:
                    pytest.skip(f"this machine refuses rather than hangs the connect ({exc!r})")
                except httpx.ConnectTimeout as exc:
                    failure = exc
                else:
                    pytest.skip("this machine accepted the connection")
            assert failure.__cause__ is not None
        finally:
            for filler in fillers:
                filler.close()


async def test_pool_wait_timeout_is_not_sent() -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   seen: Seen) -> None:
        await read_request(reader)
        await release.wait()
        writer.write(response())
        await writer.drain()

    transport = AiohttpTransport(max_connections=1, keepalive_expiry=4.0)
    async with serve(slow) as (url, seen), httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(5.0, pool=0.2, connect=0.2)) as http:
        busy = asyncio.create_task(http.get(url))
        await asyncio.sleep(0.1)
        with pytest.raises(NOT_SENT):
            await http.get(url)  # waits for the only connection, in vain
        release.set()
        await busy
    assert seen.connections == 1


async def test_non_http_scheme_is_unsupported_protocol() -> None:
    async with AiohttpTransport(max_connections=1, keepalive_expiry=4.0) as transport:
        with pytest.raises(httpx.UnsupportedProtocol):
            await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/x"))


# --- maybe sent ----------------------------------------------------------------------------

async def test_closed_after_reading_the_request_is_maybe_sent() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      seen: Seen) -> None:
        seen.requests.append(await read_request(reader))  # type: ignore[arg-type]

    async with serve(hang_up) as (url, seen), client() as http:
        with pytest.raises(httpx.HTTPError) as caught:
            await http.post(f"{url}/publish", json={"post": 1})
    assert_maybe_sent(caught.value)
    assert len(seen.requests) == 1


async def test_post_on_a_dead_kept_alive_connection_is_not_resent() -> None:
    """The case a connection pool may 'helpfully' retry: a reused connection that the server
    closes after reading the request. A POST must fail as maybe-sent, not go out again."""
    async def once_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                seen: Seen) -> None:
        first = await read_request(reader)
        seen.requests.append(first)  # type: ignore[arg-type]
        writer.write(response(body=b"{}"))
        await writer.drain()
        seen.requests.append(await read_request(reader))  # type: ignore[arg-type]

    async with serve(once_then_hang_up) as (url, seen), client() as http:
        await http.get(f"{url}/first")
        with pytest.raises(httpx.HTTPError) as caught:
            await http.post(f"{url}/publish", json={"post": 1})
        await asyncio.sleep(0.1)  # a re-send would arrive on a new connection by now
    assert_maybe_sent(caught.value)
    assert seen.connections == 1
    assert [r.line for r in seen.requests] == ["GET /first HTTP/1.1", "POST /publish HTTP/1.1"]


async def test_reset_after_reading_the_request_is_maybe_sent() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    seen: Seen) -> None:
        seen.requests.append(await read_request(reader))  # type: ignore[arg-type]
        linger = struct.pack("ii", 1, 0)  # close with a RST, not a FIN
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        writer.transport.abort()

    async with serve(reset) as (url, seen), client() as http:
        with pytest.raises(httpx.HTTPError) as caught:
            await http.post(f"{url}/publish", json={"post": 1})
    assert isinstance(caught.value, httpx.ReadError)
    assert_maybe_sent(caught.value)
    assert len(seen.requests) == 1


async def test_no_answer_is_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        await read_request(reader)
        await forever()

    async with serve(silent) as (url, _), client(read=0.3) as http:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await http.post(url, json={})
    assert_maybe_sent(caught.value)


async def test_server_not_reading_the_upload_is_write_timeout() -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   seen: Seen) -> None:
        await forever()

    async def source() -> AsyncIterator[bytes]:
        block = b"\0" * (1 << 20)
        for _ in range(256):  # far more than the socket buffers hold
            yield block

    async with serve(deaf) as (url, _), client(write=0.3) as http:
        with pytest.raises(httpx.WriteTimeout) as caught:
            await asyncio.wait_for(http.put(url, content=source()), 10)
    assert_maybe_sent(caught.value)


async def test_garbage_status_line_is_remote_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      seen: Seen) -> None:
        await read_request(reader)
        writer.write(b"HELLO THERE\r\n\r\n")
        await writer.drain()
        await forever()

    async with serve(garbage) as (url, _), client() as http:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await http.get(url)
    assert_maybe_sent(caught.value)


async def test_server_dying_mid_body_fails_the_body_read() -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   seen: Seen) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 100)
        await writer.drain()

    async with serve(half) as (url, _), client() as http, http.stream("GET", url) as streamed:
        assert streamed.status_code == 200
        with pytest.raises(httpx.HTTPError) as caught:
            async for _ in streamed.aiter_bytes():
                pass
    assert isinstance(caught.value, httpx.ReadError | httpx.RemoteProtocolError)
    assert_maybe_sent(caught.value)


async def test_body_read_timeout_is_read_timeout() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     seen: Seen) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc")
        await writer.drain()
        await forever()

    async with serve(stalls) as (url, _), client(read=0.3) as http, \
            http.stream("GET", url) as streamed:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await streamed.aread()
    assert_maybe_sent(caught.value)


# --- secrets -----------------------------------------------------------------------------

async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   seen: Seen) -> None:
    await read_request(reader)


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   seen: Seen) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 9000 Nope\r\nX-Bad\r\n\r\n")
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  seen: Seen) -> None:
    await read_request(reader)
    await forever()


async def _half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                seen: Seen) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc")
    await writer.drain()


@pytest.mark.parametrize("handler", [_hang_up, _garbage, _silent, _half])
async def test_tokens_never_appear_in_exceptions(handler: Handler) -> None:
    headers = {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET}
    async with serve(handler) as (url, _), client(read=0.3) as http:
        with pytest.raises(httpx.HTTPError) as caught:
            async with http.stream("POST", f"{url}/p", json={}, headers=headers) as streamed:
                await streamed.aread()
    for exc in chain(caught.value):
        assert SECRET not in str(exc), repr(exc)
        assert SECRET not in repr(exc), repr(exc)
        assert SECRET not in repr(exc.args)


async def test_token_not_in_connect_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client() as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(f"http://127.0.0.1:{port}/",
                           headers={"Authorization": f"Bearer {SECRET}"})
    for exc in chain(caught.value):
        assert SECRET not in str(exc) + repr(exc)
