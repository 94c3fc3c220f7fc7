"""uvicorn's httptools protocol with a bound on each request's head (request line and headers).

httptools keeps a header's name and value until the header ends, and uvicorn keeps every header
until the head ends, with no limit: one client could make a worker hold any amount of memory by
never finishing a header. The bound is uvicorn's `h11_max_incomplete_event_size` (h11's own limit
on the same thing, set from `FPSLINK_MAX_HEADER_BYTES` by `fpslink.serving`), so both parsers
refuse the same heads.

Two checks, both cheap next to parsing. While a head is incomplete, the bytes received since it
began, counted so as never to exceed the head's true size (the read in which the request began is
left out), must stay within the bound. Once it is complete, its exact size must; it is summed only
when the reads since the head began, counted so as never to fall short of its size, pass the bound,
so an ordinary request pays two additions and a comparison (its head arrives in one read).
Past the bound the answer is 431 REQUEST_HEADERS_TOO_LARGE as problem+json, and the connection is
closed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from fpslink.errors import PROBLEM_BASE

DEFAULT_MAX_HEAD = 16 * 1024
HEAD_TOO_LARGE_CODE = "REQUEST_HEADERS_TOO_LARGE"


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing; httptools re-raises it as a parser error."""


class HeadLimitedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that answers 431 to a request whose head passes the configured bound."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD
        self._in_head = True
        self._head_seen = 0
        """Bytes of the reads that began inside the current head: never more than the head."""
        self._fed = 0
        self._fed_before = 0
        self._head_from = 0
        """Bytes fed before the read in which the current head began: `_fed - _head_from` is never
        less than the head."""
        self._head_refused = False

    def data_received(self, data: bytes) -> None:
        self._fed_before = self._fed
        self._fed += len(data)
        if self._in_head:
            self._head_seen += len(data)
        super().data_received(data)
        if self._in_head and self._head_seen > self.max_head and not self._head_refused:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_seen = 0
        self._head_from = self._fed_before

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._fed - self._head_from > self.max_head:
            # request line (method, spaces, version, CRLF: 20 bytes besides the URL) and headers
            size = len(self.url) + 20 + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.max_head:
                self._head_refused = True
                raise HeadTooLarge  # httptools stops and raises; uvicorn then calls send_400_response
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_refused:
            self._head_refused = False  # the answer goes once
            self._refuse_head()
            return
        super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._head_refused = True
        self.logger.warning("request head over %d bytes refused (431)", self.max_head)
        body = json.dumps(
            {
                "type": PROBLEM_BASE + HEAD_TOO_LARGE_CODE.lower().replace("_", "-"),
                "title": "Request header fields too large",
                "status": 431,
                "detail": f"the request line and headers exceed {self.max_head} bytes",
                "code": HEAD_TOO_LARGE_CODE,
            }
        ).encode()
        head = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/problem+json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
            ]
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
