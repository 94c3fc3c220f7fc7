"""Participants and the account directory: who owns which account, in which system."""

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


async def participant(conn: AsyncConnection, participant_id: str) -> ParticipantRecord | None:
    row = (
        await conn.execute(
            select(participants.c.participant_id, participants.c.name, participants.c.system).where(
                participants.c.participant_id == participant_id
            )
        )
    ).first()
    return None if row is None else ParticipantRecord(row[0], row[1], System(row[2]))


async def participant_by_key_hash(conn: AsyncConnection, key_hash: str) -> ParticipantRecord | None:
    row = (
        await conn.execute(
            select(participants.c.participant_id, participants.c.name, participants.c.system).where(
                participants.c.api_key_hash == key_hash
            )
        )
    ).first()
    return None if row is None else ParticipantRecord(row[0], row[1], System(row[2]))


async def insert_participant(
    conn: AsyncConnection,
    *,
    participant_id: str,
    name: str,
    system: System,
    key_hash: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(participants).values(
            participant_id=participant_id,
            name=name,
            system=system.value,
            api_key_hash=key_hash,
            created_at=now,
        )
    )


async def list_participants(conn: AsyncConnection) -> list[ParticipantRecord]:
    rows = await conn.execute(
        select(participants.c.participant_id, participants.c.name, participants.c.system).order_by(
            participants.c.participant_id
        )
    )
    return [ParticipantRecord(r[0], r[1], System(r[2])) for r in rows]


async def account(conn: AsyncConnection, account_id: str) -> AccountRecord | None:
    row = (
        await conn.execute(
            select(
                accounts.c.account_id,
                accounts.c.participant_id,
                accounts.c.system,
                accounts.c.currency,
                accounts.c.holder_name,
            ).where(accounts.c.account_id == account_id)
        )
    ).first()
    if row is None:
        return None
    return AccountRecord(row[0], row[1], System(row[2]), Currency(row[3]), row[4])


async def insert_account(conn: AsyncConnection, record: AccountRecord, *, now: datetime) -> None:
    await conn.execute(
        insert(accounts).values(
            account_id=record.account_id,
            participant_id=record.participant_id,
            system=record.system.value,
            currency=record.currency.value,
            holder_name=record.holder_name,
            created_at=now,
        )
    )


async def accounts_of(conn: AsyncConnection, participant_id: str | None) -> list[AccountRecord]:
    query = select(
        accounts.c.account_id,
        accounts.c.participant_id,
        accounts.c.system,
        accounts.c.currency,
        accounts.c.holder_name,
    ).order_by(accounts.c.created_at, accounts.c.account_id)
    if participant_id is not None:
        query = query.where(accounts.c.participant_id == participant_id)
    rows = await conn.execute(query)
    return [AccountRecord(r[0], r[1], System(r[2]), Currency(r[3]), r[4]) for r in rows]
