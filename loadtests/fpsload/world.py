"""The load test's world: banks, API keys, accounts and mobile numbers, set up with the operator key.

Every set-up request carries an Idempotency-Key derived from LOADTEST_RUN_ID, so a rerun with the same
id finds the same banks, keys and accounts again (for as long as the gateway keeps idempotency keys);
without it each run starts a fresh world. Each locust process builds its own world on test start
(workers add W<index> to the id) and grows it when its accounts run out of limit or funds.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import gevent
import gevent.lock
import requests
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from fpsload.config import ACCOUNTS_PER_BANK, OPERATOR_KEY, RUN_ID
from fpsload.day import DAY_CLOCK

log = logging.getLogger("fpslink.loadtest")

# Most accounts a bank's pool may grow to (limits and funds running out); beyond it the bank's
# customers have used their limits for the day and send nothing more (counted as not sent). A day
# of 200 peak users (`fpslink loadtest --shape`) spends about 1,100 accounts of each HK bank in each
# locust process, at about ten payments an account under the default daily limit.
MAX_ACCOUNTS_PER_BANK = 2000
OPENING_BALANCE = Decimal("1000000.00")
CURRENCY = {"FPS": "HKD", "IBPS": "CNY"}
LOAD_QUOTA = {"quota": 1_000_000, "window_s": 1}
"""The load test's banks' rate limit: more than any load it generates, so it measures the gateway."""
BANKS = (("HK1", "FPS"), ("HK2", "FPS"), ("CN1", "IBPS"), ("CN2", "IBPS"))
HK_HOLDERS = ("CHAN Tai Man", "WONG Siu Ming", "LEE Ka Yan", "CHEUNG Wai Kit", "HO Mei Ling", "LAU Chi Keung")
CN_HOLDERS = ("张小明", "李华", "王芳", "刘洋", "陈静", "杨帆", "赵磊", "黄丽")


class SetupFailed(RuntimeError):
    """The load test's world could not be built; the message says why."""


@dataclass
class Account:
    """One account of a bank in the world, with what this process counts as left on it."""

    account_id: str
    participant_id: str
    system: str
    currency: str
    proxy: str | None
    per_transaction: Decimal
    limit_left: Decimal | None  # smallest remaining of the configured periods; None: no period limit
    funds: Decimal  # available balance as this process counts it
    day: int = 0  # the simulated day `limit_left` was read on (fpsload.day.DAY_CLOCK.day)

    def budget(self) -> Decimal:
        """The largest payment that fits the per-transaction limit, the funds and the period limits."""
        room = min(self.per_transaction, self.funds)
        return room if self.limit_left is None else min(room, self.limit_left)

    def take(self, amount: Decimal) -> None:
        """Reserve `amount` for a payment about to be sent."""
        self.funds -= amount
        if self.limit_left is not None:
            self.limit_left -= amount

    def give_back(self, amount: Decimal) -> None:
        """Release a reservation whose payment was not sent or did not settle."""
        self.funds += amount
        if self.limit_left is not None:
            self.limit_left += amount


@dataclass
class Bank:
    """A participant of the world with its API key and its pool of accounts."""

    participant_id: str
    system: str
    api_key: str
    accounts: list[Account]
    opened: int = 0


def mobile_number(system: str, rng: random.Random) -> str:
    """A valid mobile number in E.164: +86 135-139 for IBPS, +852 94/96/97 for FPS."""
    if system == "IBPS":
        return "+8613" + rng.choice("56789") + "".join(rng.choice("0123456789") for _ in range(8))
    return "+8529" + rng.choice("467") + "".join(rng.choice("0123456789") for _ in range(6))


