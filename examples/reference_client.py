"""A bank's client of the link that handles its hard cases, and runs the certification kit with them.

    .venv/bin/python -m examples.reference_client --base-url http://127.0.0.1:8000 --api-key "$KEY" \\
        --debtor HKDEMO0001 --creditor +8613800138000 --receiver 127.0.0.1:9000

It starts a webhook receiver, registers it, starts a certification run (docs/certification.md), pays
every scenario's payment as the run instructs, uploads its own record of them, completes the run and
prints the result; it exits 0 when the run passed and 1 when it failed, so a bank's CI can run it.
What makes it pass is in `Client` and `Receiver`:

* a payment is retried with the **same Idempotency-Key and the same body** when no answer came (a lost
  reply, a 503) or the first attempt is still running (409 IDEMPOTENCY_IN_PROGRESS), after waiting
  what `Retry-After` says; a replay (`Idempotent-Replayed: true`) is the answer;
* a 429 is retried only after `Retry-After`;
* a `PENDING` payment is polled no more often than every second until it is final;
* a `REJECTED` payment is final, whatever its code: a business rejection is never sent again;
* a payment with a quote whose answer is `QUOTE_EXPIRED` gets a new quote and a new key;
* the receiver checks the signature over the raw body and its freshness before anything else, answers
  2xx to an event it has already processed (dropping it by event id), and 401 to one that does not
  verify.

Only the standard library and httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

POLL_S = 1.0
"""The documented polling interval of GET /v1/payments/{id}."""
TOLERANCE_S = 300
"""A webhook's `t` may be this far from our clock."""
MAX_ATTEMPTS = 8
"""Attempts of one payment (all with the same key) before the client gives up and asks a human."""
MAX_POLLS = 120


class GaveUp(Exception):
    """The payment's outcome is unknown after every attempt: a human must look (never pay again blindly)."""


