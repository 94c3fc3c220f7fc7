"""The wire under IbpsClient: an answer read whole, and each way of getting none told apart.

Against a real server on 127.0.0.1 (aiohttp's wire) and against httpx transports that fail (the
wire tests use): a time-out must stay a time-out and a broken connection an error, since the
client counts them apart and both leave a call's outcome unknown.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from fpslink.ibps_http import AiohttpWire, HttpxWire, Wire, WireError, WireTimeout

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


async def answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echoes the request line, the token and the body, with a header of its own."""
    while True:
        try:
            head, body = await _request(reader)
        except asyncio.IncompleteReadError:
            return
        line = head.split(b"\r\n", 1)[0]
        auth = next(h for h in head.split(b"\r\n") if h.lower().startswith(b"authorization:"))
        payload = line + b"|" + auth.split(b":", 1)[1].strip() + b"|" + body
        writer.write(
            b"HTTP/1.1 201 Created\r\nX-Next-After: 7\r\ncontent-length: %d\r\n\r\n%s"
            % (len(payload), payload)
        )
        await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _request(reader)
    await asyncio.sleep(30)


async def hanging_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
    await writer.drain()
    writer.close()


async def served(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def wire_on(handler: Handler) -> AsyncIterator[Wire]:
    async for root in served(handler):
        wire = AiohttpWire(root, token="tok", max_connections=4)
        try:
            yield wire
        finally:
            await wire.aclose()


async def test_an_answer_is_read_whole_with_status_headers_and_the_token_sent() -> None:
    async for wire in wire_on(answering):
        for _ in range(2):  # the second call reuses the kept-alive connection
            answer = await wire.send(
                "POST", "/ibps/v1/x", content=b'{"a":1}', params={"after": 3}, timeout_s=5
            )
            assert answer.status_code == 201
            assert answer.content == b'POST /ibps/v1/x?after=3 HTTP/1.1|Bearer tok|{"a":1}'
            assert answer.headers["x-next-after"] == "7"  # read case-insensitively


async def test_no_answer_within_the_time_out_is_a_timeout() -> None:
    async for wire in wire_on(silent):
        with pytest.raises(WireTimeout):
            await wire.send("GET", "/ibps/v1/x", content=None, params=None, timeout_s=0.2)


async def test_a_connection_closed_mid_answer_is_an_error() -> None:
    async for wire in wire_on(hanging_up):
        with pytest.raises(WireError):
            await wire.send("GET", "/ibps/v1/x", content=None, params=None, timeout_s=5)


async def test_a_refused_connection_is_an_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wire = AiohttpWire(f"http://127.0.0.1:{port}", token="tok", max_connections=1)
    try:
        with pytest.raises(WireError):
            await wire.send("GET", "/healthz", content=None, params=None, timeout_s=5)
    finally:
        await wire.aclose()


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ReadTimeout("slow"), WireTimeout),
        (httpx.ConnectTimeout("slow"), WireTimeout),
        (httpx.ConnectError("refused"), WireError),
        (httpx.RemoteProtocolError("closed"), WireError),
    ],
)
async def test_an_httpx_transport_fails_the_same_way(failure: Exception, expected: type[Exception]) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    wire = HttpxWire("http://ibps", token="tok", max_connections=1, transport=httpx.MockTransport(fail))
    try:
        with pytest.raises(expected):
            await wire.send("GET", "/x", content=None, params=None, timeout_s=1)
    finally:
        await wire.aclose()


async def test_an_httpx_transport_answers_alike() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok"
        return httpx.Response(201, content=request.url.query + b"|" + request.content, headers={"X-A": "1"})

    wire = HttpxWire("http://ibps", token="tok", max_connections=1, transport=httpx.MockTransport(answer))
    try:
        got = await wire.send("POST", "/x", content=b"{}", params={"after": 3}, timeout_s=1)
    finally:
        await wire.aclose()
    assert (got.status_code, got.content, got.headers["x-a"]) == (201, b"after=3|{}", "1")
