"""The bytes of the gateway's calls to IBPS: one request out, status, body and headers back.

`IbpsClient` owns everything a call means (time-outs, retries, circuits, parsing); a `Wire` only
moves bytes. In production it is aiohttp's: a batch exchange of 20 items cost about 100 us of CPU
with aiohttp against 700-1,100 us with httpx's client, 350-550 us with httpx over aiohttp's
transport (one process calling a local server in a loop, on this project's two-core machine).
Each batch makes two exchanges and each payment to a +86 number one proxy look-up, so the
difference is paid per payment. Tests that stand IBPS in for an `httpx` transport (a fake, or
mock_ibps in process) get `HttpxWire`, which behaves the same at this boundary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx

KEEPALIVE_S = 4.0
"""How long an idle connection is reused: under uvicorn's 5 s (mock_ibps's server), so the client
never sends on a connection the server is closing."""
CONNECT_S = 2.0
"""At most this long to open a connection, within the call's own time-out."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer read whole."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class WireTimeout(Exception):
    """No answer within the time-out: the call may or may not have taken effect."""


class WireError(Exception):
    """The connection failed (refused, reset, closed mid-answer): the outcome is unknown."""


class Wire(Protocol):
    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        params: Mapping[str, Any] | None,
        timeout_s: float,
    ) -> Answer:
        """`path` from the server's root; raises WireTimeout or WireError when there is no answer."""
        ...

    async def aclose(self) -> None: ...


_JSON = {"Content-Type": "application/json"}


class AiohttpWire:
    """Keep-alive connections to one server, made in the running loop on first use."""

    def __init__(self, root: str, *, token: str, max_connections: int) -> None:
        self._root = root.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=KEEPALIVE_S)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                cookie_jar=aiohttp.DummyCookieJar(),  # IBPS sets none; nothing to keep or send
                auto_decompress=False,
            )
        return self._session

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        params: Mapping[str, Any] | None,
        timeout_s: float,
    ) -> Answer:
        # each wait (for a pooled connection, to connect, for the next bytes) is bounded, not the
        # whole call, as httpx bounds them: a statement page of 50,000 rows comes while it flows
        timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout_s, sock_connect=min(timeout_s, CONNECT_S), sock_read=timeout_s
        )
        try:
            async with self._open().request(
                method,
                self._root + path,
                data=content,
                params=params,
                headers=_JSON if content is not None else None,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                return Answer(response.status, await response.read(), response.headers)
        except TimeoutError as exc:  # aiohttp's own time-outs are TimeoutErrors too
            raise WireTimeout(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise WireError(type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpxWire:
    """The same over an `httpx` transport (tests' fakes and in-process servers)."""

    def __init__(
        self, root: str, *, token: str, max_connections: int, transport: httpx.AsyncBaseTransport
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=root.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        params: Mapping[str, Any] | None,
        timeout_s: float,
    ) -> Answer:
        try:
            response = await self._http.request(
                method,
                path,
                content=content,
                headers=_JSON if content is not None else None,
                params=params,
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_S)),
            )
        except httpx.TimeoutException as exc:
            raise WireTimeout(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise WireError(type(exc).__name__) from exc
        return Answer(response.status_code, response.content, response.headers)

    async def aclose(self) -> None:
        await self._http.aclose()
