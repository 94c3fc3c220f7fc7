"""Participants and the account directory: who owns which account, in which system.

`ParticipantsRepository` is what a unit of work hands a service, on its connection. The functions
`participant` and `account` below run the same statements for callers that still hold a connection
of their own (the payment path, the console's explorer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.money import Currency
from fpslink.participants.models import accounts, participants
from fpslink.vocabulary import System


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    participant_id: str
    system: System
    currency: Currency
    holder_name: str


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    participant_id: str
    name: str
    system: System
    bic: str | None = None
    """The bank's BIC, which ISO 20022 messages name it by (8 or 11 characters, as registered)."""


_PARTICIPANT = (
    participants.c.participant_id,
    participants.c.name,
    participants.c.system,
    participants.c.bic,
)
_ACCOUNT = (
    accounts.c.account_id,
    accounts.c.participant_id,
    accounts.c.system,
    accounts.c.currency,
    accounts.c.holder_name,
)


class ParticipantsRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def participant(self, participant_id: str) -> ParticipantRecord | None:
        query = select(*_PARTICIPANT).where(participants.c.participant_id == participant_id)
        row = (await self._conn.execute(query)).first()
        return None if row is None else ParticipantRecord(row[0], row[1], System(row[2]), row[3])

    async def participant_by_key_hash(self, key_hash: str) -> ParticipantRecord | None:
        row = (
            await self._conn.execute(select(*_PARTICIPANT).where(participants.c.api_key_hash == key_hash))
        ).first()
        return None if row is None else ParticipantRecord(row[0], row[1], System(row[2]), row[3])

    async def participant_by_bic(self, bic: str) -> ParticipantRecord | None:
        query = select(*_PARTICIPANT).where(participants.c.bic == bic)
        row = (await self._conn.execute(query)).first()
        return None if row is None else ParticipantRecord(row[0], row[1], System(row[2]), row[3])

    async def insert_participant(
        self,
        *,
        participant_id: str,
        name: str,
        system: System,
        key_hash: str,
        now: datetime,
        bic: str | None = None,
    ) -> None:
        await self._conn.execute(
            insert(participants).values(
                participant_id=participant_id,
                name=name,
                system=system.value,
                api_key_hash=key_hash,
                created_at=now,
                bic=bic,
            )
        )

    async def list_participants(self) -> list[ParticipantRecord]:
        rows = await self._conn.execute(select(*_PARTICIPANT).order_by(participants.c.participant_id))
        return [ParticipantRecord(r[0], r[1], System(r[2]), r[3]) for r in rows]

    async def account(self, account_id: str) -> AccountRecord | None:
        row = (await self._conn.execute(select(*_ACCOUNT).where(accounts.c.account_id == account_id))).first()
        if row is None:
            return None
        return AccountRecord(row[0], row[1], System(row[2]), Currency(row[3]), row[4])

    async def insert_account(self, record: AccountRecord, *, now: datetime) -> None:
        await self._conn.execute(
            insert(accounts).values(
                account_id=record.account_id,
                participant_id=record.participant_id,
                system=record.system.value,
                currency=record.currency.value,
                holder_name=record.holder_name,
                created_at=now,
            )
        )
