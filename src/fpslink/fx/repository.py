"""Firm quotes: written when given, read by id, used once by a payment.

`QuotesRepository` is what a unit of work hands the FX service. `use_quote` runs inside the
acceptance transaction of a payment batch, on that transaction's connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.fx.domain import AmountType, Conversion
from fpslink.fx.models import quotes
from fpslink.money import Currency, Money, from_minor


@dataclass(frozen=True, slots=True)
class Quote:
    quote_id: str
    participant_id: str
    conversion: Conversion
    created_at: datetime
    expires_at: datetime
    payment_id: str | None


class QuotesRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(self, quote: Quote) -> None:
        c = quote.conversion
        await self._conn.execute(
            insert(quotes).values(
                quote_id=quote.quote_id,
                participant_id=quote.participant_id,
                source_currency=c.source.currency.value,
                target_currency=c.target.currency.value,
                amount_type=c.amount_type.value,
                source_minor=c.source.minor,
                target_minor=c.target.minor,
                mid_rate=str(c.mid_rate),
                rate=str(c.rate),
                spread_bps=str(c.spread_bps),
                created_at=quote.created_at,
                expires_at=quote.expires_at,
            )
        )

    async def get(self, quote_id: str) -> Quote | None:
        query = select(quotes).where(quotes.c.quote_id == quote_id)
        row = (await self._conn.execute(query)).mappings().first()
        if row is None:
            return None
        source, target = Currency(row["source_currency"]), Currency(row["target_currency"])
        return Quote(
            quote_id=row["quote_id"],
            participant_id=row["participant_id"],
            conversion=Conversion(
                source=Money(from_minor(row["source_minor"], source), source),
                target=Money(from_minor(row["target_minor"], target), target),
                mid_rate=Decimal(row["mid_rate"]),
                rate=Decimal(row["rate"]),
                spread_bps=Decimal(row["spread_bps"]),
                amount_type=AmountType(row["amount_type"]),
            ),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            payment_id=row["payment_id"],
        )


async def use_quote(conn: AsyncConnection, *, quote_id: str, payment_id: str, now: datetime) -> bool:
    """Bind a quote to a payment exactly once, while it is still valid."""
    result = await conn.execute(
        update(quotes)
        .where(
            quotes.c.quote_id == quote_id,
            quotes.c.payment_id.is_(None),
            quotes.c.expires_at > now,
        )
        .values(payment_id=payment_id)
    )
    return result.rowcount == 1


async def expire_quote(conn: AsyncConnection, *, quote_id: str, participant_id: str, now: datetime) -> bool:
    """End a bank's unused quote now, as if its lifetime had passed (a certification run's
    QUOTE_EXPIRED); False if it is not the bank's, was used or had expired already."""
    result = await conn.execute(
        update(quotes)
        .where(
            quotes.c.quote_id == quote_id,
            quotes.c.participant_id == participant_id,
            quotes.c.payment_id.is_(None),
            quotes.c.expires_at > now,
        )
        .values(expires_at=now)
    )
    return result.rowcount == 1
