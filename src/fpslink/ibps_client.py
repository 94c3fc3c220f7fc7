"""The gateway's typed client for mock_ibps: requests and answers are the wire's models (`ibps_wire`).

    IbpsError
    ├── IbpsUnavailable   no answer in time, connection refused, a 5xx, or the circuit is open:
    │   │                 the outcome is unknown
    │   └── IbpsBadAnswer an answer that is not the contract's (a missing field, a wrong type,
    │                     not JSON): as unknown as no answer
    └── IbpsRefused       a 4xx problem: IBPS understood and said no (carries its `code`)

Every call has an explicit time-out, capped by the caller's deadline when one is set (see
`deadline`). Idempotent calls (prepare, commit and abort are idempotent by payment id; look-ups
read) are retried a bounded number of times with exponential back-off and jitter. Circuits
(`fpslink.circuit`), one per bank and one for the link, open after consecutive failures, so a dead
IBPS answers at once instead of tying up requests, and let trial calls through after their reset
time; each call counts towards the banks it is made for (`circuit.acting_for`).

Answers are parsed from the raw bytes with `model_validate_json`, a whole batch at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import date
from typing import Any, Final, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from fpslink import metrics
from fpslink.circuit import GATEWAY, LINK, Circuits
from fpslink.ibps_http import AiohttpWire, Answer, HttpxWire, Wire, WireError, WireTimeout
from ibps_wire.amounts import CURRENCY
from ibps_wire.enums import Operation
from ibps_wire.schemas import (
    AbortItemIn,
    AccountIn,
    AccountOut,
    BatchIn,
    BatchItem,
    BatchVerdict,
    BatchVerdicts,
    ClockIn,
    ClockOut,
    CommitItemIn,
    FaultIn,
    FaultOut,
    FaultsOut,
    LedgerCheckOut,
    LegKind,
    ParticipantIn,
    ParticipantOut,
    PrepareIn,
    PrepareItemIn,
    PrepareOut,
    Problem,
    ProxyIn,
    ProxyOut,
    ProxyRegistered,
    StatementPageOut,
    StatementTsvPage,
    TransferOut,
    TransferPageOut,
    TransferReferences,
    trusted,
)

M = TypeVar("M", bound=BaseModel)

API: Final = "/ibps/v1"
LEDGER_CHECK_TIMEOUT_S: Final = 300.0
"""The wait for IBPS's ledger check: an audit, not a payment, bounded still."""
_payment_uuid: Final = TypeAdapter(UUID).validate_python
"""A payment id as the wire's UUID: pydantic parses it three times faster than ``uuid.UUID``."""


class IbpsError(Exception):
    pass


class IbpsUnavailable(IbpsError):
    """The call's outcome is unknown; repeat it (it is idempotent) or decide without it."""


class IbpsBadAnswer(IbpsUnavailable):
    """IBPS answered outside the contract; what it did is as unknown as if it had not answered."""


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


