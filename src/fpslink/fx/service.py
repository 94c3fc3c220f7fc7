"""Firm quotes: a conversion fixed for one bank until it expires or a payment uses it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.context import Gateway
from fpslink.errors import InvalidRequest, NotFound
from fpslink.fx.domain import AmountType, Conversion, convert
from fpslink.fx.models import quotes
from fpslink.money import Currency, InvalidAmount, Money, from_minor


@dataclass(frozen=True, slots=True)
class Quote:
    quote_id: str
    participant_id: str
    conversion: Conversion
    created_at: datetime
    expires_at: datetime
    payment_id: str | None


def fresh_conversion(
    gw: Gateway, *, source: Currency, target: Currency, amount: Decimal, amount_type: AmountType
) -> Conversion:
    try:
        return convert(
            gw.rates,
            source_currency=source,
            target_currency=target,
            amount=amount,
            amount_type=amount_type,
        )
    except InvalidAmount as exc:
        raise InvalidRequest(str(exc), code="AMOUNT_TOO_SMALL") from exc


async def create_quote(
    gw: Gateway,
    *,
    participant_id: str,
    source: Currency,
    target: Currency,
    amount: Decimal,
    amount_type: AmountType,
) -> Quote:
    conversion = fresh_conversion(gw, source=source, target=target, amount=amount, amount_type=amount_type)
    now = gw.clock()
    quote = Quote(
        quote_id=str(uuid.uuid4()),
        participant_id=participant_id,
        conversion=conversion,
        created_at=now,
        expires_at=now + timedelta(seconds=gw.settings.quote_ttl_s),
        payment_id=None,
    )
    async with gw.engine.begin() as conn:
        await conn.execute(
            insert(quotes).values(
                quote_id=quote.quote_id,
                participant_id=participant_id,
                source_currency=source.value,
                target_currency=target.value,
                amount_type=amount_type.value,
                source_minor=conversion.source.minor,
                target_minor=conversion.target.minor,
                mid_rate=str(conversion.mid_rate),
                rate=str(conversion.rate),
                spread_bps=str(conversion.spread_bps),
                created_at=now,
                expires_at=quote.expires_at,
            )
        )
    return quote


async def get_quote(gw: Gateway, *, participant_id: str, quote_id: str) -> Quote:
    """The bank's own quote; another bank's is as unknown as a missing one (404)."""
    async with gw.engine.connect() as conn:
        row = (await conn.execute(select(quotes).where(quotes.c.quote_id == quote_id))).mappings().first()
    if row is None or row["participant_id"] != participant_id:
        raise NotFound(f"quote {quote_id} not found", code="QUOTE_NOT_FOUND")
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