# the webhook receiver -----------------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver on host:port: verifies, drops duplicates by event id, records events."""

    host: str
    port: int
    secret: bytes = b""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Event id -> the event, each processed once."""
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/fpslink-events"

    def verified(self, signature: str, body: bytes) -> bool:
        """The signature over `t.` + the raw body, compared in constant time, and `t` fresh."""
        fields = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
        try:
            timestamp = int(fields["t"])
        except (KeyError, ValueError):
            return False
        expected = hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return abs(time.time() - timestamp) <= TOLERANCE_S and hmac.compare_digest(
            expected, fields.get("v1", "")
        )

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        """The HTTP status to answer a delivery with."""
        if not self.verified(headers.get("fpslink-signature", ""), body):
            with self.lock:
                self.refused.append(headers.get("fpslink-event-id", ""))
            return 401
        event = json.loads(body)
        with self.lock:
            if event["event_id"] in self.events:
                return 200  # seen before: acknowledged, not processed again
            self.events[event["event_id"]] = event
        return 204

    async def wait_for(self, event: str, certification_id: str, timeout_s: float = 15.0) -> bool:
        """Whether the run's event arrived within `timeout_s` (checked every 0.1 s)."""
        for _ in range(int(timeout_s / 0.1)):
            with self.lock:
                if any(
                    e["event"] == event
                    and e.get("certification", {}).get("certification_id") == certification_id
                    for e in self.events.values()
                ):
                    return True
            await asyncio.sleep(0.1)
        return False

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.answer({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# the payment client -------------------------------------------------------------------------------


def retry_after(response: httpx.Response, default: float = 1.0) -> float:
    try:
        return max(float(response.headers.get("retry-after", default)), 0.0)
    except ValueError:
        return default


@dataclass
class Client:
    """Payments done right: one key per payment, kept across every retry of it."""

    http: httpx.AsyncClient
    book: list[dict[str, Any]] = field(default_factory=list)
    """Every payment this client knows the final outcome of: its own record."""
    sleep: Callable[[float], Any] = asyncio.sleep

    async def pay(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one payment until it is answered, then poll it until it is final; book it."""
        key = str(uuid.uuid4())
        payment: dict[str, Any] | None = None
        for _ in range(MAX_ATTEMPTS):
            try:
                response = await self.http.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:  # no answer: the payment may have been made; ask again, same key
                await self.sleep(1.0)
                continue
            if response.status_code in (201, 202):
                payment = response.json()
                break
            code = response.json().get("code") if response.status_code >= 400 else None
            if response.status_code in (409, 429, 503) and code in (
                "IDEMPOTENCY_IN_PROGRESS",
                "RATE_LIMITED",
                "DATABASE_UNAVAILABLE",
                "IBPS_UNAVAILABLE",
            ):
                await self.sleep(retry_after(response))
                continue
            raise RuntimeError(f"payment refused: {response.status_code} {response.text}")
        if payment is None:
            raise GaveUp(f"no answer for Idempotency-Key {key} after {MAX_ATTEMPTS} attempts")
        for _ in range(MAX_POLLS):
            if payment["status"] != "PENDING":
                break
            await self.sleep(POLL_S)
            polled = await self.http.get(f"/v1/payments/{payment['payment_id']}")
            if polled.status_code == 200:
                payment = polled.json()
        self.book.append(payment)
        return payment

    async def pay_with_quote(self, quote: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Quote, then pay at that rate; an expired quote is quoted again (and paid under a new key)."""
        for _ in range(3):
            quoted = await self.http.post("/v1/quotes", json=quote)
            quoted.raise_for_status()
            payment = await self.pay({**body, "quote_id": quoted.json()["quote_id"]})
            if payment.get("reason_code") != "QUOTE_EXPIRED":
                return payment
        return payment


def record_of(book: list[dict[str, Any]]) -> dict[str, Any]:
    """The client's own record of its payments, in the run's record format."""
    return {
        "payments": [
            {
                "payment_id": p["payment_id"],
                "status": p["status"],
                "source_amount": p.get("source_amount"),
                "source_currency": p.get("source_currency"),
                "reason_code": p.get("reason_code"),
            }
            for p in book
        ]
    }


# a run of the certification kit ------------------------------------------------------------------


def creditor_of(creditor: str) -> dict[str, str]:
    return (
        {"proxy_type": "MOBILE", "proxy_value": creditor}
        if creditor.startswith("+")
        else {"account_id": creditor}
    )


async def scenario(client: Client, step: dict[str, Any], debtor: str, creditor: str, target: str) -> None:
    """Do what one scenario instructs: pay its amount (with a quote for QUOTE_EXPIRED)."""
    if step["amount"] is None:
        return
    body = {
        "debtor_account_id": debtor,
        "creditor": creditor_of(creditor),
        "amount": step["amount"],
        "currency": step["currency"],
        "purpose": "FAMILY_SUPPORT",
    }
    if step["scenario"] == "QUOTE_EXPIRED":
        quote = {
            "source_currency": step["currency"],
            "target_currency": target,
            "amount": step["amount"],
            "amount_type": "SEND",
        }
        await client.pay_with_quote(quote, body)
    else:
        await client.pay(body)


async def certify(
    *,
    base_url: str,
    api_key: str,
    debtor: str,
    creditor: str,
    target_currency: str,
    receiver: Receiver,
    suite: str = "FULL",
    client_type: type[Client] = Client,
) -> dict[str, Any]:
    """Run the kit end to end and return the run's result (GET /v1/certifications/{id})."""
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=15) as http:
        receiver.start()
        hook = await http.post("/v1/webhooks", json={"url": receiver.url})
        hook.raise_for_status()
        receiver.secret = hook.json()["secret"].encode()
        try:
            started = await http.post(
                "/v1/certifications",
                json={"suite": suite, "debtor_account_id": debtor, "creditor": creditor_of(creditor)},
            )
            started.raise_for_status()
            run = started.json()
            wait = datetime.fromisoformat(run["starts_at"]) - datetime.fromisoformat(run["created_at"])
            await asyncio.sleep(wait.total_seconds())
            client = client_type(http)
            await asyncio.gather(
                *(scenario(client, s, debtor, creditor, target_currency) for s in run["scenarios"])
            )
            if any(s["scenario"] == "RECONCILIATION" for s in run["scenarios"]):
                uploaded = await http.put(
                    f"/v1/certifications/{run['certification_id']}/record", json=record_of(client.book)
                )
                uploaded.raise_for_status()
            for _ in range(60):
                done = await http.post(f"/v1/certifications/{run['certification_id']}/complete")
                if done.status_code != 409:
                    break
                await asyncio.sleep(retry_after(done))
            done.raise_for_status()
            result: dict[str, Any] = done.json()
            await receiver.wait_for("certification.completed", run["certification_id"])
            return result
        finally:
            await http.delete(f"/v1/webhooks/{hook.json()['webhook_id']}")
            receiver.stop()


def main(
    client_type: type[Client] = Client, receiver_type: type[Receiver] = Receiver, about: str = __doc__ or ""
) -> None:
    """Run the kit from the command line with these client and receiver types."""
    parser = argparse.ArgumentParser(description=about.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--debtor", required=True, help="your account the run pays from")
    parser.add_argument("--creditor", required=True, help="+86... / +852... number, or an account id")
    parser.add_argument("--target-currency", default="CNY", help="the creditor account's currency")
    parser.add_argument("--receiver", default="127.0.0.1:9000", help="host:port of the webhook receiver")
    parser.add_argument("--suite", default="FULL", choices=["FULL", "PAYMENTS", "WEBHOOKS"])
    args = parser.parse_args()
    host, _, port = args.receiver.rpartition(":")
    result = asyncio.run(
        certify(
            base_url=args.base_url,
            api_key=args.api_key,
            debtor=args.debtor,
            creditor=args.creditor,
            target_currency=args.target_currency,
            receiver=receiver_type(host, int(port)),
            suite=args.suite,
            client_type=client_type,
        )
    )
    for s in result["scenarios"]:
        print(f"{s['status']:7} {s['scenario']:24} {s['reason']}")
    print(f"{result['status']}: {certificate_lines(args.base_url, result)}")
    raise SystemExit(0 if result["status"] == "PASSED" else 1)


def certificate_lines(base_url: str, result: dict[str, Any]) -> str:
    """Where to read the certificate: the API wants the bank's key in a header, which a browser does
    not send; the console serves the same page to whoever logged in with that key."""
    return (
        f"certificate at {base_url}{result['certificate']} (Authorization: Bearer <your key>),\n"
        f"  or in a browser: {base_url}/console/certifications/{result['certification_id']}/certificate"
    )


if __name__ == "__main__":
    main()
