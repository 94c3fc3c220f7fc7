"""HTTP routes: parse, call one use case, serialise. Errors travel up as the error tree.

``POST /ibps/v1/transfers/batch`` takes ``{"items": [...]}``, 1 to 1000 items of different
payments, each ``{"op": "prepare", <the prepare body>}``, ``{"op": "commit", "payment_id": ...}``
or ``{"op": "abort", "payment_id": ...}``. It applies them in order in one transaction and
answers 200 ``{"results": [{"payment_id", "op", "status", "body"}, ...]}`` in item order, where
``status`` and ``body`` are what the single endpoint would have answered for the item (its JSON,
or its problem+json and status). Faults are drawn per item as for single calls; an item answered
503 or 504 has an unknown outcome for the caller, who retries it alone. A 5xx for the whole
batch means nothing in it was applied.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from ibps_wire.amounts import format_amount
from ibps_wire.enums import Operation
from ibps_wire.sandbox_clock import micros_of
from ibps_wire.schemas import (
    AbortItemIn,
    AccountIn,
    AccountOut,
    BatchIn,
    BatchOut,
    BatchResultOut,
    ClockIn,
    ClockOut,
    CommitItemIn,
    FaultIn,
    FaultOut,
    FaultsOut,
    Health,
    LedgerCheckOut,
    ParticipantIn,
    ParticipantOut,
    PrepareIn,
    PrepareItemIn,
    PrepareOut,
    ProxyIn,
    ProxyOut,
    ProxyRegistered,
    ProxyValue,
    TransferOut,
    TransferPageOut,
    trusted,
)
from mock_ibps.clock import IbpsClock
from mock_ibps.domain import (
    AbortRequest,
    Answer,
    CommitRequest,
    PrepareRequest,
    PrepareResult,
    Reason,
    TransferRequest,
)
from mock_ibps.errors import IbpsError, RequestInvalid, Unauthorized
from mock_ibps.faults import MAGIC_REFUSED_MINOR, BatchCall, Call, FaultInjector, FaultRule
from mock_ibps.schemas import account_out, prepare_out, problem, proxy_out, proxy_registered, transfer_out
from mock_ibps.service import IbpsLedger

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 500


# The dependencies are async on purpose: FastAPI runs a sync one in its thread pool, two thread
# hops per dependency on every request.


async def get_ledger(request: Request) -> IbpsLedger:
    ledger: IbpsLedger = request.app.state.ledger
    return ledger


async def get_faults(request: Request) -> FaultInjector:
    faults: FaultInjector = request.app.state.faults
    return faults


def token_matches(expected: str, authorization: str | None) -> bool:
    """Bearer token check in constant time, so the token cannot be guessed byte by byte. An app
    without a token (built, not served: serving refuses one) lets nobody in, not everybody."""
    scheme, _, token = (authorization or "").partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and secrets.compare_digest(token.strip().encode(), expected.encode())
    )


async def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    if not token_matches(request.app.state.settings.token, authorization):
        raise Unauthorized("send Authorization: Bearer <token>")


async def get_clock(request: Request) -> IbpsClock:
    clock: IbpsClock = request.app.state.clock
    return clock


LedgerDep = Annotated[IbpsLedger, Depends(get_ledger)]
FaultsDep = Annotated[FaultInjector, Depends(get_faults)]
ClockDep = Annotated[IbpsClock, Depends(get_clock)]

health_router = APIRouter()
router = APIRouter(prefix="/ibps/v1", dependencies=[Depends(require_token)])


@health_router.get("/healthz")
async def healthz() -> Health:
    return Health()


@router.post("/participants", status_code=status.HTTP_201_CREATED)
async def create_participant(body: ParticipantIn, ledger: LedgerDep, response: Response) -> ParticipantOut:
    participant, created = await ledger.open_participant(participant_id=body.participant_id, name=body.name)
    if not created:
        response.status_code = status.HTTP_200_OK
    return ParticipantOut.model_construct(participant_id=participant.participant_id, name=participant.name)


@router.post("/accounts", status_code=status.HTTP_201_CREATED)
async def create_account(body: AccountIn, ledger: LedgerDep, response: Response) -> AccountOut:
    account, created = await ledger.open_account(
        account_id=body.account_id,
        participant_id=body.participant_id,
        holder_name=body.holder_name,
        currency=body.currency,
        opening_balance_minor=body.opening_balance_minor,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return account_out(account)


@router.get("/accounts/{account_id}")
async def get_account(account_id: str, ledger: LedgerDep) -> AccountOut:
    return account_out(await ledger.get_account(account_id=account_id))


@router.post("/proxies", status_code=status.HTTP_201_CREATED)
async def register_proxy(body: ProxyIn, ledger: LedgerDep) -> ProxyRegistered:
    proxy = await ledger.register_proxy(proxy_value=body.proxy_value, account_id=body.account_id)
    return proxy_registered(proxy)


@router.get("/proxies/{proxy_value}")
async def resolve_proxy(
    proxy_value: Annotated[ProxyValue, Path()], ledger: LedgerDep, faults: FaultsDep
) -> ProxyOut:
    return await lookup(proxy_value, ledger, faults)


async def lookup(proxy_value: str, ledger: IbpsLedger, faults: FaultInjector) -> ProxyOut:
    """The route's answer, which the fast lane (`mock_ibps.fast`) serves too."""
    proxy = await faults.run(Call.LOOKUP, proxy_value, lambda: ledger.resolve_proxy(proxy_value=proxy_value))
    return proxy_out(proxy)


