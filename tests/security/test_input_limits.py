"""Request limits before any work: bodies (declared or chunked), query strings and request heads.

The gateway runs as `fpslink serve` would run it (a real uvicorn process, one worker), and the
requests are written on raw sockets, so what is measured is what a client can make a worker hold:
how much of a body is read before the answer, and the worker's peak memory. Without the limits an
unauthenticated 50 MiB body to POST /v1/payments was read whole before its 401 (peak memory up by
hundreds of MB), a chunked pacs.008 was read whole before its 64 KiB check, and a header that never
ended was kept growing for as long as the client sent it.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_stack import Stack
from gw_support import IBPS_TOKEN, OPERATOR_KEY, bank_code, free_port, start_process, stop_process

from fpslink.app import create_app
from fpslink.config import Settings

MIB = 1024 * 1024
JSON_LIMIT = Settings().max_body_bytes
ISO_LIMIT = Settings().max_iso20022_body_bytes
HEAD_LIMIT = Settings().max_header_bytes
QUERY_LIMIT = Settings().max_query_bytes
CHUNK = 16 * 1024
PACE_S = 0.02
"""Wait after each chunk for an answer: the socket buffers then hold at most a chunk or two, so the
bytes sent when the answer comes show how much the gateway read."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int
    """Bytes of the body (or of the unfinished head) written before the answer came."""

    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type", "").startswith("application/problem+json"), self
        body: dict[str, Any] = json.loads(self.body)
        assert body["status"] == self.status and body["title"] and body["detail"], body
        return body


@dataclass(frozen=True)
class Gateway:
    port: int
    process: subprocess.Popen[bytes]
    bank_key: str

    @property
    def pid(self) -> int:
        return self.process.pid


