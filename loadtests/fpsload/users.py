"""BankUser: one bank's API client, with the tasks both personas share.

Each user tracks the daily limit and the funds of its bank's accounts and sends ordinary payments
only where they fit, so an ordinary payment that is not SETTLED or PENDING is a failure. On top of
that a small share of requests is a retry with the same Idempotency-Key and body, invalid on purpose,
or over a limit on purpose (shares from fpsload.config); each must be answered as the API says.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import gevent
from locust import FastHttpUser, between, task
from locust.exception import StopUser

from fpsload.checks import MAGIC_REFUSED_CNY, SETTLING, cny_leg, problem_code
from fpsload.config import BREACH_SHARE, INVALID_SHARE, RETRY_SHARE, WAIT_MAX, WAIT_MIN
from fpsload.report import OUTCOMES
from fpsload.world import WORLD, Account, Bank, SetupFailed, mobile_number, world_tag

CENT = Decimal("0.01")
# (low, high) of ordinary payments, in the debtor's currency
AMOUNTS = {"FPS": (Decimal("50.00"), Decimal("2000.00")), "IBPS": (Decimal("50.00"), Decimal("3000.00"))}
PURPOSES = ("FAMILY_SUPPORT", "EDUCATION", "MEDICAL", "GIFT", "GOODS_TRADE", "SALARY")


def written_form(e164: str) -> str:
    """The same number as people write it, now and then."""
    if random.random() < 0.7:
        return e164
    if e164.startswith("+86"):
        n = e164[3:]
        return f"+86 {n[:3]} {n[3:7]} {n[7:]}"
    n = e164[4:]
    return f"+852 {n[:4]} {n[4:]}"


def random_amount(low: Decimal, high: Decimal) -> Decimal:
    """A random amount in cents from `low` to `high`, both included."""
    cents = random.randint(int(low * 100), int(high * 100))
    return (Decimal(cents) / 100).quantize(CENT)


class BankUser(FastHttpUser):
    """One bank's API client; subclasses set the system and the tasks."""

    abstract = True
    system = "FPS"
    other = "IBPS"
    direction = "NORTHBOUND"
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        """Pick a bank of this user's system, once the world stands."""
        try:
            WORLD.ensure(self.host, world_tag(self.environment))
        except SetupFailed:
            # test_start logged why and is stopping the runner, which ends this user too
            gevent.sleep(3600)
            raise StopUser() from None
        self.bank: Bank = random.choice(WORLD.banks[self.system])
        self.auth = {"Authorization": f"Bearer {self.bank.api_key}"}
        self.recent: deque[str] = deque(maxlen=50)
        self.answered: deque[tuple[str, dict[str, Any]]] = deque(maxlen=20)

    # shared tasks -------------------------------------------------------------------------------

    def closed_now(self) -> bool:
        """True while this bank's direction is outside its service hours in the simulated day."""
        return False

    def quote_outlived_by_the_clock(self, body: dict[str, Any]) -> bool:
        """True when the payment's quote expired only because the simulated day moved the sandbox's
        clock past it between the quote and the payment (a subclass that quotes knows)."""
        return False

    @task(5)
    def pay(self) -> None:
        """A payment: mostly ordinary, now and then invalid or over a limit on purpose."""
        if self.closed_now():
            OUTCOMES.count(f"{self.direction} not sent: simulated night")
            return
        roll = random.random()
        if roll < INVALID_SHARE:
            self.invalid_payment()
        elif roll < INVALID_SHARE + BREACH_SHARE:
            self.limit_breach()
        else:
            self.ordinary_payment()

    @task(3)
    def poll(self) -> None:
        """The status of one of this user's recent payments."""
        if not self.recent:
            return
        payment_id = random.choice(self.recent)
        with self.client.get(
            f"/v1/payments/{payment_id}", headers=self.auth, name="/v1/payments/[id]", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"expected 200, got {resp.status_code} {problem_code(resp)}")
                return
            body = resp.json()
            if body.get("payment_id") != payment_id:
                resp.failure("answered another payment")
            elif body.get("status") not in ("SETTLED", "PENDING", "REJECTED"):
                resp.failure(f"unknown status {body.get('status')}")
            else:
                resp.success()

    @task(1)
    def check_limits(self) -> None:
        """The remaining limits of one of the bank's accounts."""
        account = random.choice(self.bank.accounts)
        with self.client.get(
            f"/v1/accounts/{account.account_id}/limits",
            headers=self.auth,
            name="/v1/accounts/[id]/limits",
            catch_response=True,
        ) as resp:
            if resp.status_code == 200 and resp.json().get("account_id") == account.account_id:
                resp.success()
            else:
                resp.failure(f"expected 200, got {resp.status_code} {problem_code(resp)}")

    @task(3)
    def lookup(self) -> None:
        """Look up a payee's number; now and then one nobody registered (404 BE23) or one without +."""
        roll = random.random()
        if roll < INVALID_SHARE:
            number = random.choice(WORLD.creditors(self.other)).proxy or ""
            self._lookup(number.lstrip("+"), expect=(422, "INVALID_PROXY"))
        elif roll < 0.1:
            self._lookup(mobile_number(self.other, random.Random()), expect=(404, "BE23"))
        else:
            number = random.choice(WORLD.creditors(self.other)).proxy or ""
            self._lookup(number, expect=(200, None))

    def _lookup(self, number: str, *, expect: tuple[int, str | None]) -> None:
        with self.client.get(
            f"/v1/proxies/MOBILE/{quote(number, safe='')}",
            headers=self.auth,
            name="/v1/proxies/MOBILE/[proxy_value]",
            catch_response=True,
        ) as resp:
            status, code = expect
            if status == 200:
                body = resp.json() if resp.status_code == 200 else {}
                if resp.status_code == 200 and body.get("system") == self.other and body.get("masked_name"):
                    resp.success()
                else:
                    resp.failure(
                        f"expected 200 from {self.other}, got {resp.status_code} {problem_code(resp)}"
                    )
            elif resp.status_code == status and problem_code(resp) == code:
                resp.success()
            elif status == 404 and resp.status_code == 200:
                resp.success()  # a random number somebody did register
            else:
                resp.failure(f"expected {status} {code}, got {resp.status_code} {problem_code(resp)}")

    # payments -----------------------------------------------------------------------------------

    def creditor_for(self, body: dict[str, Any]) -> dict[str, Any]:
        """The payee of a payment: a mobile number of the other side, as people write it."""
        account = random.choice(WORLD.creditors(self.other))
        return {"proxy_type": "MOBILE", "proxy_value": written_form(account.proxy or "")}

    def payment_body(self, debtor: Account, amount: Decimal) -> dict[str, Any]:
        """A valid POST /v1/payments body from `debtor` for `amount`."""
        body: dict[str, Any] = {
            "debtor_account_id": debtor.account_id,
            "amount": f"{amount:f}",
            "currency": debtor.currency,
            "purpose": random.choice(PURPOSES),
        }
        body["creditor"] = self.creditor_for(body)
        if random.random() < 0.5:
            body["remittance_info"] = f"invoice {random.randint(1000, 99999)}"
        if random.random() < 0.2:
            body["end_to_end_id"] = f"E2E{uuid.uuid4().hex[:20].upper()}"
        return body

    def before_payment(self, body: dict[str, Any]) -> bool:
        """Hook for steps a bank takes before paying (a quote); False abandons the payment."""
        return True

    def ordinary_payment(self) -> None:
        """A payment that fits its account's limits and funds: it must settle (or be pending)."""
        amount = random_amount(*AMOUNTS[self.system])
        debtor = WORLD.debtor(self.bank, amount)
        if debtor is None:
            OUTCOMES.count(f"{self.direction} not sent: every account at its limits")
            OUTCOMES.warn_once(
                "pool spent",
                f"{self.bank.participant_id}: every account its pool may hold has used its limits; "
                "its ordinary payments are not sent until a new business date gives them room",
            )
            return
        body = self.payment_body(debtor, amount)
        if not self.before_payment(body):
            debtor.give_back(amount)
            return
        key = f"lt-{uuid.uuid4()}"
        with self._post_payment(key, body) as resp:
            if resp.status_code not in (201, 202):
                debtor.give_back(amount)
                resp.failure(f"expected 201/202, got {resp.status_code} {problem_code(resp)}")
                return
            payment = resp.json()
            self.recent.append(payment["payment_id"])
            self.answered.append((key, body))
            status, reason = payment.get("status"), payment.get("reason_code")
            OUTCOMES.count(f"{self.direction} {status} {reason or ''}".rstrip())
            if status in SETTLING:
                resp.success()
            elif reason == "OUTSIDE_SERVICE_HOURS":
                debtor.give_back(amount)
                OUTCOMES.warn_once(
                    reason, "southbound is outside its service hours: payments come back REJECTED"
                )
                resp.success()
            elif reason == "QUOTE_EXPIRED" and self.quote_outlived_by_the_clock(body):
                debtor.give_back(amount)  # counted above, as REJECTED QUOTE_EXPIRED
                resp.success()
            elif reason == "RR04" and cny_leg(payment) == MAGIC_REFUSED_CNY:
                # the IBPS leg came out at the sandbox's magic amount (about one in 300,000): refused
                # on purpose, as docs/sandbox.md says
                debtor.give_back(amount)
                resp.success()
            else:
                if reason in ("AM14", "AM04"):
                    debtor.limit_left = Decimal(0)  # the gateway sees less room than this process does
                else:
                    debtor.give_back(amount)
                resp.failure(f"ordinary payment {status} {reason}")
                return
        if random.random() < RETRY_SHARE:
            self.retry(key, body, payment)

    def retry(self, key: str, body: dict[str, Any], first: dict[str, Any]) -> None:
        """The same key and body again: the first answer, replayed."""
        with self._post_payment(key, body) as resp:
            replayed = resp.headers.get("Idempotent-Replayed", "")
            if resp.status_code not in (201, 202):
                resp.failure(f"retry: expected 201/202, got {resp.status_code} {problem_code(resp)}")
            elif replayed.lower() != "true":
                resp.failure("retry: no Idempotent-Replayed: true")
            elif resp.json().get("payment_id") != first.get("payment_id"):
                resp.failure("retry: answered another payment")
            else:
                OUTCOMES.count("retries replayed")
                resp.success()

    def invalid_payment(self) -> None:
        """A payment the API must refuse with 422 and the expected problem code."""
        amount = random_amount(*AMOUNTS[self.system])
        account = random.choice(self.bank.accounts)
        body = self.payment_body(account, amount)
        expected = "VALIDATION_ERROR"
        key = f"lt-{uuid.uuid4()}"
        kind = random.randrange(4)
        if kind == 0:
            body["amount"] = f"{amount:f}5"  # a third decimal place
        elif kind == 1:
            del body["purpose"]
        elif kind == 2:
            payee = random.choice(WORLD.creditors(self.other))
            body["creditor"] = {
                "proxy_type": "MOBILE",
                "proxy_value": payee.proxy,
                "account_id": payee.account_id,
            }
        elif self.answered:
            key, original = random.choice(self.answered)
            body = {**original, "amount": f"{Decimal(original['amount']) + CENT:f}"}
            expected = "IDEMPOTENCY_KEY_REUSED"
        else:
            body["currency"] = "USD"
        with self._post_payment(key, body) as resp:
            got = problem_code(resp)
            if resp.status_code == 422 and got == expected:
                OUTCOMES.count(f"invalid {expected}")
                resp.success()
            else:
                resp.failure(f"invalid request: expected 422 {expected}, got {resp.status_code} {got}")

    def limit_breach(self) -> None:
        """Over the per-transaction limit (AM02), or just over what is left today (AM14)."""
        account = random.choice(self.bank.accounts)
        amount = account.per_transaction + random_amount(CENT, account.per_transaction / 2)
        if random.random() < 0.5:
            with self.client.get(
                f"/v1/accounts/{account.account_id}/limits",
                headers=self.auth,
                name="/v1/accounts/[id]/limits",
                catch_response=True,
            ) as resp:
                if resp.status_code != 200:
                    resp.failure(f"expected 200, got {resp.status_code} {problem_code(resp)}")
                    return
                left = [
                    Decimal(u["remaining"]) for u in resp.json()["usage"] if u.get("remaining") is not None
                ]
                resp.success()
            if left and min(left) < account.per_transaction:
                amount = min(left) + CENT
        body = self.payment_body(account, amount)
        with self._post_payment(f"lt-{uuid.uuid4()}", body) as resp:
            if resp.status_code not in (201, 202):
                resp.failure(f"limit breach: expected 201, got {resp.status_code} {problem_code(resp)}")
                return
            payment = resp.json()
            self.recent.append(payment["payment_id"])
            status, reason = payment.get("status"), payment.get("reason_code")
            if status == "REJECTED" and reason in ("AM02", "AM14"):
                OUTCOMES.count(f"breach {reason}")
                resp.success()
            elif status == "REJECTED" and reason == "OUTSIDE_SERVICE_HOURS":
                resp.success()
            else:
                if status in SETTLING:
                    account.take(amount)
                resp.failure(f"limit breach: expected REJECTED AM02/AM14, got {status} {reason}")

    def _post_payment(self, key: str, body: dict[str, Any]) -> Any:
        return self.client.post(
            "/v1/payments",
            json=body,
            headers={**self.auth, "Idempotency-Key": key},
            name="/v1/payments",
            catch_response=True,
        )
