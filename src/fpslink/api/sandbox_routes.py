"""GET /v1/sandbox/fixtures: the demo world, so a developer's first test needs no set-up."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from fpslink.api.deps import ParticipantsDep, PrincipalDep, SettingsDep
from fpslink.api.routes import PROBLEMS
from fpslink.demo import DEMO_ACCOUNTS, DEMO_BANKS, demo_key
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
