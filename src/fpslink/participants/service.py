"""Participants, API keys and accounts. IBPS accounts are opened in mock_ibps; the gateway keeps a
directory row for every account so it can authorise without asking IBPS."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from fpslink.context import OPERATOR, Gateway, Principal
from fpslink.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    UpstreamUnavailable,
)
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable
from fpslink.ledger import repository as ledger
from fpslink.money import Currency, format_minor, to_minor
from fpslink.participants import repository as repo
from fpslink.participants.repository import AccountRecord, ParticipantRecord
from fpslink.vocabulary import System

ACCOUNT_PREFIX = {System.FPS: "HK", System.IBPS: "CN"}


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key(participant_id: str) -> str:
    return f"fpsl_{participant_id.lower()}_{secrets.token_urlsafe(24)}"


def new_account_id(system: System) -> str:
    """Ids are unique across both systems and tell the system by their prefix (HK / CN)."""
    return ACCOUNT_PREFIX[system] + uuid.uuid4().hex[:16].upper()


def system_of_account_id(account_id: str) -> System | None:
    for system, prefix in ACCOUNT_PREFIX.items():
        if account_id.startswith(prefix):
            return system
    return None


async def authenticate(gw: Gateway, api_key: str | None) -> Principal:
    if not api_key:
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    operator_key = gw.settings.operator_key
    if operator_key and hmac.compare_digest(api_key.encode(), operator_key.encode()):
        return OPERATOR
    key_hash = hash_key(api_key)
    cached = gw.principals.get(key_hash)
    if cached is not None:
        return cached
    async with gw.engine.connect() as conn:
        found = await repo.participant_by_key_hash(conn, key_hash)
    if found is None:
        raise Unauthorized("unknown API key")
    principal = Principal(participant_id=found.participant_id, system=found.system)
    gw.principals[key_hash] = principal
    return principal


def require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("only the scheme operator may call this", code="OPERATOR_ONLY")


def require_participant(principal: Principal) -> str:
    if principal.participant_id is None:
        raise Forbidden(
            "the operator administers the sandbox but makes no payments or quotes; use a bank's key",
            code="PARTICIPANT_ONLY",
        )
    return principal.participant_id


@dataclass(frozen=True, slots=True)
class CreatedParticipant:
    participant: ParticipantRecord
    api_key: str


async def create_participant(
    gw: Gateway, *, participant_id: str, name: str, system: System, api_key: str | None = None
) -> CreatedParticipant:
    api_key = api_key or new_api_key(participant_id)
    async with gw.engine.connect() as conn:
        if await repo.participant(conn, participant_id) is not None:
            raise Conflict(
                f"participant {participant_id} exists",
                code="PARTICIPANT_EXISTS",
                participant_id=participant_id,
            )
    if system is System.IBPS:
        try:
            await gw.ibps.create_participant(participant_id=participant_id, name=name)
        except IbpsUnavailable as exc:
            raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
        except IbpsRefused as exc:
            if exc.status == 409:
                raise Conflict(
                    f"participant {participant_id} exists at IBPS with other details",
                    code="PARTICIPANT_EXISTS",
                    participant_id=participant_id,
                ) from exc
            raise InvalidRequest(f"mock_ibps refused the participant: {exc.detail}", code=exc.code) from exc
    try:
        async with gw.engine.begin() as conn:
            await repo.insert_participant(
                conn,
                participant_id=participant_id,
                name=name,
                system=system,
                key_hash=hash_key(api_key),
                now=gw.clock(),
            )
    except IntegrityError as exc:
        raise Conflict(
            f"participant {participant_id} exists",
            code="PARTICIPANT_EXISTS",
            participant_id=participant_id,
        ) from exc
    return CreatedParticipant(ParticipantRecord(participant_id, name, system), api_key)


@dataclass(frozen=True, slots=True)
class AccountView:
    record: AccountRecord
    balance: str
    available_balance: str
    held: str


async def open_account(
    gw: Gateway,
    *,
    participant_id: str,
    holder_name: str,
    currency: Currency,
    opening_balance: Decimal,
    account_id: str | None = None,
) -> AccountView:
    async with gw.engine.connect() as conn:
        owner = await repo.participant(conn, participant_id)
    if owner is None:
        raise NotFound(
            f"participant {participant_id} does not exist",
            code="PARTICIPANT_NOT_FOUND",
            participant_id=participant_id,
        )
    if owner.system is System.IBPS and currency is not Currency.CNY:
        raise InvalidRequest("IBPS accounts hold CNY only", code="CURRENCY_NOT_SUPPORTED")
    record = AccountRecord(
        account_id=account_id or new_account_id(owner.system),
        participant_id=participant_id,
        system=owner.system,
        currency=currency,
        holder_name=holder_name,
    )
    opening_minor = to_minor(opening_balance, currency)
    now = gw.clock()
    if owner.system is System.IBPS:
        try:
            await gw.ibps.open_account(
                account_id=record.account_id,
                participant_id=participant_id,
                holder_name=holder_name,
                opening_balance_minor=opening_minor,
            )
        except IbpsUnavailable as exc:
            raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
        except IbpsRefused as exc:
            raise InvalidRequest(f"mock_ibps refused the account: {exc.detail}", code=exc.code) from exc
        async with gw.engine.begin() as conn:
            await repo.insert_account(conn, record, now=now)
    else:
        async with gw.engine.begin() as conn:
            await repo.insert_account(conn, record, now=now)
            await ledger.open_account(
                conn,
                account_id=record.account_id,
                currency=currency,
                opening_minor=opening_minor,
                now=now,
            )
    text = format_minor(opening_minor, currency)
    return AccountView(record, balance=text, available_balance=text, held=format_minor(0, currency))


async def owned_account(gw: Gateway, principal: Principal, account_id: str) -> AccountRecord:
    """The account if the caller may see it; 404 alike for unknown and for another bank's."""
    async with gw.engine.connect() as conn:
        record = await repo.account(conn, account_id)
    if record is None or not (principal.is_operator or principal.participant_id == record.participant_id):
        raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
    return record


async def account_view(gw: Gateway, principal: Principal, account_id: str) -> AccountView:
    record = await owned_account(gw, principal, account_id)
    cur = record.currency
    if record.system is System.FPS:
        async with gw.engine.connect() as conn:
            found = await ledger.balances(conn, account_id)
        balance, held = found if found is not None else (0, 0)
        return AccountView(
            record,
            balance=format_minor(balance, cur),
            available_balance=format_minor(balance - held, cur),
            held=format_minor(held, cur),
        )
    try:
        remote = await gw.ibps.get_account(account_id)
    except IbpsUnavailable as exc:
        raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
    if remote is None:
        raise NotFound(f"account {account_id} not found at IBPS", code="ACCOUNT_NOT_FOUND")
    return AccountView(
        record,
        balance=format_minor(remote.balance_minor, cur),
        available_balance=format_minor(remote.available_minor, cur),
        held=format_minor(remote.held_minor, cur),
    )