def _prepare_request(body: PrepareIn, payment_id: str) -> PrepareRequest:
    return PrepareRequest(
        payment_id,
        body.kind,
        body.account_id,
        body.amount_minor,
        body.currency,
        Reason.RR04 if body.amount_minor == MAGIC_REFUSED_MINOR else None,
        body.references,
    )


@router.post("/transfers/prepare")
async def prepare_transfer(body: PrepareIn, ledger: LedgerDep, faults: FaultsDep) -> PrepareOut:
    request = _prepare_request(body, str(body.payment_id))
    result = await faults.run(
        Call.PREPARE, request.payment_id, lambda: ledger.prepare(request), amount_minor=body.amount_minor
    )
    return prepare_out(result)


@router.post("/transfers/batch")
async def transfer_batch(body: BatchIn, ledger: LedgerDep, faults: FaultsDep) -> BatchOut:
    """Prepares, commits and aborts of up to 1000 payments in one exchange and one transaction.

    Each result carries the status and body the single endpoint would have answered for its item.
    """
    return await run_batch(body, ledger, faults)


async def run_batch(body: BatchIn, ledger: IbpsLedger, faults: FaultInjector) -> BatchOut:
    """The route's answer, which the fast lane (`mock_ibps.fast`) serves too."""
    requests: list[TransferRequest] = []
    calls: list[BatchCall] = []
    for item in body.items:
        key = str(item.payment_id)
        # the exact class, as validation makes it: isinstance on a model class is an ABC check, slower
        if type(item) is PrepareItemIn:
            requests.append(_prepare_request(item, key))
            calls.append(BatchCall(Call.PREPARE, key, item.amount_minor))
        elif type(item) is CommitItemIn:
            requests.append(CommitRequest(key))
            calls.append(BatchCall(Call.COMMIT, key))
        elif type(item) is AbortItemIn:
            requests.append(AbortRequest(key))
            calls.append(BatchCall(Call.ABORT, key))
        else:
            raise TypeError(f"not a batch item: {item!r}")
    answers = await faults.run_batch(
        calls, lambda delivered: ledger.apply_batch([requests[index] for index in delivered])
    )
    return BatchOut.model_construct(
        results=[
            _batch_result(item.op, call.key, answer)
            for item, call, answer in zip(body.items, calls, answers, strict=True)
        ]
    )


