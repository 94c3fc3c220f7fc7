"""The two personas: an HK bank (FPS, northbound) and a mainland bank (IBPS, southbound).

Scenario files pick from these; locust runs every concrete user class a scenario file holds, in
the ratio of their weights.
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from typing import Any

from locust import task

from fpsload.checks import problem_code
from fpsload.day import DAY_CLOCK
from fpsload.users import AMOUNTS, BankUser, random_amount, written_form
from fpsload.world import WORLD


class HongKongBank(BankUser):
    """An FPS bank: its customers pay mainland mobile numbers, often after a firm quote."""

    weight = 3
    system = "FPS"
    other = "IBPS"
    direction = "NORTHBOUND"
    last_quote: tuple[str, float, float] | None = None
    """The last quote this user took: its id, when (this process's monotonic clock) and for how many
    seconds it is firm. A user runs one task at a time, so a payment's quote is the last one."""

    @task(2)
    def quote(self) -> None:
        """An HKD->CNY quote, mostly for the amount sent, now and then for the amount received."""
        amount = random_amount(*AMOUNTS["FPS"])
        if random.random() < 0.7:
            self._quote({"source_currency": "HKD", "target_currency": "CNY", "amount": f"{amount:f}"}, "SEND")
        else:
            self._quote(
                {"source_currency": "HKD", "target_currency": "CNY", "amount": f"{amount:f}"}, "RECEIVE"
            )

    def _quote(self, body: dict[str, Any], amount_type: str) -> str | None:
        with self.client.post(
            "/v1/quotes",
            json={**body, "amount_type": amount_type},
            headers=self.auth,
            name="/v1/quotes",
            catch_response=True,
        ) as resp:
            quote = resp.json() if resp.status_code == 201 else {}
            if quote.get("quote_id"):
                resp.success()
                self.last_quote = (str(quote["quote_id"]), time.monotonic(), _validity_s(quote))
                return str(quote["quote_id"])
            resp.failure(f"expected 201, got {resp.status_code} {problem_code(resp)}")
            return None

    def quote_outlived_by_the_clock(self, body: dict[str, Any]) -> bool:
        """Under the day shape the sandbox's clock jumps about an hour at a time: a quote taken just
        before a jump has expired at the gateway though its seconds have not run out here."""
        if self.last_quote is None or not DAY_CLOCK.moving:
            return False
        quote_id, at, validity_s = self.last_quote
        return quote_id == body.get("quote_id") and time.monotonic() - at < validity_s

    def before_payment(self, body: dict[str, Any]) -> bool:
        """Three payments in ten go out with a firm quote for their amount."""
        if random.random() >= 0.3:
            return True
        quote_id = self._quote(
            {"source_currency": "HKD", "target_currency": "CNY", "amount": body["amount"]}, "SEND"
        )
        if quote_id is None:
            return False
        body["quote_id"] = quote_id
        return True


def _validity_s(quote: dict[str, Any]) -> float:
    """The seconds a quote answer says it is firm for (0 when it does not say)."""
    try:
        created = datetime.fromisoformat(str(quote["created_at"]).replace("Z", "+00:00"))
        expires = datetime.fromisoformat(str(quote["expires_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return max(0.0, (expires - created).total_seconds())


class MainlandBank(BankUser):
    """An IBPS bank: its customers pay Hong Kong mobile numbers or account numbers."""

    weight = 2
    system = "IBPS"
    other = "FPS"
    direction = "SOUTHBOUND"

    def closed_now(self) -> bool:
        """Southbound sends nothing while the simulated hour is outside its service window."""
        return not DAY_CLOCK.southbound

    def creditor_for(self, body: dict[str, Any]) -> dict[str, Any]:
        """A Hong Kong payee: by mobile number, or one time in five by account id."""
        account = random.choice(WORLD.creditors("FPS"))
        if random.random() < 0.2:
            return {"account_id": account.account_id}
        return {"proxy_type": "MOBILE", "proxy_value": written_form(account.proxy or "")}