@pytest.fixture(scope="module")
async def gateway(stack: Stack) -> AsyncIterator[Gateway]:
    port = free_port()
    process = await asyncio.to_thread(
        start_process,
        ["-m", "fpslink.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
        env={
            "FPSLINK_DATABASE_URL": stack.gateway_db,
            "FPSLINK_IBPS_URL": stack.ibps_url,
            "FPSLINK_IBPS_TOKEN": IBPS_TOKEN,
            "FPSLINK_OPERATOR_KEY": OPERATOR_KEY,
            "FPSLINK_RECOVERY_ENABLED": "false",
            "FPSLINK_WEBHOOKS_ENABLED": "false",
        },
        health_url=f"http://127.0.0.1:{port}/healthz",
        log=stack.logs / f"gateway-limits-{port}.log",
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            code = bank_code("HK")
            made = await http.post(
                "/v1/participants",
                json={"participant_id": code, "name": code, "system": "FPS"},
                headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
            )
            assert made.status_code == 201, made.text
        yield Gateway(port, process, made.json()["api_key"])
    finally:
        await asyncio.to_thread(stop_process, process)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _readable(sock: socket.socket, wait_s: float) -> bool:
    return bool(select.select([sock], [], [], wait_s)[0])


def _read_answer(sock: socket.socket, sent: int, timeout_s: float) -> Answer:
    sock.settimeout(timeout_s)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            more = sock.recv(65536)
            if not more:
                break
            body += more
    except (ConnectionResetError, TimeoutError):
        if not data:
            raise
    assert data, "no answer"
    return Answer(int(lines[0].split()[1]), headers, body, sent)


def exchange(
    port: int, head: bytes, parts: Iterator[bytes], *, pace_s: float = 0.0, timeout_s: float = 20
) -> Answer:
    """Write `head`, then `parts` one by one until the gateway answers; read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(head)
        sent = 0
        for part in parts:
            if _readable(sock, pace_s):
                break
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(part)
        return _read_answer(sock, sent, timeout_s)


def request_head(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(total: int, size: int = CHUNK, fill: bytes = b" ") -> Iterator[bytes]:
    """A chunked body of `total` bytes of `fill` in chunks of `size`, then the last chunk."""
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + fill * size + b"\r\n"
    yield b"0\r\n\r\n"


def raw(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


async def test_an_unauthenticated_50_mib_body_is_refused_before_it_is_read(gateway: Gateway) -> None:
    before = peak_rss(gateway.pid)
    head = request_head(
        "POST",
        "/v1/payments",
        gateway.port,
        {"Content-Type": "application/json", "Content-Length": str(50 * MIB), "Idempotency-Key": "k1"},
    )
    answer = await asyncio.to_thread(exchange, gateway.port, head, raw(50 * MIB), pace_s=0.002)
    assert answer.status == 413, answer
    assert answer.problem()["code"] == "PAYLOAD_TOO_LARGE"
    assert answer.headers.get("connection") == "close"
    assert answer.sent < 4 * MIB, "the answer came only after most of the body was sent"
    grown = peak_rss(gateway.pid) - before
    assert grown < 16 * MIB, f"the worker's peak memory grew by {grown / MIB:.0f} MiB"


async def test_a_chunked_body_is_counted_as_it_arrives(gateway: Gateway) -> None:
    head = request_head(
        "POST",
        "/v1/payments",
        gateway.port,
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked", "Idempotency-Key": "k2"},
    )
    answer = await asyncio.to_thread(exchange, gateway.port, head, chunked(2 * MIB), pace_s=PACE_S)
    assert answer.status == 413, answer
    assert answer.problem()["code"] == "PAYLOAD_TOO_LARGE"
    assert answer.sent <= JSON_LIMIT + 4 * (CHUNK + 16), f"{answer.sent} bytes read before the refusal"


async def test_a_chunked_pacs008_is_refused_past_its_limit_not_read_whole(gateway: Gateway) -> None:
    head = request_head(
        "POST",
        "/v1/iso20022/pacs.008",
        gateway.port,
        {
            "Authorization": f"Bearer {gateway.bank_key}",
            "Content-Type": "application/xml",
            "Transfer-Encoding": "chunked",
        },
    )
    answer = await asyncio.to_thread(exchange, gateway.port, head, chunked(2 * MIB), pace_s=PACE_S)
    assert answer.status == 413, answer
    assert answer.problem()["code"] == "PAYLOAD_TOO_LARGE"
    assert answer.sent <= ISO_LIMIT + 4 * (CHUNK + 16), f"{answer.sent} bytes read before the refusal"


async def test_bodies_within_the_limits_still_pass(gateway: Gateway) -> None:
    """A JSON body just under the limit reaches validation (422), chunked or not."""
    body = json.dumps({"debtor_account_id": "HKX", "remittance_info": "x" * (JSON_LIMIT - 200)}).encode()
    assert len(body) < JSON_LIMIT
    headers = {"Authorization": f"Bearer {gateway.bank_key}", "Idempotency-Key": "k3"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as http:
        plain = await http.post(
            "/v1/payments", content=body, headers={**headers, "Content-Type": "application/json"}
        )

        async def stream() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        streamed = await http.post(
            "/v1/payments", content=stream(), headers={**headers, "Content-Type": "application/json"}
        )
    assert plain.status_code == 422 and plain.json()["code"] == "VALIDATION_ERROR", plain.text
    assert streamed.status_code == 422 and streamed.json()["code"] == "VALIDATION_ERROR", streamed.text


async def test_a_long_query_string_is_refused(gateway: Gateway) -> None:
    auth = {"Authorization": f"Bearer {gateway.bank_key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as http:
        fine = await http.get("/v1/payments", params={"pad": "x" * (QUERY_LIMIT - 10)}, headers=auth)
        long = await http.get("/v1/payments", params={"pad": "x" * QUERY_LIMIT}, headers=auth)
    assert fine.status_code == 200, fine.text
    assert long.status_code == 414, long.text
    assert long.headers["content-type"] == "application/problem+json"
    assert long.json()["code"] == "URI_TOO_LONG"


async def test_a_large_head_is_refused(gateway: Gateway) -> None:
    fine = request_head("GET", "/healthz", gateway.port, {"X-Pad": "x" * (HEAD_LIMIT - 200)})
    answer = await asyncio.to_thread(exchange, gateway.port, fine, iter(()))
    assert answer.status == 200, answer
    for headers in (
        {"X-Pad": "x" * (HEAD_LIMIT + 1)},
        {f"X-Pad-{i}": "x" * 1000 for i in range(HEAD_LIMIT // 1000 + 1)},
    ):
        answer = await asyncio.to_thread(
            exchange, gateway.port, request_head("GET", "/healthz", gateway.port, headers), iter(())
        )
        assert answer.status == 431, answer
        assert answer.problem()["code"] == "REQUEST_HEADERS_TOO_LARGE"
        assert answer.headers.get("connection") == "close"


def _pipelined(port: int, data: bytes, answers: int) -> list[int]:
    """Statuses of the answers to requests written back to back in one write."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        received = b""
        while received.count(b"HTTP/1.1 ") < answers:
            more = sock.recv(65536)
            if not more:
                break
            received += more
    return [int(part[:3]) for part in received.split(b"HTTP/1.1 ")[1:]]


async def test_heads_after_a_body_in_the_same_read_are_measured_alone(gateway: Gateway) -> None:
    """A body's bytes in the read where the next request begins do not count toward that head."""
    body = b" " * (JSON_LIMIT - 100)
    first = request_head(
        "POST",
        "/v1/payments",
        gateway.port,
        {"Content-Type": "application/json", "Content-Length": str(len(body)), "Idempotency-Key": "k4"},
    )
    second = request_head("GET", "/healthz", gateway.port, {"X-Pad": "x" * (HEAD_LIMIT // 2)})
    statuses = await asyncio.to_thread(_pipelined, gateway.port, first + body + second, 2)
    assert statuses[1:] == [200] and statuses[0] != 431, statuses


async def test_a_header_that_never_ends_is_refused_while_it_arrives(gateway: Gateway) -> None:
    before = peak_rss(gateway.pid)
    head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\nX-Pad: ".encode()
    endless = (b"x" * CHUNK for _ in range(64 * MIB // CHUNK))
    started = time.monotonic()
    answer = await asyncio.to_thread(exchange, gateway.port, head, endless, pace_s=PACE_S)
    assert answer.status == 431, answer
    assert answer.problem()["code"] == "REQUEST_HEADERS_TOO_LARGE"
    assert answer.sent <= HEAD_LIMIT + 4 * CHUNK, f"{answer.sent} bytes of one header read"
    assert time.monotonic() - started < 10
    assert peak_rss(gateway.pid) - before < 16 * MIB


def test_the_payment_fast_path_stays_behind_the_limits() -> None:
    """The limits sit in front of the whole app: the hot path for POST /v1/payments is still there,
    behind the certification edge (which reads a run's payment bodies after the limits too)."""
    from fpslink.api.certification_edge import CertificationEdge
    from fpslink.api.fast_payments import FastPayments

    app = create_app(Settings())
    edge = app.router.middleware_stack
    assert isinstance(edge, CertificationEdge) and isinstance(edge.app, FastPayments)
