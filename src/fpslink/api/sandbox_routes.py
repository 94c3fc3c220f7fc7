"""The sandbox's own endpoints: the demo world (`GET /v1/sandbox/fixtures`), so a developer's first
test needs no set-up, and the test clock (`/v1/sandbox/clock`), which moves the sandbox's time."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fpslink.api import schemas as s
from fpslink.api.deps import (
    IdempotencyDep,
    IdempotencyKeyHeader,
    ParticipantsDep,
    PrincipalDep,
    SandboxClockDep,
    SettingsDep,
)
from fpslink.api.routes import PROBLEMS, _idempotent
from fpslink.clock.policy import MAX_OFFSET
from fpslink.clock.service import ClockStatus
from fpslink.demo import DEMO_ACCOUNTS, DEMO_BANKS, demo_key
from fpslink.limits.policy import business_date
from fpslink.participants.service import hash_key

router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"], responses=PROBLEMS)


FIRST_PAYMENT: dict[str, Any] = {
    "debtor_account_id": "HKDEMO0001",
    "creditor": {"proxy_type": "MOBILE", "proxy_value": "+8613800138000"},
    "amount": "1000.00",
    "currency": "HKD",
    "purpose": "FAMILY_SUPPORT",
}


class FixtureBank(BaseModel):
    participant_id: str
    name: str
    system: str
    bic: str = Field(description="The BIC that ISO 20022 headers name the bank by")
    present: bool = Field(description="Seeded in this database with the demo key")
    api_key: str | None = Field(
        default=None, description="The operator sees every demo key; a bank sees only its own"
    )


class FixtureAccount(BaseModel):
    account_id: str
    participant_id: str
    holder_name: str
    currency: str
    opening_balance: str
    proxy: str | None
    present: bool


class MagicValue(BaseModel):
    value: str
    effect: str


class Fixtures(BaseModel):
    banks: list[FixtureBank]
    accounts: list[FixtureAccount]
    magic_values: list[MagicValue]
    first_payment: dict[str, Any] = Field(description="A body for POST /v1/payments that settles")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "banks": [
                        {
                            "participant_id": "HARBOURHK",
                            "name": "Harbour Bank (demo)",
                            "system": "FPS",
                            "present": True,
                            "api_key": "fpsl_harbourhk_0f3c9a…",
                        }
                    ],
                    "accounts": [
                        {
                            "account_id": "HKDEMO0001",
                            "participant_id": "HARBOURHK",
                            "holder_name": "CHAN Tai Man",
                            "currency": "HKD",
                            "opening_balance": "100000.00",
                            "proxy": "+85291234567",
                            "present": True,
                        }
                    ],
                    "magic_values": [{"value": "CNY 404.04", "effect": "IBPS refuses the prepare (RR04)"}],
                    "first_payment": FIRST_PAYMENT,
                }
            ]
        }
    )


def magic_values() -> list[MagicValue]:
    """mock_ibps's magic values, when this build has fault injection."""
    try:
        from mock_ibps import faults
    except ImportError:
        return []
    found = [
        ("MAGIC_TIMEOUT_PROXY", "lookup of this +86 number times out", False),
        ("MAGIC_REFUSED_MINOR", "an IBPS leg of this CNY amount: the prepare is refused (RR04)", True),
        ("MAGIC_PREPARE_TIMEOUT_MINOR", "an IBPS leg of this CNY amount: the prepare times out", True),
        ("MAGIC_COMMIT_LOST_MINOR", "an IBPS leg of this CNY amount: the commit's reply is lost", True),
        ("MAGIC_PREPARE_LOST_MINOR", "an IBPS leg of this CNY amount: the prepare's reply is lost", True),
    ]
    out = []
    for name, effect, is_amount in found:
        value = getattr(faults, name, None)
        if value is None:
            continue
        text = f"CNY {int(value) // 100}.{int(value) % 100:02d}" if is_amount else str(value)
        out.append(MagicValue(value=text, effect=effect))
    return out


@router.get(
    "/fixtures",
    response_model=Fixtures,
    summary="The demo world: banks, accounts, proxies, magic values and a first payment",
)
async def fixtures(participants: ParticipantsDep, settings: SettingsDep, principal: PrincipalDep) -> Fixtures:
    operator_key = settings.operator_key
    keys = {b.participant_id: demo_key(operator_key, b.participant_id) for b in DEMO_BANKS if operator_key}
    seeded_keys, seeded_accounts = await participants.present(
        key_hashes=[hash_key(key) for key in keys.values()],
        account_ids=[acc.account_id for acc in DEMO_ACCOUNTS],
    )
    banks = []
    for bank in DEMO_BANKS:
        key = keys.get(bank.participant_id)
        seeded = key is not None and hash_key(key) in seeded_keys
        shown = principal.is_operator or principal.participant_id == bank.participant_id
        banks.append(
            FixtureBank(
                participant_id=bank.participant_id,
                name=bank.name,
                system=bank.system.value,
                bic=bank.bic,
                present=seeded,
                api_key=key if seeded and shown else None,
            )
        )
    accounts = [
        FixtureAccount(
            account_id=acc.account_id,
            participant_id=acc.participant_id,
            holder_name=acc.holder_name,
            currency=acc.currency.value,
            opening_balance=f"{acc.opening_balance:.2f}",
            proxy=acc.proxy,
            present=acc.account_id in seeded_accounts,
        )
        for acc in DEMO_ACCOUNTS
    ]
    return Fixtures(banks=banks, accounts=accounts, magic_values=magic_values(), first_payment=FIRST_PAYMENT)


