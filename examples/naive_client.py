"""A client as first versions often are, to see the certification kit fail it where it should.

    .venv/bin/python -m examples.naive_client --base-url http://127.0.0.1:8000 --api-key "$KEY" \\
        --debtor HKDEMO0001 --creditor +8613800138000 --receiver 127.0.0.1:9000

It runs the kit as the reference client does (examples/reference_client.py), with these habits:

* no answer (a lost reply) or a 409 is taken as "it failed": the payment is sent again under a **new**
  Idempotency-Key, so it is paid twice (fails LOST_REPLY and IN_PROGRESS);
* a 429 is retried after a fixed half second, whatever Retry-After says (fails RATE_LIMITED);
* a PENDING payment is polled ten times a second (fails SLOW_IBPS);
* an expired quote is paid again with the same quote (fails QUOTE_EXPIRED);
* its receiver checks the signature but not how old it is (fails WEBHOOK_STALE_TIMESTAMP);
* its record holds only the payments it got an answer for (fails RECONCILIATION).

It takes a REJECTED payment as final, acknowledges a duplicate event, and refuses a bad signature: the
kit passes it on those (the four rejections, WEBHOOK_DUPLICATE, WEBHOOK_BAD_SIGNATURE).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from examples.reference_client import MAX_ATTEMPTS, MAX_POLLS, Client, GaveUp, Receiver, main

NAIVE_POLL_S = 0.1


@dataclass
class NaiveReceiver(Receiver):
    def verified(self, signature: str, body: bytes) -> bool:
        """The MAC only: any `t`, however old, is believed."""
        fields = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
        expected = hmac.new(
            self.secret, f"{fields.get('t', '')}.".encode() + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, fields.get("v1", ""))


@dataclass
class NaiveClient(Client):
    async def pay(self, body: dict[str, Any]) -> dict[str, Any]:
        payment: dict[str, Any] | None = None
        for _ in range(MAX_ATTEMPTS):
            try:
                response = await self.http.post(
                    "/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
                )
            except httpx.TransportError:
                continue  # "it failed": send it again, under a new key
            if response.status_code in (201, 202):
                payment = response.json()
                break
            if response.status_code == 429:
                await self.sleep(0.5)
                continue
            if response.status_code == 409:
                continue
            raise RuntimeError(f"payment refused: {response.status_code} {response.text}")
        if payment is None:
            raise GaveUp("no answer")
        for _ in range(MAX_POLLS):
            if payment["status"] != "PENDING":
                break
            await self.sleep(NAIVE_POLL_S)
            payment = (await self.http.get(f"/v1/payments/{payment['payment_id']}")).json()
        self.book.append(payment)
        return payment

    async def pay_with_quote(self, quote: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        quoted = await self.http.post("/v1/quotes", json=quote)
        quoted.raise_for_status()
        paid = {**body, "quote_id": quoted.json()["quote_id"]}
        payment = await self.pay(paid)
        if payment.get("reason_code") == "QUOTE_EXPIRED":
            payment = await self.pay(paid)  # the same quote again
        return payment


if __name__ == "__main__":
    main(NaiveClient, NaiveReceiver, __doc__ or "")
