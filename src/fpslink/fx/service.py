"""Rates and firm quotes: a conversion fixed for one bank until it expires or a payment uses it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from fpslink.config import Settings
from fpslink.db import Clock
from fpslink.errors import InvalidRequest, NotFound
from fpslink.fx.domain import AmountType, Conversion, RateSheet, convert
from fpslink.fx.repository import Quote
from fpslink.money import Currency, InvalidAmount
from fpslink.uow import UnitsOfWork


class FxService:
    """Built once per process (`fpslink.context.Gateway`). The rates are read from the settings at
    each use, not kept: they are the settings' to change."""

    def __init__(self, uow: UnitsOfWork, *, clock: Clock, settings: Settings) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings

    @property
    def rates(self) -> RateSheet:
        return RateSheet(mid_hkd_cny=self._settings.fx_mid_hkd_cny, spread_bps=self._settings.fx_spread_bps)

    def indicative(self) -> tuple[datetime, RateSheet]:
        """The rates in force and when they were read."""
        return self._clock(), self.rates

    def fresh_conversion(
        self, *, source: Currency, target: Currency, amount: Decimal, amount_type: AmountType
    ) -> Conversion:
        try:
            return convert(
                self.rates,
                source_currency=source,
                target_currency=target,
                amount=amount,
                amount_type=amount_type,
            )
        except InvalidAmount as exc:
            raise InvalidRequest(str(exc), code="AMOUNT_TOO_SMALL") from exc

    async def create_quote(
        self,
        *,
        participant_id: str,
        source: Currency,
        target: Currency,
        amount: Decimal,
        amount_type: AmountType,
    ) -> Quote:
        conversion = self.fresh_conversion(
            source=source, target=target, amount=amount, amount_type=amount_type
        )
        now = self._clock()
        quote = Quote(
            quote_id=str(uuid.uuid4()),
            participant_id=participant_id,
            conversion=conversion,
            created_at=now,
            expires_at=now + timedelta(seconds=self._settings.quote_ttl_s),
            payment_id=None,
        )
        async with self._uow() as tx:
            await tx.quotes.insert(quote)
            await tx.commit()
        return quote

    async def get_quote(self, *, participant_id: str, quote_id: str) -> Quote:
        """The bank's own quote; another bank's is as unknown as a missing one (404)."""
        async with self._uow() as tx:
            quote = await tx.quotes.get(quote_id)
        if quote is None or quote.participant_id != participant_id:
            raise NotFound(f"quote {quote_id} not found", code="QUOTE_NOT_FOUND")
        return quote
