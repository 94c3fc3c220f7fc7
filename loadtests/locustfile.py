"""A first realistic load mix for the fpslink gateway.

Two personas call the public API (v1) with the keys of banks this file creates for itself:

* an HK bank (FPS): looks up +86 mobile numbers, asks for HKD->CNY quotes, sends northbound payments
  by proxy (some with a quote), polls their status and checks its customers' remaining limits;
* a mainland bank (IBPS): looks up +852 numbers, sends southbound payments by proxy or account
  number, polls them and checks limits.

At test start the operator key (FPSLINK_OPERATOR_KEY) creates two banks per system, accounts with
large balances and a mobile number for each. Every set-up request carries an Idempotency-Key derived
from LOADTEST_RUN_ID, so a rerun with the same id finds the same banks, keys and accounts again (for
as long as the gateway keeps idempotency keys); without it each run starts a fresh world.

Each virtual user tracks the daily limit and the funds of its bank's accounts and sends ordinary
payments only where they fit, opening another account when the pool runs dry. An ordinary payment that
is not SETTLED or PENDING is therefore a failure. On top of that a small share of requests is:

* a retry with the same Idempotency-Key and body: 201/202 with `Idempotent-Replayed: true`, same id;
* invalid (bad amount, missing field, key reused with another body, number without +): 422 with the
  expected problem `code`;
* a limit breach: 201 with status REJECTED and reason_code AM02 or AM14.

With LOADTEST_SHAPE=day the user count follows a simulated 24-hour day (DayShape, HOURLY_PEAK_SHARE)
compressed into LOADTEST_DAY_SECONDS, and mainland banks send no southbound payment while the
simulated hour is outside the southbound service window (FPSLINK_SOUTHBOUND_HOURS).

Environment: see loadtests/README.md.
"""

from __future__ import annotations

import logging
import os
import random
import re
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import gevent
import gevent.lock
import requests
from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

log = logging.getLogger("fpslink.loadtest")

CENT = Decimal("0.01")


def _env_float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "").strip()
    value = float(raw) if raw else default
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


OPERATOR_KEY = os.environ.get("FPSLINK_OPERATOR_KEY", "").strip()
RUN_ID = (os.environ.get("LOADTEST_RUN_ID", "").strip() or uuid.uuid4().hex[:6]).upper()
if not re.fullmatch(r"[A-Z0-9]{1,12}", RUN_ID):
    raise ValueError(f"LOADTEST_RUN_ID must be 1-12 letters or digits, got {RUN_ID!r}")
ACCOUNTS_PER_BANK = int(_env_float("LOADTEST_ACCOUNTS_PER_BANK", 5, 1, 200))
WAIT_MIN = _env_float("LOADTEST_WAIT_MIN", 0.5, 0, 3600)
WAIT_MAX = _env_float("LOADTEST_WAIT_MAX", 2.0, WAIT_MIN, 3600)
RETRY_SHARE = _env_float("LOADTEST_RETRY_SHARE", 0.05, 0, 1)
INVALID_SHARE = _env_float("LOADTEST_INVALID_SHARE", 0.03, 0, 1)
BREACH_SHARE = _env_float("LOADTEST_BREACH_SHARE", 0.03, 0, 1 - INVALID_SHARE)

# Most accounts a bank's pool may grow to (limits and funds running out); beyond it payments go out
# anyway and the rejections show up as failures.
MAX_ACCOUNTS_PER_BANK = 500
OPENING_BALANCE = Decimal("1000000.00")
# (low, high) of ordinary payments, in the debtor's currency
AMOUNTS = {"FPS": (Decimal("50.00"), Decimal("2000.00")), "IBPS": (Decimal("50.00"), Decimal("3000.00"))}
CURRENCY = {"FPS": "HKD", "IBPS": "CNY"}
BANKS = (("HK1", "FPS"), ("HK2", "FPS"), ("CN1", "IBPS"), ("CN2", "IBPS"))
HK_HOLDERS = ("CHAN Tai Man", "WONG Siu Ming", "LEE Ka Yan", "CHEUNG Wai Kit", "HO Mei Ling", "LAU Chi Keung")
CN_HOLDERS = ("张小明", "李华", "王芳", "刘洋", "陈静", "杨帆", "赵磊", "黄丽")
PURPOSES = ("FAMILY_SUPPORT", "EDUCATION", "MEDICAL", "TRAVEL", "GOODS_TRADE", "SALARY")
SETTLING = {"SETTLED", "PENDING"}
MAGIC_REFUSED_CNY = Decimal("404.04")
"""An IBPS leg of this CNY amount is refused (RR04) by mock_ibps; ordinary amounts can land on it."""


