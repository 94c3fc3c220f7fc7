"""Participants and the account directory: who owns which account, in which system.

`ParticipantsRepository` is what a unit of work hands a service, on its connection. The functions
`participant` and `account` below run the same statements for callers that still hold a connection
of their own (the payment path, the console's explorer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.money import Currency
from fpslink.participants.keys import ApiKeyRecord
from fpslink.participants.models import accounts, api_keys, participants
from fpslink.ratelimit.policy import Quota
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
    quota: Quota | None = None
    """The bank's own rate limit; None: the settings' default."""


@dataclass(frozen=True, slots=True)
class VisibleAccount:
    """An account its caller may see, and its FPS ledger balances in minor units (None for an IBPS
    account: mock_ibps keeps those)."""

    record: AccountRecord
    balances: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class KeyUse:
    """The bank a valid key belongs to, and when the key expires."""

    participant: ParticipantRecord
    expires_at: datetime | None


_PARTICIPANT = (
    participants.c.participant_id,
    participants.c.name,
    participants.c.system,
    participants.c.bic,
    participants.c.rate_limit_quota,
    participants.c.rate_limit_window_s,
)
_KEY = (
    api_keys.c.participant_id,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.expires_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
)


def _participant(row: Sequence[Any]) -> ParticipantRecord:
    quota = None if row[4] is None or row[5] is None else Quota(row[4], row[5])
    return ParticipantRecord(row[0], row[1], System(row[2]), row[3], quota)


def _key(row: Sequence[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(row[0], row[1], row[2], row[3], row[4], row[5])


_ACCOUNT = (
    accounts.c.account_id,
    accounts.c.participant_id,
    accounts.c.system,
    accounts.c.currency,
    accounts.c.holder_name,
)


def _account(row: Sequence[Any]) -> AccountRecord:
    return AccountRecord(row[0], row[1], System(row[2]), Currency(row[3]), row[4])


_VISIBLE_ACCOUNT = (
    "SELECT a.account_id, a.participant_id, a.system, a.currency, a.holder_name,"
    " l.balance_minor, l.held_minor"
    " FROM accounts a LEFT JOIN ledger_accounts l ON l.account_id = a.account_id"
    " WHERE a.account_id = $1 AND ($2::varchar IS NULL OR a.participant_id = $2::varchar)"
)
"""The caller's check and the read in one statement: another bank's account is as absent as a
missing one, in the same time."""


class ParticipantsRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def participant(self, participant_id: str, *, lock: bool = False) -> ParticipantRecord | None:
        """The bank; `lock` holds its row until the transaction ends (to count its keys and add one)."""
        query = select(*_PARTICIPANT).where(participants.c.participant_id == participant_id)
        row = (await self._conn.execute(query.with_for_update() if lock else query)).first()
        return None if row is None else _participant(row)

    async def participant_by_key_hash(self, key_hash: str) -> ParticipantRecord | None:
        """The bank holding this key, unless it was revoked."""
        query = (
            select(*_PARTICIPANT)
            .join(api_keys, api_keys.c.participant_id == participants.c.participant_id)
            .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else _participant(row)

    async def use_key(self, key_hash: str, *, now: datetime) -> KeyUse | None:
        """The bank a key that is neither revoked nor expired belongs to, recording the use."""
        stmt = (
            update(api_keys)
            .where(
                api_keys.c.key_hash == key_hash,
                api_keys.c.revoked_at.is_(None),
                or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
                participants.c.participant_id == api_keys.c.participant_id,
            )
            .values(last_used_at=now)
            .returning(*_PARTICIPANT, api_keys.c.expires_at)
        )
        row = (await self._conn.execute(stmt)).first()
        if row is None:
            return None
        return KeyUse(_participant(row), row[len(_PARTICIPANT)])

    async def participant_by_bic(self, bic: str) -> ParticipantRecord | None:
        query = select(*_PARTICIPANT).where(participants.c.bic == bic)
        row = (await self._conn.execute(query)).first()
        return None if row is None else _participant(row)

    async def insert_participant(
        self, *, participant_id: str, name: str, system: System, now: datetime, bic: str | None = None
    ) -> None:
        await self._conn.execute(
            insert(participants).values(
                participant_id=participant_id, name=name, system=system.value, created_at=now, bic=bic
            )
        )

    async def insert_key(
        self, *, participant_id: str, key_hash: str, prefix: str, now: datetime, expires_at: datetime | None
    ) -> ApiKeyRecord:
        await self._conn.execute(
            insert(api_keys).values(
                key_hash=key_hash,
                participant_id=participant_id,
                prefix=prefix,
                created_at=now,
                expires_at=expires_at,
            )
        )
        stored = None if expires_at is None else expires_at.astimezone(UTC)
        return ApiKeyRecord(participant_id, prefix, now, stored, None, None)

    async def keys(self, participant_id: str) -> list[ApiKeyRecord]:
        """The bank's keys, revoked and expired ones included, oldest first."""
        query = (
            select(*_KEY)
            .where(api_keys.c.participant_id == participant_id)
            .order_by(api_keys.c.created_at, api_keys.c.prefix)
        )
        return [_key(r) for r in await self._conn.execute(query)]

    async def active_keys(self, participant_id: str, *, now: datetime) -> int:
        query = select(func.count()).where(
            api_keys.c.participant_id == participant_id,
            api_keys.c.revoked_at.is_(None),
            or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
        )
        return int((await self._conn.execute(query)).scalar_one())

    async def key_active(self, participant_id: str, prefix: str, *, now: datetime) -> bool:
        """Whether the bank's key of this prefix is neither revoked nor expired."""
        query = select(api_keys.c.prefix).where(
            api_keys.c.participant_id == participant_id,
            api_keys.c.prefix == prefix,
            api_keys.c.revoked_at.is_(None),
            or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
        )
        return (await self._conn.execute(query)).first() is not None

    async def revoke_key(self, *, participant_id: str, prefix: str, now: datetime) -> ApiKeyRecord | None:
        """Revoke the key (a key revoked before keeps its first revocation time); None if unknown."""
        stmt = (
            update(api_keys)
            .where(api_keys.c.participant_id == participant_id, api_keys.c.prefix == prefix)
            .values(revoked_at=func.coalesce(api_keys.c.revoked_at, now))
            .returning(*_KEY)
        )
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else _key(row)

    async def set_quota(self, participant_id: str, quota: Quota | None) -> bool:
        """Give the bank its own rate limit, or (None) the default back; False if it does not exist."""
        stmt = (
            update(participants)
            .where(participants.c.participant_id == participant_id)
            .values(
                rate_limit_quota=None if quota is None else quota.quota,
                rate_limit_window_s=None if quota is None else quota.window_s,
            )
        )
        return bool((await self._conn.execute(stmt)).rowcount)

    async def list_participants(self) -> list[ParticipantRecord]:
        rows = await self._conn.execute(select(*_PARTICIPANT).order_by(participants.c.participant_id))
        return [_participant(r) for r in rows]

    async def account(self, account_id: str) -> AccountRecord | None:
        row = (await self._conn.execute(select(*_ACCOUNT).where(accounts.c.account_id == account_id))).first()
        return None if row is None else _account(row)

    async def visible_account(self, account_id: str, *, viewer: str | None) -> VisibleAccount | None:
        """The account if `viewer`'s bank owns it (None: the operator, who sees every account), with
        its ledger balances. One statement, on the lane (`pg.alone`): as a block's only statement it
        costs one round trip and no transaction of its own."""
        row = await (await pg.alone(self._conn)).fetchrow(_VISIBLE_ACCOUNT, account_id, viewer)
        if row is None:
            return None
        balances = None if row[5] is None else (int(row[5]), int(row[6]))
        return VisibleAccount(_account(row), balances)

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
