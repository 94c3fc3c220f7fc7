"""The FX service on fake units of work: firm quotes, stored for one bank, read back by it alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fpslink.config import Settings
from fpslink.errors import InvalidRequest, NotFound
from fpslink.fx.domain import AmountType
from fpslink.fx.service import FxService
from fpslink.money import Currency, Money
from unit.fakes import FakeDatabase

NOW = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def settings() -> Settings:
    return Settings(fx_mid_hkd_cny=Decimal("0.92"), fx_spread_bps=Decimal(25), quote_ttl_s=600)


@pytest.fixture
def fx(db: FakeDatabase, settings: Settings) -> FxService:
    return FxService(db.uow, clock=lambda: NOW, settings=settings)


async def test_a_quote_fixes_the_conversion_until_it_expires(fx: FxService, db: FakeDatabase) -> None:
    quote = await fx.create_quote(
        participant_id="HKBANK",
        source=Currency.HKD,
        target=Currency.CNY,
        amount=Decimal("1000"),
        amount_type=AmountType.SEND,
    )
    c = quote.conversion
    assert (c.source, c.target) == (Money.of("1000", "HKD"), Money.of("917.70", "CNY"))
    assert (c.mid_rate, c.rate, c.spread_bps) == (Decimal("0.920000"), Decimal("0.917700"), Decimal(25))
    assert (quote.created_at, quote.expires_at) == (NOW, NOW + timedelta(seconds=600))
    assert quote.payment_id is None
    assert db.rows.quotes == {quote.quote_id: quote} and db.commits == 1


async def test_a_receive_quote_fixes_the_amount_received(fx: FxService) -> None:
    quote = await fx.create_quote(
        participant_id="HKBANK",
        source=Currency.HKD,
        target=Currency.CNY,
        amount=Decimal("1000"),
        amount_type=AmountType.RECEIVE,
    )
    assert quote.conversion.source == Money.of("1089.69", "HKD")  # rounded up: the link collects it
    assert quote.conversion.target == Money.of("1000", "CNY")


async def test_a_bank_reads_its_own_quote_back(fx: FxService) -> None:
    made = await fx.create_quote(
        participant_id="HKBANK",
        source=Currency.CNY,
        target=Currency.HKD,
        amount=Decimal("50"),
        amount_type=AmountType.SEND,
    )
    assert await fx.get_quote(participant_id="HKBANK", quote_id=made.quote_id) == made


@pytest.mark.parametrize("asker", ["HKOTHER", "HKBANK"])
async def test_another_banks_quote_is_as_unknown_as_a_missing_one(fx: FxService, asker: str) -> None:
    made = await fx.create_quote(
        participant_id="HKBANK",
        source=Currency.HKD,
        target=Currency.CNY,
        amount=Decimal("10"),
        amount_type=AmountType.SEND,
    )
    wanted = made.quote_id if asker != "HKBANK" else "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFound) as hidden:
        await fx.get_quote(participant_id=asker, quote_id=wanted)
    assert hidden.value.code == "QUOTE_NOT_FOUND"


async def test_an_amount_too_small_to_convert_stores_nothing(fx: FxService, db: FakeDatabase) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await fx.create_quote(
            participant_id="HKBANK",
            source=Currency.HKD,
            target=Currency.CNY,
            amount=Decimal("0.01"),
            amount_type=AmountType.SEND,
        )
    assert refused.value.code == "AMOUNT_TOO_SMALL"
    assert db.opened == 0 and db.rows.quotes == {}


async def test_the_rates_are_the_settings_of_the_moment(fx: FxService, settings: Settings) -> None:
    settings.fx_mid_hkd_cny = Decimal("0.46")
    as_of, sheet = fx.indicative()
    assert as_of == NOW
    assert sheet.mid(Currency.HKD, Currency.CNY) == Decimal("0.460000")
    conversion = fx.fresh_conversion(
        source=Currency.HKD, target=Currency.CNY, amount=Decimal("1000"), amount_type=AmountType.SEND
    )
    assert conversion.target == Money.of("458.85", "CNY")
