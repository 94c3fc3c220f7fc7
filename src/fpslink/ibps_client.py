"""The gateway's typed client for mock_ibps.

    IbpsError
    ├── IbpsUnavailable   no answer in time, connection refused, a 5xx, or the circuit is open:
    │                     the outcome is unknown
    └── IbpsRefused       a 4xx problem: IBPS understood and said no (carries its `code`)

Every call has an explicit time-out, capped by the caller's deadline when one is set (see
`deadline`). Idempotent calls (prepare, commit and abort are idempotent by payment id; look-ups
read) are retried a bounded number of times with exponential back-off and jitter. A circuit breaker
opens after consecutive failures, so a dead IBPS answers at once instead of tying up requests, and
lets one trial call through after its reset time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import httpx

from fpslink import metrics

TransferKind = Literal["CREDIT", "DEBIT"]


class IbpsError(Exception):
    pass


class IbpsUnavailable(IbpsError):
    """The call's outcome is unknown; repeat it (it is idempotent) or decide without it."""


class IbpsRefused(IbpsError):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"IBPS answered {status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


_DEADLINE: ContextVar[float | None] = ContextVar("ibps_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every IBPS call made inside the block (retries included) to `seconds` from now."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


class CircuitBreaker:
    """Closed -> open after `threshold` consecutive failures -> one trial after `reset_s` -> closed."""

    def __init__(
        self, *, threshold: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self.clock = clock
        """Seconds on a monotonic scale; tests pass a fake one to move time without sleeping."""
        self.failures = 0
        self.opened_at: float | None = None
        self.trial_in_flight = False

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None and (
            self.trial_in_flight or self.clock() - self.opened_at < self.reset_s
        )

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if self.trial_in_flight or self.clock() - self.opened_at < self.reset_s:
            return False
        self.trial_in_flight = True
        return True

    def success(self) -> None:
        self.failures, self.opened_at, self.trial_in_flight = 0, None, False

    def abandon(self) -> None:
        """The trial ended without an answer (cancelled): it proves nothing, so let another call try."""
        self.trial_in_flight = False

    def failure(self) -> None:
        self.failures += 1
        self.trial_in_flight = False
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = self.clock()


@dataclass(frozen=True, slots=True)
class PrepareOutcome:
    prepared: bool
    reason_code: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """What IBPS answered for one item of a batch: the status and body of the equivalent single call."""

    status: int
    body: dict[str, Any]

    @property
    def unknown(self) -> bool:
        """No usable answer (an error or a time-out inside IBPS): the item's outcome is unknown."""
        return self.status >= 500

    def refusal(self) -> IbpsRefused:
        return IbpsRefused(
            self.status, str(self.body.get("code", "IBPS_ERROR")), str(self.body.get("detail", ""))
        )


BatchOp = dict[str, Any]
"""One item of a batch: {"op": "prepare", payment_id, kind, account_id, amount, currency} or
{"op": "commit" | "abort", payment_id}."""

MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class IbpsProxy:
    proxy_value: str
    account_id: str
    participant_id: str
    holder_name: str
    currency: str


class IbpsClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout_s: float,
        max_connections: int = 100,
        retries: int = 2,
        backoff_s: float = 0.05,
        breaker_threshold: int = 5,
        breaker_reset_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.breaker = CircuitBreaker(threshold=breaker_threshold, reset_s=breaker_reset_s)
        self._root = base_url.rstrip("/")
        self.batching = True
        """False once IBPS has answered that it has no batch endpoint: singles from then on."""
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/ibps/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        json: Any = None,
        params: Any = None,
        retries: int | None = None,
        guarded: bool = True,
    ) -> httpx.Response:
        """One logical call: bounded attempts, each within the time-out and the caller's deadline.

        `guarded=False` (operator and check calls) bypasses the circuit breaker and does not count
        towards it: the operator must be able to clear faults while the circuit is open.
        """
        attempts = 1 + (self.retries if retries is None else retries)
        last = "no attempt made"
        for attempt in range(attempts):
            remaining = _remaining()
            if remaining is not None and remaining <= 0:
                metrics.IBPS_CALLS.labels(name, "deadline").inc()
                raise IbpsUnavailable(f"IBPS {name}: deadline passed ({last})")
            if guarded and not self.breaker.allow():
                metrics.IBPS_CALLS.labels(name, "circuit_open").inc()
                raise IbpsUnavailable(f"IBPS {name}: circuit open after repeated failures")
            trial = guarded and self.breaker.opened_at is not None  # through an open circuit: the trial
            timeout = self.timeout_s if remaining is None else min(self.timeout_s, remaining)
            try:
                response = await self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
                )
            except httpx.TimeoutException as exc:
                last, outcome = f"no answer within {timeout:.2f} s ({type(exc).__name__})", "timeout"
            except httpx.TransportError as exc:
                last, outcome = f"{type(exc).__name__}", "error"
            except BaseException:
                if trial:  # left unreported, the trial would keep the circuit open for good
                    self.breaker.abandon()
                raise
            else:
                if response.status_code < 500:
                    if guarded:
                        self.breaker.success()
                    metrics.IBPS_CALLS.labels(name, "ok" if response.status_code < 400 else "refused").inc()
                    return response
                last, outcome = f"HTTP {response.status_code}", "error"
            if guarded:
                self.breaker.failure()
            metrics.IBPS_CALLS.labels(name, outcome).inc()
            if attempt + 1 < attempts:
                pause = min(self.backoff_s * 2**attempt * (1 + random.random()), 1.0)
                remaining = _remaining()
                if remaining is not None:
                    pause = min(pause, max(remaining, 0))
                await asyncio.sleep(pause)
        raise IbpsUnavailable(f"IBPS {name}: {last} after {attempts} attempt(s)")

    async def _json(
        self,
        method: str,
        path: str,
        *,
        name: str,
        json: Any = None,
        params: Any = None,
        retries: int | None = None,
        guarded: bool = True,
    ) -> dict[str, Any]:
        response = await self._call(
            method, path, name=name, json=json, params=params, retries=retries, guarded=guarded
        )
        if response.status_code >= 400:
            raise _refusal(response)
        body: dict[str, Any] = response.json()
        return body

    @property
    def circuit_open(self) -> bool:
        return self.breaker.is_open

    async def healthy(self) -> bool:
        try:
            response = await self._http.get(f"{self._root}/healthz")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    # directory and accounts -------------------------------------------------------------------

    async def create_participant(self, *, participant_id: str, name: str) -> None:
        await self._json(
            "POST",
            "/participants",
            name="participant",
            retries=0,
            json={"participant_id": participant_id, "name": name},
        )

    async def open_account(
        self, *, account_id: str, participant_id: str, holder_name: str, opening_balance: str
    ) -> dict[str, Any]:
        return await self._json(
            "POST",
            "/accounts",
            name="account",
            retries=0,
            json={
                "account_id": account_id,
                "participant_id": participant_id,
                "holder_name": holder_name,
                "currency": "CNY",
                "opening_balance": opening_balance,
            },
        )

    async def get_account(self, account_id: str) -> dict[str, Any] | None:
        response = await self._call("GET", f"/accounts/{account_id}", name="account_read")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _refusal(response)
        body: dict[str, Any] = response.json()
        return body

    async def register_proxy(self, *, proxy_value: str, account_id: str) -> dict[str, Any]:
        return await self._json(
            "POST",
            "/proxies",
            name="proxy_register",
            retries=0,
            json={"proxy_value": proxy_value, "account_id": account_id},
        )

    async def lookup_proxy(self, proxy_value: str) -> IbpsProxy | None:
        response = await self._call("GET", f"/proxies/{proxy_value.replace('+', '%2B')}", name="lookup")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _refusal(response)
        body = response.json()
        return IbpsProxy(
            proxy_value=body["proxy_value"],
            account_id=body["account_id"],
            participant_id=body["participant_id"],
            holder_name=body["holder_name"],
            currency=body["currency"],
        )

    # two-phase settlement ---------------------------------------------------------------------

    async def prepare(
        self, *, payment_id: str, kind: TransferKind, account_id: str, amount: Decimal
    ) -> PrepareOutcome:
        op = self.prepare_op(payment_id=payment_id, kind=kind, account_id=account_id, amount=amount)
        del op["op"]
        body = await self._json("POST", "/transfers/prepare", name="prepare", json=op)
        return self.prepare_outcome(body)

    async def batch(self, items: list[BatchOp]) -> list[BatchAnswer]:
        """Many prepare/commit/abort calls in one exchange, one answer per item, in order.

        Not retried: an item without an answer, or a batch without one, is repeated alone by the
        caller, whose single calls carry the retries. Raises IbpsUnavailable when the batch got no
        answer (its items' outcomes are all unknown) and IbpsRefused when IBPS refused it whole.
        """
        if not self.batching:
            raise IbpsRefused(404, "NO_BATCH_ENDPOINT", "this IBPS has no batch endpoint")
        response = await self._call(
            "POST", "/transfers/batch", name="batch", json={"items": items}, retries=0
        )
        if response.status_code in (404, 405):
            self.batching = False
        if response.status_code >= 400:
            raise _refusal(response)
        results = response.json()["results"]
        if len(results) != len(items):
            raise IbpsUnavailable(f"IBPS batch answered {len(results)} results for {len(items)} items")
        return [BatchAnswer(int(r["status"]), r["body"] or {}) for r in results]

    @staticmethod
    def prepare_op(*, payment_id: str, kind: TransferKind, account_id: str, amount: Decimal) -> BatchOp:
        return {
            "op": "prepare",
            "payment_id": payment_id,
            "kind": kind,
            "account_id": account_id,
            "amount": f"{amount:f}",
            "currency": "CNY",
        }

    @staticmethod
    def prepare_outcome(body: dict[str, Any]) -> PrepareOutcome:
        return PrepareOutcome(
            prepared=body["outcome"] == "PREPARED",
            reason_code=body.get("reason_code"),
            reason=body.get("reason"),
        )

    async def commit(self, payment_id: str) -> None:
        await self._json("POST", f"/transfers/{payment_id}/commit", name="commit")

    async def abort(self, payment_id: str) -> None:
        await self._json("POST", f"/transfers/{payment_id}/abort", name="abort")

    async def get_transfer(self, payment_id: str) -> dict[str, Any] | None:
        response = await self._call("GET", f"/transfers/{payment_id}", name="transfer_read")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _refusal(response)
        body: dict[str, Any] = response.json()
        return body

    async def list_transfers(self, *, after: int | None, limit: int = 1000) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return await self._json("GET", "/transfers", name="transfers", params=params, guarded=False)

    async def ledger_check(self) -> dict[str, Any]:
        return await self._json("GET", "/ledger/check", name="ledger_check", guarded=False)

    async def statement_page(
        self, business_date: date, *, after: int = 0, limit: int = 20_000
    ) -> dict[str, Any]:
        """One page of the IBPS statement of a UTC+8 business date: `columns`, `entries`, `next_after`."""
        return await self._json(
            "GET",
            f"/statements/{business_date.isoformat()}",
            name="statement",
            params={"after": after, "limit": limit},
        )

    async def statement_tsv_page(
        self, business_date: date, *, after: int = 0, limit: int = 50_000
    ) -> dict[str, Any]:
        """One page of the statement in COPY text format, for bulk loading without parsing rows.

        Returns `data` (bytes, one entry a line), `columns`, `count`, `next_after` (None on the last
        page) and `total` (the day's entries, first page only).
        """
        response = await self._call(
            "GET",
            f"/statements/{business_date.isoformat()}/tsv",
            name="statement",
            params={"after": after, "limit": limit},
        )
        if response.status_code >= 400:
            raise _refusal(response)
        headers = response.headers
        following, total = headers.get("Fpslink-Next-After"), headers.get("Fpslink-Total")
        return {
            "data": response.content,
            "columns": tuple(headers.get("Fpslink-Columns", "").split(",")),
            "count": int(headers.get("Fpslink-Count", "0")),
            "next_after": None if following is None else int(following),
            "total": None if total is None else int(total),
        }

    # sandbox fault injection ----------------------------------------------------------------

    async def add_fault(self, rule: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", "/sandbox/faults", name="faults", retries=0, json=rule, guarded=False)

    async def list_faults(self) -> dict[str, Any]:
        return await self._json("GET", "/sandbox/faults", name="faults", retries=0, guarded=False)

    async def clear_faults(self) -> None:
        response = await self._call("DELETE", "/sandbox/faults", name="faults", retries=0, guarded=False)
        if response.status_code >= 400:
            raise _refusal(response)


def _remaining() -> float | None:
    limit = _DEADLINE.get()
    return None if limit is None else limit - time.monotonic()


def _refusal(response: httpx.Response) -> IbpsRefused:
    try:
        body = response.json()
        code, detail = str(body.get("code", "IBPS_ERROR")), str(body.get("detail", ""))
    except ValueError:
        code, detail = "IBPS_ERROR", response.text[:200]
    return IbpsRefused(response.status_code, code, detail)


def client_from_settings(settings: Any, *, transport: httpx.AsyncBaseTransport | None = None) -> IbpsClient:
    """The client configured by the FPSLINK_IBPS_* settings."""
    return IbpsClient(
        base_url=settings.ibps_url,
        token=settings.ibps_token,
        timeout_s=settings.ibps_timeout_s,
        max_connections=settings.ibps_max_connections,
        retries=settings.ibps_retries,
        backoff_s=settings.ibps_backoff_s,
        breaker_threshold=settings.ibps_breaker_threshold,
        breaker_reset_s=settings.ibps_breaker_reset_s,
        transport=transport,
    )
