"""The pacs.008 transactions banks sent (`iso20022_transactions`): claimed by UETR, tied to their
payment, found again by a status request; and what each payment made of one was sent with
(`iso20022_details`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.iso20022.details import Details
from fpslink.iso20022.models import iso20022_details as details
from fpslink.iso20022.models import iso20022_transactions as sent


@dataclass(frozen=True, slots=True)
class SentTransaction:
    """One transaction of a pacs.008 a bank sent, with the references its reports echo."""

    record_id: str
    participant_id: str
    uetr: str | None
    msg_id: str
    message_name: str
    instr_id: str | None
    end_to_end_id: str | None
    tx_id: str | None
    fingerprint: str
    """The message's fingerprint: the same message again has the same one."""
    idempotency_key: str
    """The key its payment was (or is being) made under."""
    payment_id: str | None
    created_at: datetime
    position: int = 1
    """Its place among the message's transactions, from 1."""


_COLUMNS = [sent.c[name] for name in SentTransaction.__slots__]


class Iso20022Repository:
    """The rows of `iso20022_transactions`, on a unit of work's connection; every read is one bank's."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(self, row: SentTransaction) -> bool:
        """Insert a row unless it has a UETR the bank has used; True if inserted."""
        stmt = (
            postgresql.insert(sent)
            .values(**asdict(row))
            .on_conflict_do_nothing(index_elements=[sent.c.participant_id, sent.c.uetr])
            .returning(sent.c.record_id)
        )
        return (await self._conn.execute(stmt)).first() is not None

    async def by_uetr(self, participant_id: str, uetr: str) -> SentTransaction | None:
        stmt = select(*_COLUMNS).where(sent.c.participant_id == participant_id, sent.c.uetr == uetr)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else SentTransaction(*row)

    async def find(
        self,
        participant_id: str,
        *,
        payment_id: str | None = None,
        msg_id: str | None = None,
        instr_id: str | None = None,
        end_to_end_id: str | None = None,
        tx_id: str | None = None,
        limit: int = 20,
    ) -> list[SentTransaction]:
        """The bank's rows of a payment or of a MsgId with these references (at most `limit`, newest
        first, a message's transactions in its order)."""
        stmt = select(*_COLUMNS).where(sent.c.participant_id == participant_id)
        for column, value in (
            (sent.c.payment_id, payment_id),
            (sent.c.msg_id, msg_id),
            (sent.c.instr_id, instr_id),
            (sent.c.end_to_end_id, end_to_end_id),
            (sent.c.tx_id, tx_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        stmt = stmt.order_by(sent.c.created_at.desc(), sent.c.position, sent.c.record_id).limit(limit)
        return [SentTransaction(*row) for row in await self._conn.execute(stmt)]

    async def paid(self, record_id: str, payment_id: str) -> None:
        """Tie a claimed row to the payment made of it (once)."""
        await self._conn.execute(
            update(sent)
            .where(sent.c.record_id == record_id, sent.c.payment_id.is_(None))
            .values(payment_id=payment_id)
        )

    async def release(self, record_id: str) -> None:
        """Forget a claim whose message was refused before any payment was made of it."""
        await self._conn.execute(
            delete(sent).where(sent.c.record_id == record_id, sent.c.payment_id.is_(None))
        )

    async def take_over(self, stale: SentTransaction, row: SentTransaction) -> bool:
        """Give a claim that never made a payment (its request died) to another message; False if
        it changed meanwhile."""
        values = asdict(row)
        del values["record_id"]
        result = await self._conn.execute(
            update(sent)
            .where(
                sent.c.record_id == stale.record_id,
                sent.c.fingerprint == stale.fingerprint,
                sent.c.payment_id.is_(None),
            )
            .values(**values)
        )
        return result.rowcount == 1

    # what each payment was sent with ------------------------------------------------------------

    async def add_details(self, rows: Sequence[tuple[str, Details]]) -> None:
        """Keep what payments were sent with, by payment id, in the caller's transaction."""
        if rows:
            await self._conn.execute(insert(details), [found.row(payment_id) for payment_id, found in rows])

    async def details(self, payment_id: str) -> Details | None:
        found = await self.details_of([payment_id])
        return found.get(payment_id)

    async def details_of(self, payment_ids: Sequence[str]) -> dict[str, Details]:
        """What these payments were sent with, for those sent as a pacs.008."""
        if not payment_ids:
            return {}
        rows = await self._conn.execute(select(details).where(details.c.payment_id.in_(list(payment_ids))))
        return {row.payment_id: Details.from_row(row) for row in rows}