def cny_leg(payment: dict[str, Any]) -> Decimal | None:
    """The CNY amount of a payment's IBPS leg (its source or its target), if it has one."""
    for side in ("source", "target"):
        if payment.get(f"{side}_currency") == "CNY" and payment.get(f"{side}_amount") is not None:
            return Decimal(str(payment[f"{side}_amount"]))
    return None


# the simulated day ------------------------------------------------------------------------------

# Share of the peak user count in each simulated hour (UTC+8), 00:00 first: cross-border retail
# payments sleep from 02:00 to 06:00, ramp up with the working day, peak at lunch (12:00) and again
# in the evening (20:00), and wind down towards midnight.
HOURLY_PEAK_SHARE: tuple[float, ...] = (
    0.20, 0.12, 0.08, 0.05, 0.05, 0.06,  # 00-05 night trough
    0.12, 0.30, 0.55, 0.75, 0.85, 0.95,  # 06-11 morning ramp
    1.00, 0.95, 0.85, 0.80, 0.80, 0.85,  # 12-17 lunch peak, afternoon
    0.90, 0.90, 1.00, 0.95, 0.65, 0.35,  # 18-23 evening peak, wind-down
)  # fmt: skip
if len(HOURLY_PEAK_SHARE) != 24 or max(HOURLY_PEAK_SHARE) != 1.0:
    raise ValueError("HOURLY_PEAK_SHARE needs 24 shares, the largest 1.0 (the peak hour)")


def _env_optional(name: str, low: float, high: float) -> float | None:
    raw = os.environ.get(name, "").strip()
    return None if not raw else _env_float(name, low, low, high)


