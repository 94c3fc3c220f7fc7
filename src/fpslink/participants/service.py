"""Participants, API keys and accounts. IBPS accounts are opened in mock_ibps; the gateway keeps a
directory row for every account so it can authorise without asking IBPS."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from fpslink.config import Settings
from fpslink.db import Clock
from fpslink.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    UpstreamUnavailable,
)
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable
from fpslink.money import Currency, format_minor, to_minor
from fpslink.participants.repository import AccountRecord, ParticipantRecord
from fpslink.principal import OPERATOR, Principal
from fpslink.uow import UnitsOfWork
from fpslink.vocabulary import System
from ibps_wire.schemas import AccountOut, ParticipantOut

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


@dataclass(frozen=True, slots=True)
class AccountView:
    record: AccountRecord
    balance: str
    available_balance: str
    held: str


class IbpsAccounts(Protocol):
    """What this service asks of IBPS: its banks and accounts live there, not here."""

    async def create_participant(self, *, participant_id: str, name: str) -> ParticipantOut: ...

    async def open_account(
        self, *, account_id: str, participant_id: str, holder_name: str, opening_balance_minor: int
    ) -> AccountOut: ...

    async def get_account(self, account_id: str) -> AccountOut | None: ...


class ParticipantsService:
    """Banks, their keys and their accounts; built once per process (`fpslink.context.Gateway`).

    It keeps the process's cache of API keys: a key never changes once issued, so a bank is looked up
    once per process, not once per request.
    """

    def __init__(self, uow: UnitsOfWork, ibps: IbpsAccounts, *, clock: Clock, settings: Settings) -> None:
        self._uow = uow
        self._ibps = ibps
        self._clock = clock
        self._settings = settings
        self._principals: dict[str, Principal] = {}
        """API key hash -> participant."""

    async def authenticate(self, api_key: str | None) -> Principal:
        if not api_key:
            raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
        operator_key = self._settings.operator_key
        if operator_key and hmac.compare_digest(api_key.encode(), operator_key.encode()):
            return OPERATOR
        key_hash = hash_key(api_key)
        cached = self._principals.get(key_hash)
        if cached is not None:
            return cached
        async with self._uow() as tx:
            found = await tx.participants.participant_by_key_hash(key_hash)
        if found is None:
            raise Unauthorized(
                "unknown API key: use a bank key the sandbox printed when it started, or create a "
                "bank with POST /v1/participants and the operator key"
            )
        principal = Principal(participant_id=found.participant_id, system=found.system, bic=found.bic)
        self._principals[key_hash] = principal
        return principal

    async def create_participant(
        self,
        *,
        participant_id: str,
        name: str,
        system: System,
        api_key: str | None = None,
        bic: str | None = None,
    ) -> CreatedParticipant:
        api_key = api_key or new_api_key(participant_id)
        exists = Conflict(
            f"participant {participant_id} exists", code="PARTICIPANT_EXISTS", participant_id=participant_id
        )
        async with self._uow() as tx:
            if await tx.participants.participant(participant_id) is not None:
                raise exists
            if bic is not None and await tx.participants.participant_by_bic(bic) is not None:
                raise Conflict(f"BIC {bic} belongs to another participant", code="BIC_IN_USE")
        if system is System.IBPS:
            try:
                await self._ibps.create_participant(participant_id=participant_id, name=name)
            except IbpsUnavailable as exc:
                raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
            except IbpsRefused as exc:
                if exc.status == 409:
                    raise Conflict(
                        f"participant {participant_id} exists at IBPS with other details",
                        code="PARTICIPANT_EXISTS",
                        participant_id=participant_id,
                    ) from exc
                raise InvalidRequest(
                    f"mock_ibps refused the participant: {exc.detail}", code=exc.code
                ) from exc
        try:
            async with self._uow() as tx:
                await tx.participants.insert_participant(
                    participant_id=participant_id,
                    name=name,
                    system=system,
                    key_hash=hash_key(api_key),
                    now=self._clock(),
                    bic=bic,
                )
                await tx.commit()
        except IntegrityError as exc:
            raise exists from exc
        return CreatedParticipant(ParticipantRecord(participant_id, name, system, bic), api_key)

    async def open_account(
        self,
        *,
        participant_id: str,
        holder_name: str,
        currency: Currency,
        opening_balance: Decimal,
        account_id: str | None = None,
    ) -> AccountView:
        """An IBPS account opens at IBPS first and is kept here only once IBPS has it; an FPS account
        and its opening balance are written together."""
        async with self._uow() as tx:
            owner = await tx.participants.participant(participant_id)
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
        now = self._clock()
        if owner.system is System.IBPS:
            try:
                await self._ibps.open_account(
                    account_id=record.account_id,
                    participant_id=participant_id,
                    holder_name=holder_name,
                    opening_balance_minor=opening_minor,
                )
            except IbpsUnavailable as exc:
                raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
            except IbpsRefused as exc:
                raise InvalidRequest(f"mock_ibps refused the account: {exc.detail}", code=exc.code) from exc
            async with self._uow() as tx:
                await tx.participants.insert_account(record, now=now)
                await tx.commit()
        else:
            async with self._uow() as tx:
                await tx.participants.insert_account(record, now=now)
                await tx.ledger.open_account(
                    account_id=record.account_id, currency=currency, opening_minor=opening_minor, now=now
                )
                await tx.commit()
        text = format_minor(opening_minor, currency)
        return AccountView(record, balance=text, available_balance=text, held=format_minor(0, currency))

    async def owned_account(self, principal: Principal, account_id: str) -> AccountRecord:
        """The account if the caller may see it; 404 alike for unknown and for another bank's."""
        async with self._uow() as tx:
            record = await tx.participants.account(account_id)
        if record is None or not (principal.is_operator or principal.participant_id == record.participant_id):
            raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
        return record

    async def account_view(self, principal: Principal, account_id: str) -> AccountView:
        record = await self.owned_account(principal, account_id)
        cur = record.currency
        if record.system is System.FPS:
            async with self._uow() as tx:
                found = await tx.ledger.balances(account_id)
            balance, held = found if found is not None else (0, 0)
            return AccountView(
                record,
                balance=format_minor(balance, cur),
                available_balance=format_minor(balance - held, cur),
                held=format_minor(held, cur),
            )
        try:
            remote = await self._ibps.get_account(account_id)
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

    async def list_participants(self) -> list[ParticipantRecord]:
        async with self._uow() as tx:
            return await tx.participants.list_participants()

    async def present(
        self, *, key_hashes: Iterable[str], account_ids: Iterable[str]
    ) -> tuple[set[str], set[str]]:
        """Which of these API key hashes and account ids the directory holds (the sandbox's demo world)."""
        async with self._uow() as tx:
            keys = {h for h in key_hashes if await tx.participants.participant_by_key_hash(h) is not None}
            found = {a for a in account_ids if await tx.participants.account(a) is not None}
        return keys, found