def circuit_changed(circuit: str, tripped: bool) -> None:
    """`fpslink_ibps_circuit_open` follows each circuit of this worker as it opens and closes."""
    label = "gateway" if circuit == GATEWAY else circuit
    metrics.IBPS_CIRCUIT_OPEN.labels(circuit=label).set(1 if tripped else 0)


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
        breaker_trials: int = 3,
        breaker_quorum: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport` stands IBPS in for tests (a fake, or mock_ibps in process); without one the
        client speaks HTTP over aiohttp (`fpslink.ibps_http` says why)."""
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.circuits = Circuits(
            threshold=breaker_threshold,
            reset_s=breaker_reset_s,
            trials=breaker_trials,
            quorum=breaker_quorum,
            on_change=circuit_changed,
        )
        # the link's series exists from the start: a dashboard shows it closed rather than no data
        circuit_changed(LINK, False)
        self._root = base_url.rstrip("/")
        self.batching = True
        """False once IBPS has answered that it has no batch endpoint: singles from then on."""
        self._wire: Wire = (
            AiohttpWire(self._root, token=token, max_connections=max_connections)
            if transport is None
            else HttpxWire(self._root, token=token, max_connections=max_connections, transport=transport)
        )

    async def aclose(self) -> None:
        await self._wire.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        body: BaseModel | None = None,
        params: Any = None,
        retries: int | None = None,
        guarded: bool = True,
        timeout_s: float | None = None,
    ) -> Answer:
        """One logical call: bounded attempts, each within the time-out (`timeout_s`, else the
        client's) and the caller's deadline.

        `guarded=False` (operator and check calls) bypasses the circuits and does not count towards
        them: the operator must be able to clear faults while a circuit is open.
        """
        per_attempt_s = self.timeout_s if timeout_s is None else timeout_s
        attempts = 1 + (self.retries if retries is None else retries)
        content = None if body is None else body.model_dump_json().encode()
        last = "no attempt made"
        for attempt in range(attempts):
            remaining = _remaining()
            if remaining is not None and remaining <= 0:
                metrics.IBPS_CALLS.labels(name, "deadline").inc()
                raise IbpsUnavailable(f"IBPS {name}: deadline passed ({last})")
            ticket = None
            if guarded:
                # a call behind the trials waits at most one attempt's time-out for their verdict
                wait_s = self.timeout_s if remaining is None else min(self.timeout_s, remaining)
                ticket = await self.circuits.enter(wait_s=wait_s)
                if ticket is None:
                    metrics.IBPS_CALLS.labels(name, "circuit_open").inc()
                    raise IbpsUnavailable(f"IBPS {name}: circuit open after repeated failures")
                remaining = _remaining()
                if remaining is not None and remaining <= 0:  # spent waiting behind the trials
                    self.circuits.abandoned(ticket)
                    metrics.IBPS_CALLS.labels(name, "deadline").inc()
                    raise IbpsUnavailable(f"IBPS {name}: deadline passed behind the circuit's trials")
            timeout = per_attempt_s if remaining is None else min(per_attempt_s, remaining)
            try:
                response = await self._wire.send(
                    method, API + path, content=content, params=params, timeout_s=timeout
                )
            except WireTimeout as exc:
                last, outcome = f"no answer within {timeout:.2f} s ({exc})", "timeout"
            except WireError as exc:
                last, outcome = str(exc), "error"
            except BaseException:
                if ticket is not None:  # left unreported, a trial would hold its slot for good
                    self.circuits.abandoned(ticket)
                raise
            else:
                if response.status_code < 500:
                    if ticket is not None:
                        self.circuits.answered(ticket)
                    metrics.IBPS_CALLS.labels(name, "ok" if response.status_code < 400 else "refused").inc()
                    return response
                last, outcome = f"HTTP {response.status_code}", "error"
            if ticket is not None:
                self.circuits.failed(ticket)
            metrics.IBPS_CALLS.labels(name, outcome).inc()
            if attempt + 1 < attempts:
                pause = min(self.backoff_s * 2**attempt * (1 + random.random()), 1.0)
                remaining = _remaining()
                if remaining is not None:
                    pause = min(pause, max(remaining, 0))
                await asyncio.sleep(pause)
        raise IbpsUnavailable(f"IBPS {name}: {last} after {attempts} attempt(s)")

    async def _answer(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        name: str,
        body: BaseModel | None = None,
        params: Any = None,
        retries: int | None = None,
        guarded: bool = True,
        timeout_s: float | None = None,
    ) -> M:
        """One call whose 2xx answer is a `model`; a 4xx raises IbpsRefused."""
        response = await self._call(
            method,
            path,
            name=name,
            body=body,
            params=params,
            retries=retries,
            guarded=guarded,
            timeout_s=timeout_s,
        )
        if response.status_code >= 400:
            raise _refusal(response)
        return _parse(model, response, name)

    async def _found(self, model: type[M], path: str, *, name: str) -> M | None:
        """A read whose 404 means "no such thing" rather than a refusal."""
        response = await self._call("GET", path, name=name)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _refusal(response)
        return _parse(model, response, name)

    def circuit_open_for(self, participant_id: str | None) -> bool:
        """Whether this bank's calls are refused now: its own circuit, or the link's, is open."""
        return self.circuits.is_open(participant_id)

    async def healthy(self) -> bool:
        try:
            response = await self._wire.send(
                "GET", "/healthz", content=None, params=None, timeout_s=self.timeout_s
            )
        except (WireTimeout, WireError):
            return False
        return response.status_code == 200

    # directory and accounts -------------------------------------------------------------------

    async def create_participant(self, *, participant_id: str, name: str) -> ParticipantOut:
        return await self._answer(
            ParticipantOut,
            "POST",
            "/participants",
            name="participant",
            retries=0,
            body=ParticipantIn.model_construct(participant_id=participant_id, name=name),
        )

    async def open_account(
        self, *, account_id: str, participant_id: str, holder_name: str, opening_balance_minor: int
    ) -> AccountOut:
        return await self._answer(
            AccountOut,
            "POST",
            "/accounts",
            name="account",
            retries=0,
            body=AccountIn.model_construct(
                account_id=account_id,
                participant_id=participant_id,
                holder_name=holder_name,
                currency=CURRENCY,
                opening_balance_minor=opening_balance_minor,
            ),
        )

    async def get_account(self, account_id: str) -> AccountOut | None:
        return await self._found(AccountOut, f"/accounts/{account_id}", name="account_read")

    async def register_proxy(self, *, proxy_value: str, account_id: str) -> ProxyRegistered:
        return await self._answer(
            ProxyRegistered,
            "POST",
            "/proxies",
            name="proxy_register",
            retries=0,
            body=ProxyIn.model_construct(proxy_value=proxy_value, account_id=account_id),
        )

    async def lookup_proxy(self, proxy_value: str) -> ProxyOut | None:
        return await self._found(ProxyOut, f"/proxies/{proxy_value.replace('+', '%2B')}", name="lookup")

    # two-phase settlement ---------------------------------------------------------------------

    async def prepare(
        self,
        *,
        payment_id: str,
        kind: LegKind,
        account_id: str,
        amount_minor: int,
        references: TransferReferences | None = None,
    ) -> PrepareOut:
        body = PrepareIn.model_construct(
            payment_id=_payment_uuid(payment_id),
            kind=kind,
            account_id=account_id,
            amount_minor=amount_minor,
            currency=CURRENCY,
            references=references,
        )
        return await self._answer(PrepareOut, "POST", "/transfers/prepare", name="prepare", body=body)

    async def batch(self, items: Sequence[BatchItem]) -> list[BatchVerdict]:
        """Many prepare/commit/abort calls in one exchange, one answer per item, in order.

        Not retried: an item without an answer, or a batch without one, is repeated alone by the
        caller, whose single calls carry the retries. Raises IbpsUnavailable when the batch got no
        answer (its items' outcomes are all unknown) and IbpsRefused when IBPS refused it whole.
        """
        if not self.batching:
            raise IbpsRefused(404, "NO_BATCH_ENDPOINT", "this IBPS has no batch endpoint")
        response = await self._call(
            "POST",
            "/transfers/batch",
            name="batch",
            body=BatchIn.model_construct(items=list(items)),
            retries=0,
        )
        if response.status_code in (404, 405):
            self.batching = False
        if response.status_code >= 400:
            raise _refusal(response)
        results = _parse(BatchVerdicts, response, "batch").results
        if len(results) != len(items):
            raise IbpsBadAnswer(f"IBPS batch answered {len(results)} results for {len(items)} items")
        return results

    @staticmethod
    def prepare_item(
        *,
        payment_id: str,
        kind: LegKind,
        account_id: str,
        amount_minor: int,
        references: TransferReferences | None = None,
    ) -> PrepareItemIn:
        """A batch's prepare, built from values the gateway holds (no validation: it would cost per item)."""
        return trusted(
            PrepareItemIn,
            op=Operation.PREPARE,
            payment_id=_payment_uuid(payment_id),
            kind=kind,
            account_id=account_id,
            amount_minor=amount_minor,
            currency=CURRENCY,
            references=references,
        )

    @staticmethod
    def finish_item(payment_id: str, *, commit: bool) -> CommitItemIn | AbortItemIn:
        """A batch's commit, or abort."""
        if commit:
            return trusted(CommitItemIn, op=Operation.COMMIT, payment_id=_payment_uuid(payment_id))
        return trusted(AbortItemIn, op=Operation.ABORT, payment_id=_payment_uuid(payment_id))

    async def commit(self, payment_id: str) -> TransferOut:
        return await self._answer(TransferOut, "POST", f"/transfers/{payment_id}/commit", name="commit")

    async def abort(self, payment_id: str) -> TransferOut:
        return await self._answer(TransferOut, "POST", f"/transfers/{payment_id}/abort", name="abort")

    async def get_transfer(self, payment_id: str) -> TransferOut | None:
        return await self._found(TransferOut, f"/transfers/{payment_id}", name="transfer_read")

    async def list_transfers(self, *, after: int | None, limit: int = 1000) -> TransferPageOut:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return await self._answer(
            TransferPageOut, "GET", "/transfers", name="transfers", params=params, guarded=False
        )

    async def ledger_check(self) -> LedgerCheckOut:
        """IBPS's own invariants: sums over its whole ledger, which take seconds once it holds
        millions of transfers (a one-hour soak's 1.06 million payments outlasted the 2 s of a
        payment's call three times), so the check waits `LEDGER_CHECK_TIMEOUT_S`, once."""
        return await self._answer(
            LedgerCheckOut,
            "GET",
            "/ledger/check",
            name="ledger_check",
            guarded=False,
            retries=0,
            timeout_s=LEDGER_CHECK_TIMEOUT_S,
        )

    async def statement_page(
        self, business_date: date, *, after: int = 0, limit: int = 20_000
    ) -> StatementPageOut:
        """One page of the IBPS statement of a UTC+8 business date."""
        return await self._answer(
            StatementPageOut,
            "GET",
            f"/statements/{business_date.isoformat()}",
            name="statement",
            params={"after": after, "limit": limit},
        )

    async def statement_tsv_page(
        self, business_date: date, *, after: int = 0, limit: int = 50_000
    ) -> StatementTsvPage:
        """One page of the statement in COPY text format, for bulk loading without parsing rows."""
        response = await self._call(
            "GET",
            f"/statements/{business_date.isoformat()}/tsv",
            name="statement",
            params={"after": after, "limit": limit},
        )
        if response.status_code >= 400:
            raise _refusal(response)
        try:
            return StatementTsvPage.of(response.content, response.headers)
        except ValueError as exc:
            raise IbpsBadAnswer(f"IBPS statement: {exc}") from exc

    # sandbox fault injection ----------------------------------------------------------------

    async def add_fault(self, rule: FaultIn) -> FaultOut:
        return await self._answer(
            FaultOut, "POST", "/sandbox/faults", name="faults", retries=0, body=rule, guarded=False
        )

    async def list_faults(self) -> FaultsOut:
        return await self._answer(
            FaultsOut, "GET", "/sandbox/faults", name="faults", retries=0, guarded=False
        )

    async def clear_faults(self) -> None:
        response = await self._call("DELETE", "/sandbox/faults", name="faults", retries=0, guarded=False)
        if response.status_code >= 400:
            raise _refusal(response)

    # the sandbox clock ------------------------------------------------------------------------

    async def clock(self) -> ClockOut:
        return await self._answer(ClockOut, "GET", "/sandbox/clock", name="clock", retries=0, guarded=False)

    async def set_clock(self, offset_us: int) -> ClockOut:
        """Set IBPS's offset from its wall clock: an absolute value, so a repeat is harmless and retried."""
        return await self._answer(
            ClockOut,
            "PUT",
            "/sandbox/clock",
            name="clock",
            body=ClockIn.model_construct(offset_us=offset_us),
            guarded=False,
        )


def _remaining() -> float | None:
    limit = _DEADLINE.get()
    return None if limit is None else limit - time.monotonic()


def _parse(model: type[M], response: Answer, name: str) -> M:
    """The answer as `model`, or IbpsBadAnswer naming the first thing wrong with it."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        raise IbpsBadAnswer(
            f"IBPS {name}: HTTP {response.status_code} is not a {model.__name__} ({where}: {first['msg']})"
        ) from exc


def _refusal(response: Answer) -> IbpsRefused:
    """A 4xx as IbpsRefused, read leniently: whatever the body, the refusal itself is certain."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return IbpsRefused(response.status_code, "IBPS_ERROR", response.text[:200])
    return IbpsRefused(response.status_code, str(body.get("code", "IBPS_ERROR")), str(body.get("detail", "")))


def refusal_of(answer: BatchVerdict) -> IbpsRefused:
    """A batch item's 4xx as the IbpsRefused its single call would have raised."""
    if isinstance(answer.body, Problem):
        return IbpsRefused(answer.status, answer.body.code, answer.body.detail)
    return IbpsRefused(answer.status, "IBPS_ERROR", "")


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
        breaker_trials=settings.ibps_breaker_trials,
        breaker_quorum=settings.ibps_breaker_quorum,
        transport=transport,
    )
