"""A minimal HTTP/1.1 keep-alive client on asyncio streams: a bounded pool of persistent connections.

It speaks only what the benchmark needs (requests with a body or none, answers with Content-Length,
no chunked bodies, no redirects, no TLS), which makes it several times cheaper per request than a
general client. The skeleton uses it for its one hop and the throughput benchmark as its load
generator, so both sides of the comparison pay the same client cost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
IDLE_S = 2.0
"""A connection idle longer than this is dropped rather than reused: uvicorn closes idle keep-alive
connections after 5 s, and a request written into one the server is closing would fail."""


class HttpError(Exception):
    """The connection failed or the answer could not be read; the connection is dropped."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Up to `size` persistent connections to one host; a request waits for a free one."""

    def __init__(self, host: str, port: int, *, size: int, timeout_s: float = 30.0) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._idle: asyncio.LifoQueue[_Connection] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(size)
        self._host_header = f"{host}:{port}".encode()

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        """Send one request and read its whole answer; raises HttpError on any transport failure."""
        head = [f"{method} {path} HTTP/1.1\r\nHost: ".encode(), self._host_header, b"\r\n"]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n".encode())
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body))
        head.append(b"\r\n")
        payload = b"".join(head) + body
        async with self._slots:
            conn = await self._take()
            try:
                answer, keep_alive = await asyncio.wait_for(self._exchange(conn, payload), self.timeout_s)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                conn.close()
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                conn.close()
                raise
            if keep_alive:
                conn.idle_since = time.monotonic()
                self._idle.put_nowait(conn)
            else:
                conn.close()
            return answer

    async def _take(self) -> _Connection:
        now = time.monotonic()
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if now - conn.idle_since < IDLE_S and not conn.reader.at_eof():
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=MAX_HEADER_BYTES), self.timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise HttpError(f"connect to {self.host}:{self.port}: {exc}") from exc
        return _Connection(reader, writer)

    @staticmethod
    async def _exchange(conn: _Connection, payload: bytes) -> tuple[Answer, bool]:
        conn.writer.write(payload)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        keep_alive = True
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"transfer-encoding":
                raise ValueError("chunked answers are not supported")
            elif lowered == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        if length > MAX_BODY_BYTES:
            raise ValueError(f"answer of {length} bytes is too large")
        body = await conn.reader.readexactly(length) if length else b""
        return Answer(status, body), keep_alive

    async def aclose(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()