# the test clock --------------------------------------------------------------------------------

MAX_SECONDS = int(MAX_OFFSET.total_seconds())


class SandboxClockOut(BaseModel):
    enabled: bool = Field(description="Whether this deployment lets the operator move the clock")
    now: AwareDatetime = Field(description="The sandbox's time: what limits, quotes, hours and recovery use")
    business_date: date = Field(
        description="The UTC+8 date of the sandbox's time: the day payments are booked to, and the only "
        "interbank settlement date (IntrBkSttlmDt) a pacs.008 may carry"
    )
    real_now: AwareDatetime = Field(description="The wall clock's time")
    offset_seconds: float = Field(description="How far the sandbox runs ahead of the wall clock")
    ibps_now: AwareDatetime | None = Field(description="mock_ibps's time; null when it did not answer")
    ibps_offset_seconds: float | None = Field(description="mock_ibps's offset; equal to offset_seconds")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "now": "2026-12-08T02:00:00.120000Z",
                    "business_date": "2026-12-08",
                    "real_now": "2026-12-07T02:00:00.120000Z",
                    "offset_seconds": 86400.0,
                    "ibps_now": "2026-12-08T02:00:00.121000Z",
                    "ibps_offset_seconds": 86400.0,
                }
            ]
        }
    )


class ClockAdvance(s.Request):
    seconds: int = Field(
        ge=-MAX_SECONDS,
        le=MAX_SECONDS,
        description="How far to move the sandbox's time; positive (it only moves forward), at most 366 "
        "days (31622400) in one move",
    )
    model_config = ConfigDict(json_schema_extra={"examples": [{"seconds": 86400}]})


class ClockSet(s.Request):
    now: AwareDatetime = Field(
        description="The instant to move the sandbox's time to, with its time zone; later than its time now"
    )
    model_config = ConfigDict(json_schema_extra={"examples": [{"now": "2026-12-08T01:00:00+08:00"}]})


def _seconds(offset: timedelta) -> float:
    return offset / timedelta(microseconds=1) / 1_000_000


def _clock_out(status: ClockStatus) -> SandboxClockOut:
    return SandboxClockOut(
        enabled=status.enabled,
        now=status.now,
        business_date=business_date(status.now),
        real_now=status.real_now,
        offset_seconds=_seconds(status.offset),
        ibps_now=status.ibps_now,
        ibps_offset_seconds=None if status.ibps_offset is None else _seconds(status.ibps_offset),
    )


@router.get(
    "/clock",
    response_model=SandboxClockOut,
    summary="The sandbox's time, its offset from real time, and whether the test clock may move (any key)",
)
async def get_clock(clock: SandboxClockDep, principal: PrincipalDep) -> SandboxClockOut:
    return _clock_out(await clock.status())


@router.post(
    "/clock/advance",
    response_model=SandboxClockOut,
    summary="Move the sandbox's time forward, for the gateway and mock_ibps (operator; off unless enabled)",
)
async def advance_clock(
    body: ClockAdvance,
    request: Request,
    clock: SandboxClockDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Every bank of the sandbox moves with it: business dates roll, daily limits start afresh, quotes
    expire, service hours open and close, payments left pending fall to recovery. Refused with
    `409 SANDBOX_CLOCK_DISABLED` unless the gateway runs with `FPSLINK_SANDBOX_CLOCK=true`, with
    `409 SANDBOX_CLOCK_BACKWARDS` for a step that is not positive. Send an `Idempotency-Key` to make a
    retry safe: the same key answers the first move instead of moving again."""

    async def action() -> tuple[int, Any]:
        moved = await clock.advance(principal, by=timedelta(seconds=body.seconds))
        return 200, s.dump(_clock_out(moved))

    return await _idempotent(idempotent, principal, request, idempotency_key, body, action)


@router.put(
    "/clock",
    response_model=SandboxClockOut,
    summary="Move the sandbox's time to a later instant (operator; off unless enabled)",
)
async def set_clock(body: ClockSet, clock: SandboxClockDep, principal: PrincipalDep) -> SandboxClockOut:
    """As `POST /v1/sandbox/clock/advance`, to an instant: `409 SANDBOX_CLOCK_BACKWARDS` unless it is
    later than the sandbox's time now."""
    return _clock_out(await clock.move_to(principal, to=body.now))