class World:
    """Banks, keys and accounts of this process; built once, grown on demand."""

    def __init__(self) -> None:
        self._lock = gevent.lock.Semaphore()
        self._grow_lock = gevent.lock.Semaphore()
        self._session: requests.Session | None = None
        self.host = ""
        self.tag = RUN_ID
        self.banks: dict[str, list[Bank]] = {"FPS": [], "IBPS": []}
        self.ready = False
        self.error: str | None = None

    # set-up ----------------------------------------------------------------------------------

    def ensure(self, host: str | None, tag: str | None = None, *, retry: bool = False) -> None:
        """Build the world on `host` unless it stands; a failed build is not retried unless `retry`."""
        with self._lock:
            if self.ready and self.host == (host or "").rstrip("/"):
                return
            self.ready = False
            if self.error and not retry:
                raise SetupFailed(self.error)
            try:
                self._build(host, tag or RUN_ID)
            except SetupFailed as exc:
                self.error = str(exc)
                raise
            except requests.RequestException as exc:
                self.error = f"cannot reach the gateway at {host}: {exc}"
                raise SetupFailed(self.error) from exc
            self.ready = True

    def _build(self, host: str | None, tag: str) -> None:
        if not host:
            raise SetupFailed("no host: pass --host http://127.0.0.1:8000 (or set LOCUST_HOST)")
        if len(OPERATOR_KEY) < 16:
            raise SetupFailed("FPSLINK_OPERATOR_KEY must hold the gateway's operator key (16+ characters)")
        self.host = host.rstrip("/")
        self.tag = tag
        self.banks = {"FPS": [], "IBPS": []}
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {OPERATOR_KEY}"
        health = self._session.get(f"{self.host}/healthz", timeout=10)
        if health.status_code != 200:
            raise SetupFailed(f"GET /healthz answered {health.status_code}: {health.text[:200]}")
        for suffix, system in BANKS:
            # no underscore: mock_ibps takes [A-Za-z0-9-] where the gateway takes [A-Z0-9_]
            bank = self._create_bank(f"LT{tag}{suffix}", system)
            for _ in range(ACCOUNTS_PER_BANK):
                bank.accounts.append(self._open_account(bank))
            self.banks[system].append(bank)
        log.info(
            "load test world %s ready on %s: %s",
            tag,
            self.host,
            ", ".join(
                f"{b.participant_id} ({len(b.accounts)} accounts)" for bs in self.banks.values() for b in bs
            ),
        )

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        assert self._session is not None
        headers = {"Idempotency-Key": key} if key else {}
        resp = self._session.request(method, f"{self.host}{path}", json=body, headers=headers, timeout=30)
        try:
            payload = resp.json()
        except ValueError:
            payload = {"detail": resp.text[:200]}
        return resp.status_code, payload if isinstance(payload, dict) else {"items": payload}

    def _create_bank(self, participant_id: str, system: str) -> Bank:
        name = f"Load test {'HK' if system == 'FPS' else 'mainland'} bank {participant_id}"
        status, body = self._call(
            "POST",
            "/v1/participants",
            {"participant_id": participant_id, "name": name, "system": system},
            key=f"loadtest-{participant_id}",
        )
        if status == 401:
            raise SetupFailed("the gateway refused FPSLINK_OPERATOR_KEY (401)")
        if status != 201 or not body.get("api_key"):
            raise SetupFailed(
                f"POST /v1/participants {participant_id} answered {status} {body.get('code')}: "
                f"{body.get('detail')} (its key is shown only once: pick a new LOADTEST_RUN_ID)"
            )
        # a load test needs more than a shared sandbox's default quota: the operator raises it
        status, raised = self._call("PUT", f"/v1/participants/{participant_id}/rate-limit", LOAD_QUOTA)
        if status != 200:
            raise SetupFailed(
                f"PUT /v1/participants/{participant_id}/rate-limit answered {status} {raised.get('code')}"
            )
        return Bank(participant_id=participant_id, system=system, api_key=body["api_key"], accounts=[])

    def _open_account(self, bank: Bank) -> Account:
        index = bank.opened
        bank.opened += 1
        currency = CURRENCY[bank.system]
        holders = HK_HOLDERS if bank.system == "FPS" else CN_HOLDERS
        status, body = self._call(
            "POST",
            "/v1/accounts",
            {
                "participant_id": bank.participant_id,
                "holder_name": holders[index % len(holders)],
                "currency": currency,
                "opening_balance": f"{OPENING_BALANCE:f}",
            },
            key=f"loadtest-{bank.participant_id}-account-{index}",
        )
        if status != 201:
            raise SetupFailed(
                f"POST /v1/accounts for {bank.participant_id} answered {status} {body.get('code')}"
            )
        account_id = body["account_id"]
        proxy = self._register_proxy(bank, account_id)
        # a replayed answer shows the account as it was opened: ask for today's funds and limits
        status, now = self._call("GET", f"/v1/accounts/{account_id}")
        if status != 200:
            raise SetupFailed(f"GET /v1/accounts/{account_id} answered {status} {now.get('code')}")
        per_transaction, left = self._limits(account_id, currency)
        return Account(
            account_id=account_id,
            participant_id=bank.participant_id,
            system=bank.system,
            currency=currency,
            proxy=proxy,
            per_transaction=per_transaction,
            limit_left=left,
            funds=Decimal(now["available_balance"]),
            day=DAY_CLOCK.day,
        )

    def _limits(self, account_id: str, currency: str) -> tuple[Decimal, Decimal | None]:
        """The account's per-transaction limit and the smallest of what its period limits leave."""
        status, limits = self._call("GET", f"/v1/accounts/{account_id}/limits")
        if status != 200:
            raise SetupFailed(f"GET /v1/accounts/{account_id}/limits answered {status} {limits.get('code')}")
        if limits.get("currency") != currency:
            raise SetupFailed(f"limits of {account_id} are kept in {limits.get('currency')}, not {currency}")
        left = [Decimal(line["remaining"]) for line in limits["usage"] if line.get("remaining") is not None]
        return Decimal(limits["per_transaction"]), min(left) if left else None

    def _new_day(self, bank: Bank, amount: Decimal) -> Account | None:
        """An account whose limits were read on an earlier simulated day and, read again, has room
        for `amount`: under a moving clock each simulated day is a new business date, whose daily
        limits start afresh. One read per account and day, and only once no account has room."""
        for account in bank.accounts:
            if account.day < DAY_CLOCK.day:
                account.per_transaction, account.limit_left = self._limits(
                    account.account_id, account.currency
                )
                account.day = DAY_CLOCK.day
                if account.budget() >= amount:
                    return account
        return None

    def _register_proxy(self, bank: Bank, account_id: str) -> str:
        for attempt in range(8):
            number = mobile_number(bank.system, random.Random(f"{account_id}-{attempt}"))
            status, body = self._call(
                "POST",
                "/v1/proxies",
                {"proxy_type": "MOBILE", "proxy_value": number, "account_id": account_id},
                key=f"loadtest-proxy-{account_id}-{attempt}",
            )
            if status == 201:
                return str(body["proxy_value"])
            if status != 409:
                raise SetupFailed(f"POST /v1/proxies for {account_id} answered {status} {body.get('code')}")
        raise SetupFailed(f"no free mobile number found for {account_id}")

    # during the run -------------------------------------------------------------------------

    def debtor(self, bank: Bank, amount: Decimal) -> Account | None:
        """An account of `bank` with room for `amount` (reserved here), opening more if none has;
        None once the pool is full and none has room (the payment would only be refused).

        A rerun with the same LOADTEST_RUN_ID opens the same accounts again, spent or not, so this
        keeps opening until one fits.
        """
        fits = [a for a in bank.accounts if a.budget() >= amount]
        if not fits:
            with self._grow_lock:
                fits = [a for a in bank.accounts if a.budget() >= amount]
                if not fits and (renewed := self._new_day(bank, amount)) is not None:
                    fits = [renewed]
                while not fits and len(bank.accounts) < MAX_ACCOUNTS_PER_BANK:
                    account = self._open_account(bank)
                    bank.accounts.append(account)
                    log.info(
                        "%s opened %s (%d accounts)",
                        bank.participant_id,
                        account.account_id,
                        len(bank.accounts),
                    )
                    if account.budget() >= amount:
                        fits = [account]
        if not fits:
            return None
        chosen = random.choice(fits)
        chosen.take(amount)
        return chosen

    def creditors(self, system: str) -> list[Account]:
        """Every account of the world's banks in `system`: the payees of the other side."""
        return [a for b in self.banks[system] for a in b.accounts]


WORLD = World()


def world_tag(environment: Any) -> str:
    """The run id, with W<index> on a worker so that each worker builds a world of its own."""
    if isinstance(environment.runner, WorkerRunner):
        return f"{RUN_ID}W{environment.runner.worker_index}"
    return RUN_ID


@events.test_start.add_listener
def _build_world(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return
    try:
        WORLD.ensure(environment.host, world_tag(environment), retry=True)
    except SetupFailed as exc:
        log.error("load test set-up failed: %s", exc)
        environment.process_exit_code = 2
        options = environment.parsed_options
        # headless: give up; web UI: stop this test and let the next start try again
        headless = options is None or options.headless or getattr(options, "autostart", False)
        gevent.spawn_later(0.1, environment.runner.quit if headless else environment.runner.stop)