def _service_window(text: str) -> tuple[float, float]:
    """Read HH:MM-HH:MM (UTC+8) as the gateway reads FPSLINK_SOUTHBOUND_HOURS, in hours of the day.

    A copy of fpslink.config.parse_hours in small, so that this file needs nothing but locust.
    """
    match = re.fullmatch(r"\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*", text)
    if not match:
        raise ValueError(f"FPSLINK_SOUTHBOUND_HOURS must look like 07:00-23:00, got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 + m1 / 60, h2 + m2 / 60
    if not 0 <= start < end <= 24:
        raise ValueError(f"FPSLINK_SOUTHBOUND_HOURS must end after it starts, got {text!r}")
    return start, end


SHAPE = os.environ.get("LOADTEST_SHAPE", "").strip().lower()
if SHAPE not in ("", "day"):
    raise ValueError(f"LOADTEST_SHAPE must be empty or 'day', got {SHAPE!r}")
DAY_SECONDS = _env_optional("LOADTEST_DAY_SECONDS", 24, 7 * 86_400)  # None: -t, else DEFAULT_DAY_S
PEAK_USERS = _env_optional("LOADTEST_PEAK_USERS", 1, 100_000)  # None: -u, else DEFAULT_PEAK_USERS
DAYS = int(_env_float("LOADTEST_DAYS", 1, 1, 7))
DEFAULT_DAY_S = 1440.0  # one simulated hour per real minute
DEFAULT_PEAK_USERS = 20
SOUTHBOUND_WINDOW = _service_window(os.environ.get("FPSLINK_SOUTHBOUND_HOURS", "07:00-23:00"))
HOUR_MESSAGE = "fpslink_simulated_hour"


def users_at(hour: float, peak_users: int) -> int:
    """The user count of a simulated hour: its share of the peak, never below one user."""
    return max(1, round(peak_users * HOURLY_PEAK_SHARE[int(hour) % 24]))


def southbound_open(hour: float) -> bool:
    start, end = SOUTHBOUND_WINDOW
    return start <= hour % 24 < end


def ramp_rate(peak_users: int, day_s: float) -> float:
    """Users per second that make the largest hour-to-hour step within a quarter of a simulated hour."""
    step = max(abs(users_at(h + 1, peak_users) - users_at(h, peak_users)) for h in range(24))
    return min(float(max(peak_users, 1)), max(1.0, step / max(day_s / 24 / 4, 0.25)))


@dataclass
class DayClock:
    """The simulated hour as the shape last announced it; None while no shape runs."""

    hour: float | None = None
    southbound: bool = True

    def set(self, hour: float | None, southbound: bool = True) -> None:
        self.hour, self.southbound = hour, southbound


DAY_CLOCK = DayClock()


class DayShape(LoadTestShape):
    """A 24-hour day of traffic compressed into LOADTEST_DAY_SECONDS; opt in with LOADTEST_SHAPE=day.

    The simulated day starts at 00:00 (UTC+8) and follows HOURLY_PEAK_SHARE of the peak (env
    LOADTEST_PEAK_USERS, else -u), one step per simulated hour. It ends by itself after LOADTEST_DAYS
    days. Each tick tells the users the simulated hour (by message, when they run on workers), so
    that mainland banks hold southbound payments outside FPSLINK_SOUTHBOUND_HOURS.
    """

    abstract = SHAPE != "day"
    use_common_options = True  # -u is the peak and -t the day when the LOADTEST_ variables are unset

    def plan(self) -> tuple[int, float]:
        """(peak users, real seconds of one simulated day)."""
        options = self.runner.environment.parsed_options if self.runner is not None else None
        peak = PEAK_USERS or getattr(options, "num_users", None) or DEFAULT_PEAK_USERS
        day_s = DAY_SECONDS or getattr(options, "run_time", None) or DEFAULT_DAY_S
        return int(peak), max(float(day_s), 24.0)

    def tick(self) -> tuple[int, float] | None:
        peak, day_s = self.plan()
        elapsed = self.get_run_time()
        if elapsed >= day_s * DAYS:
            DAY_CLOCK.set(None)
            return None
        hour = elapsed / day_s * 24 % 24
        DAY_CLOCK.set(hour, southbound_open(hour))
        if isinstance(self.runner, MasterRunner):
            self.runner.send_message(HOUR_MESSAGE, {"hour": hour, "southbound": southbound_open(hour)})
        return users_at(hour, peak), ramp_rate(peak, day_s)


@events.init.add_listener
def _listen_for_the_hour(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):

        def on_hour(msg: Any, **_: Any) -> None:
            DAY_CLOCK.set(float(msg.data["hour"]), bool(msg.data["southbound"]))

        environment.runner.register_message(HOUR_MESSAGE, on_hour)


class SetupFailed(RuntimeError):
    """The load test's world could not be built; the message says why."""


@dataclass
class Account:
    account_id: str
    participant_id: str
    system: str
    currency: str
    proxy: str | None
    per_transaction: Decimal
    limit_left: Decimal | None  # smallest remaining of the configured periods; None: no period limit
    funds: Decimal  # available balance as this process counts it

    def budget(self) -> Decimal:
        room = min(self.per_transaction, self.funds)
        return room if self.limit_left is None else min(room, self.limit_left)

    def take(self, amount: Decimal) -> None:
        self.funds -= amount
        if self.limit_left is not None:
            self.limit_left -= amount

    def give_back(self, amount: Decimal) -> None:
        self.funds += amount
        if self.limit_left is not None:
            self.limit_left += amount


@dataclass
class Bank:
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
    cents = random.randint(int(low * 100), int(high * 100))
    return (Decimal(cents) / 100).quantize(CENT)


def problem_code(resp: Any) -> str:
    try:
        body = resp.json()
    except Exception:
        return "no-json"
    return str(body.get("code", "no-code")) if isinstance(body, dict) else "no-code"


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
        self.outcomes: Counter[str] = Counter()
        self.warned: set[str] = set()

    # set-up ----------------------------------------------------------------------------------

    def ensure(self, host: str | None, tag: str | None = None, *, retry: bool = False) -> None:
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
        status, limits = self._call("GET", f"/v1/accounts/{account_id}/limits")
        if status != 200:
            raise SetupFailed(f"GET /v1/accounts/{account_id}/limits answered {status} {limits.get('code')}")
        if limits.get("currency") != currency:
            raise SetupFailed(f"limits of {account_id} are kept in {limits.get('currency')}, not {currency}")
        left = [Decimal(line["remaining"]) for line in limits["usage"] if line.get("remaining") is not None]
        return Account(
            account_id=account_id,
            participant_id=bank.participant_id,
            system=bank.system,
            currency=currency,
            proxy=proxy,
            per_transaction=Decimal(limits["per_transaction"]),
            limit_left=min(left) if left else None,
            funds=Decimal(now["available_balance"]),
        )

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

    def debtor(self, bank: Bank, amount: Decimal) -> Account:
        """An account of `bank` with room for `amount` (reserved here), opening more if none has.

        A rerun with the same LOADTEST_RUN_ID opens the same accounts again, spent or not, so this
        keeps opening until one fits.
        """
        fits = [a for a in bank.accounts if a.budget() >= amount]
        if not fits:
            with self._grow_lock:
                fits = [a for a in bank.accounts if a.budget() >= amount]
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
        chosen = random.choice(fits or bank.accounts)
        chosen.take(amount)
        return chosen

    def creditors(self, system: str) -> list[Account]:
        return [a for b in self.banks[system] for a in b.accounts]

    def count(self, what: str) -> None:
        self.outcomes[what] += 1

    def warn_once(self, what: str, message: str) -> None:
        if what not in self.warned:
            self.warned.add(what)
            log.warning(message)


WORLD = World()


def _world_tag(environment: Any) -> str:
    if isinstance(environment.runner, WorkerRunner):
        return f"{RUN_ID}W{environment.runner.worker_index}"
    return RUN_ID


@events.test_start.add_listener
def _build_world(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return
    try:
        WORLD.ensure(environment.host, _world_tag(environment), retry=True)
    except SetupFailed as exc:
        log.error("load test set-up failed: %s", exc)
        environment.process_exit_code = 2
        options = environment.parsed_options
        # headless: give up; web UI: stop this test and let the next start try again
        headless = options is None or options.headless or getattr(options, "autostart", False)
        gevent.spawn_later(0.1, environment.runner.quit if headless else environment.runner.stop)


@events.quitting.add_listener
def _last_csv_rows(environment: Any, **_: Any) -> None:
    """Give locust's --csv writer one more turn before it closes the files.

    It rewrites them once a second and closes them without a last write, so they would miss the
    final second of the run; the users have stopped by now, so one more turn writes the final numbers.
    """
    options = environment.parsed_options
    if getattr(options, "csv_prefix", None) and not isinstance(environment.runner, WorkerRunner):
        gevent.sleep(1.5)


@events.test_stop.add_listener
def _report(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner) or not WORLD.outcomes:
        return
    lines = [f"  {what:<48}{n:>8}" for what, n in sorted(WORLD.outcomes.items())]
    log.info("payment outcomes (world %s):\n%s", WORLD.tag, "\n".join(lines))


class BankUser(FastHttpUser):
    """One bank's API client; subclasses set the system and the tasks."""

    abstract = True
    system = "FPS"
    other = "IBPS"
    direction = "NORTHBOUND"
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        try:
            WORLD.ensure(self.host, _world_tag(self.environment))
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

    @task(5)
    def pay(self) -> None:
        if self.closed_now():
            WORLD.count(f"{self.direction} not sent: simulated night")
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
        account = random.choice(WORLD.creditors(self.other))
        return {"proxy_type": "MOBILE", "proxy_value": written_form(account.proxy or "")}

    def payment_body(self, debtor: Account, amount: Decimal) -> dict[str, Any]:
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
        amount = random_amount(*AMOUNTS[self.system])
        debtor = WORLD.debtor(self.bank, amount)
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
            WORLD.count(f"{self.direction} {status} {reason or ''}".rstrip())
            if status in SETTLING:
                resp.success()
            elif reason == "OUTSIDE_SERVICE_HOURS":
                debtor.give_back(amount)
                WORLD.warn_once(
                    reason, "southbound is outside its service hours: payments come back REJECTED"
                )
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
        with self._post_payment(key, body) as resp:
            replayed = resp.headers.get("Idempotent-Replayed", "")
            if resp.status_code not in (201, 202):
                resp.failure(f"retry: expected 201/202, got {resp.status_code} {problem_code(resp)}")
            elif replayed.lower() != "true":
                resp.failure("retry: no Idempotent-Replayed: true")
            elif resp.json().get("payment_id") != first.get("payment_id"):
                resp.failure("retry: answered another payment")
            else:
                WORLD.count("retries replayed")
                resp.success()

    def invalid_payment(self) -> None:
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
                WORLD.count(f"invalid {expected}")
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
                WORLD.count(f"breach {reason}")
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


class HongKongBank(BankUser):
    """An FPS bank: its customers pay mainland mobile numbers, often after a firm quote."""

    weight = 3
    system = "FPS"
    other = "IBPS"
    direction = "NORTHBOUND"

    @task(2)
    def quote(self) -> None:
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
            if resp.status_code == 201 and resp.json().get("quote_id"):
                resp.success()
                return str(resp.json()["quote_id"])
            resp.failure(f"expected 201, got {resp.status_code} {problem_code(resp)}")
            return None

    def before_payment(self, body: dict[str, Any]) -> bool:
        if random.random() >= 0.3:
            return True
        quote_id = self._quote(
            {"source_currency": "HKD", "target_currency": "CNY", "amount": body["amount"]}, "SEND"
        )
        if quote_id is None:
            return False
        body["quote_id"] = quote_id
        return True


class MainlandBank(BankUser):
    """An IBPS bank: its customers pay Hong Kong mobile numbers or account numbers."""

    weight = 2
    system = "IBPS"
    other = "FPS"
    direction = "SOUTHBOUND"

    def closed_now(self) -> bool:
        return not DAY_CLOCK.southbound

    def creditor_for(self, body: dict[str, Any]) -> dict[str, Any]:
        account = random.choice(WORLD.creditors("FPS"))
        if random.random() < 0.2:
            return {"account_id": account.account_id}
        return {"proxy_type": "MOBILE", "proxy_value": written_form(account.proxy or "")}
