"""The directory on fake units of work and a fake IBPS: +852 numbers kept here, +86 asked of IBPS."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fpslink.config import Settings
from fpslink.directory.service import DirectoryService, ProxyLookupUnavailable
from fpslink.errors import Conflict, InvalidRequest, NotFound, UpstreamUnavailable
from fpslink.ibps_client import IbpsUnavailable
from fpslink.money import Currency
from fpslink.participants.service import ParticipantsService
from fpslink.principal import OPERATOR, Principal
from fpslink.vocabulary import System
from unit.fakes import FakeDatabase, FakeIbps

NOW = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
HK_BANK = Principal("HKBANK", System.FPS)
CN_BANK = Principal("CNBANK", System.IBPS)


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ibps() -> FakeIbps:
    return FakeIbps()


@pytest.fixture
async def world(db: FakeDatabase, ibps: FakeIbps) -> tuple[DirectoryService, str, str]:
    """The directory, an FPS account of HKBANK and an IBPS account of CNBANK."""
    participants = ParticipantsService(db.uow, ibps, clock=lambda: NOW, settings=Settings())
    accounts = []
    for principal, currency in ((HK_BANK, Currency.HKD), (CN_BANK, Currency.CNY)):
        assert principal.participant_id is not None and principal.system is not None
        await participants.create_participant(
            participant_id=principal.participant_id, name="Bank", system=principal.system
        )
        view = await participants.open_account(
            participant_id=principal.participant_id,
            holder_name="CHAN Tai Man",
            currency=currency,
            opening_balance=Decimal(0),
        )
        accounts.append(view.record.account_id)
    directory = DirectoryService(db.uow, ibps, clock=lambda: NOW, participants=participants)
    return directory, accounts[0], accounts[1]


async def test_an_hk_number_is_kept_here_and_resolves_to_its_account(
    world: tuple[DirectoryService, str, str], db: FakeDatabase
) -> None:
    directory, hk_account, _ = world
    registered = await directory.register(
        HK_BANK, proxy_type="MOBILE", proxy_value="+852 9123 4567", account_id=hk_account
    )
    assert registered.proxy_value == "+85291234567"
    assert db.rows.proxies == {("MOBILE", "+85291234567"): (hk_account, "HKBANK")}
    found = await directory.lookup(proxy_type="MOBILE", proxy_value="+85291234567")
    assert (found.account_id, found.masked_name) == (hk_account, registered.masked_name)
    assert await directory.resolve("+85291230000") is None


async def test_a_number_is_registered_once(world: tuple[DirectoryService, str, str]) -> None:
    directory, hk_account, _ = world
    await directory.register(OPERATOR, proxy_type="MOBILE", proxy_value="+85291234567", account_id=hk_account)
    with pytest.raises(Conflict) as taken:
        await directory.register(
            HK_BANK, proxy_type="MOBILE", proxy_value="+85291234567", account_id=hk_account
        )
    assert taken.value.code == "PROXY_ALREADY_REGISTERED"


async def test_a_cn_number_is_registered_and_resolved_at_ibps(
    world: tuple[DirectoryService, str, str], db: FakeDatabase, ibps: FakeIbps
) -> None:
    directory, _, cn_account = world
    await directory.register(
        CN_BANK, proxy_type="MOBILE", proxy_value="0086 138-0013-8000", account_id=cn_account
    )
    assert db.rows.proxies == {}
    found = await directory.resolve("+8613800138000")
    assert found is not None and (found.account_id, found.system) == (cn_account, System.IBPS)
    ibps.fail_with = IbpsUnavailable("timed out")
    with pytest.raises(ProxyLookupUnavailable):
        await directory.resolve("+8613800138000")
    with pytest.raises(UpstreamUnavailable) as silent:
        await directory.lookup(proxy_type="MOBILE", proxy_value="+8613800138000")
    assert silent.value.code == "AB06"


async def test_a_number_of_the_other_system_is_refused(world: tuple[DirectoryService, str, str]) -> None:
    directory, hk_account, _ = world
    with pytest.raises(InvalidRequest) as refused:
        await directory.register(
            HK_BANK, proxy_type="MOBILE", proxy_value="+8613800138000", account_id=hk_account
        )
    assert refused.value.code == "PROXY_REGION_MISMATCH"


async def test_another_banks_account_takes_no_number(world: tuple[DirectoryService, str, str]) -> None:
    directory, hk_account, _ = world
    with pytest.raises(NotFound):
        await directory.register(
            CN_BANK, proxy_type="MOBILE", proxy_value="+85291234567", account_id=hk_account
        )


async def test_an_unknown_number_is_be23(world: tuple[DirectoryService, str, str]) -> None:
    directory, _, _ = world
    with pytest.raises(NotFound) as unknown:
        await directory.lookup(proxy_type="MOBILE", proxy_value="+8613900000000")
    assert unknown.value.code == "BE23"


@pytest.mark.parametrize("value", ["9123 4567", "91234567", "13800138000"])
async def test_a_number_without_its_country_code_is_refused_by_registration_and_look_up(
    world: tuple[DirectoryService, str, str], db: FakeDatabase, value: str
) -> None:
    """The same rule as the payment path's: the hint gives both written forms, nothing is guessed."""
    directory, hk_account, _ = world
    with pytest.raises(InvalidRequest, match=r"\+86 138 0013 8000 or \+852 9123 4567") as refused:
        await directory.register(HK_BANK, proxy_type="MOBILE", proxy_value=value, account_id=hk_account)
    assert refused.value.code == "INVALID_PROXY" and db.rows.proxies == {}
    with pytest.raises(InvalidRequest, match=r"\+86 138 0013 8000 or \+852 9123 4567") as unread:
        await directory.lookup(proxy_type="MOBILE", proxy_value=value)
    assert unread.value.code == "INVALID_PROXY"
