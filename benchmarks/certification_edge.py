"""What the certification edge costs a request that is not a run's: none certifying, or another bank.

    .venv/bin/python benchmarks/certification_edge.py [--calls 200000] [--rounds 5]

In process, no server and no database: `CertificationEdge` (fpslink.api.certification_edge) in front
of an ASGI app that answers at once, called with a bank's POST /v1/payments as the rate-limit layer
leaves it (the caller identified in the scope). Prints the best of `--rounds` rounds of `--calls`
calls, in nanoseconds per request, for the app alone, behind a layer that does nothing (what any
ASGI layer costs), behind the edge while no bank is certifying (the one check the hot path pays),
and while another bank is (a dictionary look-up more). For scale: the gateway spends about 150 us
of CPU per payment outside the payment service (fpslink.api.fast_payments). The machine's load
moves these figures by hundreds of nanoseconds: compare the lines of one run, and run it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpslink.api import routes
from fpslink.api.certification_edge import CertificationEdge
from fpslink.api.deps import IDENTIFIED
from fpslink.certification.domain import Scenario
from fpslink.certification.service import ActiveRun, ActiveRuns
from fpslink.money import Currency
from fpslink.principal import Principal

START: Message = {"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"2")]}
BODY: Message = {"type": "http.response.body", "body": b"{}"}


async def answered(scope: Scope, receive: Receive, send: Send) -> None:
    await send(START)
    await send(BODY)


class PassThrough:
    """An ASGI layer that does nothing: what any layer in front of the router costs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


async def receive() -> Message:
    return {"type": "http.request", "body": b"{}", "more_body": False}


async def sent(message: Message) -> None:
    return None


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/payments",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        IDENTIFIED: ("fpsl_key", Principal("HKPAYER")),
    }


async def per_call_ns(app: ASGIApp, calls: int, rounds: int) -> float:
    """The best round's nanoseconds per call."""
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter_ns()
        for _ in range(calls):
            await app(scope(), receive, sent)
        best = min(best, (time.perf_counter_ns() - began) / calls)
    return best


def other_bank_certifying() -> ActiveRuns:
    now = datetime.now(UTC)
    run = ActiveRun(
        "run",
        "HKOTHER",
        "HKACCOUNT",
        Currency.HKD,
        now,
        now,
        now + timedelta(hours=1),
        {10_101: Scenario.LOST_REPLY},
    )
    return ActiveRuns({"HKOTHER": run})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000, choices=range(1, 10_000_001), metavar="N")
    parser.add_argument("--rounds", type=int, default=5, choices=range(1, 51), metavar="N")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    route = next(
        r for r in routes.router.routes if isinstance(r, APIRoute) and r.endpoint is routes.create_payment
    )
    alone = await per_call_ns(answered, args.calls, args.rounds)
    layer = await per_call_ns(PassThrough(answered), args.calls, args.rounds)
    idle = await per_call_ns(CertificationEdge(answered, ActiveRuns(), route), args.calls, args.rounds)
    other = await per_call_ns(
        CertificationEdge(answered, other_bank_certifying(), route), args.calls, args.rounds
    )
    print(f"app alone:                          {alone:8.1f} ns/request")
    print(f"behind an empty layer:              {layer:8.1f} ns/request (+{layer - alone:.1f})")
    print(f"behind the edge, no bank certifies: {idle:8.1f} ns/request (+{idle - alone:.1f})")
    print(f"behind the edge, another bank does: {other:8.1f} ns/request (+{other - alone:.1f})")


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