def _batch_result(op: Operation, payment_id: str, answer: Answer) -> BatchResultOut:
    if isinstance(answer, IbpsError):
        return trusted(
            BatchResultOut, payment_id=payment_id, op=op, status=answer.status, body=problem(answer)
        )
    out = prepare_out(answer) if isinstance(answer, PrepareResult) else transfer_out(answer)
    return trusted(BatchResultOut, payment_id=payment_id, op=op, status=status.HTTP_200_OK, body=out)


@router.post("/transfers/{payment_id}/commit")
async def commit_transfer(payment_id: UUID, ledger: LedgerDep, faults: FaultsDep) -> TransferOut:
    key = str(payment_id)
    return transfer_out(await faults.run(Call.COMMIT, key, lambda: ledger.commit(payment_id=key)))


@router.post("/transfers/{payment_id}/abort")
async def abort_transfer(payment_id: UUID, ledger: LedgerDep, faults: FaultsDep) -> TransferOut:
    key = str(payment_id)
    return transfer_out(await faults.run(Call.ABORT, key, lambda: ledger.abort(payment_id=key)))


@router.get("/transfers/{payment_id}")
async def get_transfer(payment_id: UUID, ledger: LedgerDep) -> TransferOut:
    return transfer_out(await ledger.get_transfer(payment_id=str(payment_id)))


@router.get("/transfers")
async def list_transfers(
    ledger: LedgerDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> TransferPageOut:
    page = await ledger.list_transfers(after_seq=after, limit=limit)
    return TransferPageOut.model_construct(
        items=[transfer_out(item) for item in page.items], next_after=page.next_after
    )


@router.get("/ledger/check")
async def ledger_check(ledger: LedgerDep) -> LedgerCheckOut:
    check = await ledger.check()
    return LedgerCheckOut.model_construct(
        ok=check.ok,
        violations=check.violations,
        balances={currency: format_amount(total) for currency, total in check.balances_minor.items()},
        accounts=check.accounts,
    )


@router.post("/sandbox/faults", status_code=status.HTTP_201_CREATED)
async def add_fault(body: FaultIn, faults: FaultsDep) -> FaultOut:
    """Inject a fault from now on; decisions are reproducible from the seed."""
    try:
        rule = faults.add(
            FaultRule(
                call=body.call,
                kind=body.kind,
                probability=body.probability,
                seed=body.seed,
                latency_ms=body.latency_ms,
                hang_ms=body.hang_ms,
                only_attempts=body.only_attempts,
            )
        )
    except ValueError as exc:
        raise RequestInvalid(str(exc)) from exc
    return FaultOut.model_construct(**rule.as_dict())


@router.get("/sandbox/faults")
async def list_faults(faults: FaultsDep) -> FaultsOut:
    injected: dict[str, dict[str, int]] = {}
    for (call, kind), count in sorted(faults.injected.items()):
        injected.setdefault(call, {})[kind] = count
    return FaultsOut.model_construct(
        rules=[FaultOut.model_construct(**rule.as_dict()) for rule in faults.rules], injected=injected
    )


@router.delete("/sandbox/faults", status_code=status.HTTP_204_NO_CONTENT)
async def clear_faults(faults: FaultsDep) -> Response:
    faults.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _clock_out(clock: IbpsClock) -> ClockOut:
    return ClockOut.model_construct(offset_us=micros_of(clock.offset.value), now=clock.now())


@router.get("/sandbox/clock")
async def get_clock_offset(clock: ClockDep) -> ClockOut:
    """IBPS's time and its offset from the wall clock."""
    return _clock_out(clock)


@router.put("/sandbox/clock")
async def set_clock_offset(body: ClockIn, clock: ClockDep) -> ClockOut:
    """Run at this offset from the wall clock, as the gateway's test clock decided: an absolute value,
    so a repeat changes nothing. Only the gateway holds the token that reaches it."""
    await clock.set(body.offset_us)
    return _clock_out(clock)
