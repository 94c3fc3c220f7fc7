"""The participants service on fake units of work and a fake IBPS: keys, banks and accounts."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fpslink.config import Settings, ready_to_serve
from fpslink.errors import Conflict, InvalidRequest, NotFound, Unauthorized, UpstreamUnavailable
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable
from fpslink.money import Currency
from fpslink.participants.service import ParticipantsService, hash_key
from fpslink.principal import OPERATOR, Principal
from fpslink.ratelimit.policy import Quota
from fpslink.vocabulary import System
from ibps_wire import credentials
from unit.fakes import FakeDatabase, FakeIbps

NOW = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
OPERATOR_KEY = "operator-key-for-unit-tests"


class Ticker:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ibps() -> FakeIbps:
    return FakeIbps()


@pytest.fixture
def service(db: FakeDatabase, ibps: FakeIbps) -> ParticipantsService:
    return ParticipantsService(db.uow, ibps, clock=lambda: NOW, settings=Settings(operator_key=OPERATOR_KEY))


async def bank(service: ParticipantsService, participant_id: str, system: System) -> str:
    created = await service.create_participant(participant_id=participant_id, name="A bank", system=system)
    return created.api_key


# authenticate -----------------------------------------------------------------------------------


async def test_the_operator_key_is_the_operator_without_a_look_up(
    service: ParticipantsService, db: FakeDatabase
) -> None:
    assert await service.authenticate(OPERATOR_KEY) is OPERATOR
    assert db.opened == 0


@pytest.mark.parametrize("key", [None, "", "fpsl_nobody_0000"])
async def test_a_missing_or_unknown_key_is_refused(service: ParticipantsService, key: str | None) -> None:
    with pytest.raises(Unauthorized):
        await service.authenticate(key)


async def test_a_banks_key_is_served_from_the_cache_and_looked_up_again_within_its_ttl(
    db: FakeDatabase, ibps: FakeIbps
) -> None:
    ticker = Ticker()
    settings = Settings(operator_key=OPERATOR_KEY, key_cache_ttl_s=2.0)
    service = ParticipantsService(db.uow, ibps, clock=lambda: NOW, settings=settings, ticker=ticker)
    key = await bank(service, "HKBANK", System.FPS)
    opened = db.opened
    first = await service.authenticate(key)
    assert first == Principal(participant_id="HKBANK", system=System.FPS)
    assert db.opened == opened + 1
    ticker.now += 0.9
    assert await service.authenticate(key) == first
    assert db.opened == opened + 1  # fresh: no look-up
    db.rows.api_keys.clear()  # gone from the database
    ticker.now += 0.2  # past half the TTL: served, and looked up again in the background
    assert await service.authenticate(key) == first
    await asyncio.sleep(0)
    assert db.opened == opened + 2
    with pytest.raises(Unauthorized):  # the look-up found it gone
        await service.authenticate(key)


async def test_an_unused_key_is_looked_up_when_its_entry_has_expired(
    db: FakeDatabase, ibps: FakeIbps
) -> None:
    ticker = Ticker()
    settings = Settings(operator_key=OPERATOR_KEY, key_cache_ttl_s=2.0)
    service = ParticipantsService(db.uow, ibps, clock=lambda: NOW, settings=settings, ticker=ticker)
    key = await bank(service, "HKBANK", System.FPS)
    await service.authenticate(key)
    db.rows.api_keys.clear()
    ticker.now += 2.0
    with pytest.raises(Unauthorized):
        await service.authenticate(key)


async def test_an_unknown_key_is_not_cached(service: ParticipantsService, db: FakeDatabase) -> None:
    with pytest.raises(Unauthorized):
        await service.authenticate("fpsl_later_0000")
    await service.create_participant(
        participant_id="LATER", name="Later", system=System.FPS, api_key="fpsl_later_0000"
    )
    assert (await service.authenticate("fpsl_later_0000")).participant_id == "LATER"


async def test_previous_operator_keys_are_the_operator_during_a_rotation(
    db: FakeDatabase, ibps: FakeIbps
) -> None:
    old = "the-previous-operator-key"
    settings = Settings(operator_key=OPERATOR_KEY, operator_key_previous=f" {old} ,")
    service = ParticipantsService(db.uow, ibps, clock=lambda: NOW, settings=settings)
    assert await service.authenticate(OPERATOR_KEY) is OPERATOR
    assert await service.authenticate(old) is OPERATOR
    with pytest.raises(Unauthorized):
        await service.authenticate(old[:-1])
    assert db.opened == 1  # the last one was looked up as a bank's key


def test_previous_operator_keys_need_a_current_one_and_are_judged_as_it_is_to_serve() -> None:
    with pytest.raises(ValueError, match="needs FPSLINK_OPERATOR_KEY"):
        Settings(operator_key_previous="k" * 40)
    strong = secrets.token_urlsafe(32)
    settings = Settings(
        operator_key=strong, ibps_token=secrets.token_urlsafe(32), operator_key_previous="short"
    )
    with pytest.raises(credentials.WeakSecrets, match="FPSLINK_OPERATOR_KEY_PREVIOUS"):
        ready_to_serve(settings)
    ready_to_serve(settings.model_copy(update={"operator_key_previous": secrets.token_urlsafe(32)}))


async def test_a_bank_spends_the_default_quota_until_the_operator_sets_its_own(
    service: ParticipantsService,
) -> None:
    key = await bank(service, "HKBANK", System.FPS)
    assert (await service.identify(key)).quota == Quota(100, 5)
    assert (await service.identify(OPERATOR_KEY)).quota is None
    await service.set_rate_limit("HKBANK", Quota(5000, 1))
    assert (await service.identify(key)).quota == Quota(5000, 1)  # this worker forgot its look-up
    view = await service.rate_limit(Principal("HKBANK", System.FPS), "HKBANK")
    assert (view.quota, view.own) == (Quota(5000, 1), True)
    with pytest.raises(NotFound):
        await service.set_rate_limit("NOBODY", None)


async def test_a_revoked_key_is_refused_at_once_by_the_worker_that_revoked_it(
    service: ParticipantsService, db: FakeDatabase
) -> None:
    first = await bank(service, "HKBANK", System.FPS)
    holder = Principal("HKBANK", System.FPS)
    second = await service.create_key(holder, "HKBANK", expires_at=None)
    assert (await service.authenticate(second.api_key)) == holder  # cached from here on
    await service.revoke_key(holder, "HKBANK", second.record.prefix)
    with pytest.raises(Unauthorized):
        await service.authenticate(second.api_key)
    assert await service.authenticate(first) == holder
    prefixes = [k.prefix for k in await service.list_keys(holder, "HKBANK")]
    assert second.record.prefix in prefixes and all(p not in (first, second.api_key) for p in prefixes)


async def test_keys_are_managed_by_their_bank_or_the_operator_only(service: ParticipantsService) -> None:
    await bank(service, "HKBANK", System.FPS)
    with pytest.raises(NotFound):
        await service.create_key(Principal("OTHER", System.FPS), "HKBANK", expires_at=None)
    with pytest.raises(NotFound):
        await service.list_keys(OPERATOR, "NOBODY")
    with pytest.raises(InvalidRequest):
        await service.create_key(OPERATOR, "HKBANK", expires_at=NOW)
    for _ in range(4):
        await service.create_key(OPERATOR, "HKBANK", expires_at=None)
    with pytest.raises(Conflict) as full:
        await service.create_key(OPERATOR, "HKBANK", expires_at=None)
    assert full.value.code == "KEY_LIMIT_REACHED"


# banks ------------------------------------------------------------------------------------------


async def test_an_fps_bank_is_kept_here_only(
    service: ParticipantsService, db: FakeDatabase, ibps: FakeIbps
) -> None:
    created = await service.create_participant(participant_id="HKBANK", name="HK Bank", system=System.FPS)
    assert created.api_key.startswith("fpsl_hkbank_")
    record = db.rows.participants["HKBANK"]
    key = db.rows.api_keys[hash_key(created.api_key)]
    assert (record.system, key.participant_id, key.prefix) == (
        System.FPS,
        "HKBANK",
        created.api_key[: len("fpsl_hkbank_") + 8],
    )
    assert ibps.calls == []


async def test_an_ibps_bank_is_created_at_ibps_first(
    service: ParticipantsService, db: FakeDatabase, ibps: FakeIbps
) -> None:
    await service.create_participant(participant_id="CNBANK", name="CN Bank", system=System.IBPS)
    assert ibps.calls == [("create_participant", {"participant_id": "CNBANK", "name": "CN Bank"})]
    assert "CNBANK" in db.rows.participants


async def test_a_bank_refused_by_ibps_is_not_kept(
    service: ParticipantsService, db: FakeDatabase, ibps: FakeIbps
) -> None:
    ibps.fail_with = IbpsRefused(409, "PARTICIPANT_EXISTS", "other details")
    with pytest.raises(Conflict) as refused:
        await service.create_participant(participant_id="CNBANK", name="CN Bank", system=System.IBPS)
    assert refused.value.code == "PARTICIPANT_EXISTS"
    assert db.rows.participants == {}


async def test_a_second_bank_with_the_same_id_is_a_conflict(service: ParticipantsService) -> None:
    await bank(service, "HKBANK", System.FPS)
    with pytest.raises(Conflict):
        await bank(service, "HKBANK", System.FPS)


async def test_an_insert_that_races_another_is_a_conflict_too(
    service: ParticipantsService, db: FakeDatabase
) -> None:
    key = await bank(service, "HKBANK", System.FPS)
    with pytest.raises(Conflict):  # another id, the same key: the unique key hash refuses it
        await service.create_participant(participant_id="OTHER", name="Other", system=System.FPS, api_key=key)
    assert sorted(db.rows.participants) == ["HKBANK"]


# accounts ---------------------------------------------------------------------------------------


async def test_an_ibps_account_refused_by_ibps_is_not_kept(
    service: ParticipantsService, db: FakeDatabase, ibps: FakeIbps
) -> None:
    await bank(service, "CNBANK", System.IBPS)
    ibps.fail_with = IbpsRefused(422, "ACCOUNT_EXISTS", "account CN1 exists")
    with pytest.raises(InvalidRequest) as refused:
        await service.open_account(
            participant_id="CNBANK", holder_name="ZHANG", currency=Currency.CNY, opening_balance=Decimal("5")
        )
    assert refused.value.code == "ACCOUNT_EXISTS"
    assert db.rows.accounts == {} and db.rows.ledger == {}


async def test_an_ibps_account_is_not_kept_when_ibps_does_not_answer(
    service: ParticipantsService, db: FakeDatabase, ibps: FakeIbps
) -> None:
    await bank(service, "CNBANK", System.IBPS)
    ibps.fail_with = IbpsUnavailable("timed out")
    with pytest.raises(UpstreamUnavailable):
        await service.open_account(
            participant_id="CNBANK", holder_name="ZHANG", currency=Currency.CNY, opening_balance=Decimal("5")
        )
    assert db.rows.accounts == {}


async def test_an_ibps_account_opens_at_ibps_and_is_kept_in_the_directory(
    service: ParticipantsService, db: FakeDatabase, ibps: FakeIbps
) -> None:
    await bank(service, "CNBANK", System.IBPS)
    view = await service.open_account(
        participant_id="CNBANK", holder_name="ZHANG", currency=Currency.CNY, opening_balance=Decimal("1234.5")
    )
    account_id = view.record.account_id
    assert account_id.startswith("CN")
    assert ibps.calls[-1] == (
        "open_account",
        {
            "account_id": account_id,
            "participant_id": "CNBANK",
            "holder_name": "ZHANG",
            "opening_balance_minor": 123_450,
        },
    )
    assert db.rows.accounts[account_id] == view.record
    assert db.rows.ledger == {}  # its balance is IBPS's to keep
    assert (view.balance, view.available_balance, view.held) == ("1234.50", "1234.50", "0.00")
    shown = await service.account_view(Principal("CNBANK", System.IBPS), account_id)
    assert shown.balance == "1234.50"


async def test_an_fps_account_and_its_opening_balance_are_written_together(
    service: ParticipantsService, db: FakeDatabase, ibps: FakeIbps
) -> None:
    await bank(service, "HKBANK", System.FPS)
    view = await service.open_account(
        participant_id="HKBANK", holder_name="CHAN", currency=Currency.HKD, opening_balance=Decimal("100")
    )
    account_id = view.record.account_id
    assert db.rows.accounts[account_id].system is System.FPS
    assert db.rows.ledger[account_id] == (10_000, 0)
    assert db.rows.opening_transfers == [(account_id, 10_000)]
    assert ibps.calls == []
    db.rows.ledger[account_id] = (10_000, 2_500)
    shown = await service.account_view(OPERATOR, account_id)
    assert (shown.balance, shown.available_balance, shown.held) == ("100.00", "75.00", "25.00")


async def test_an_account_of_an_unknown_bank_is_not_found(service: ParticipantsService) -> None:
    with pytest.raises(NotFound):
        await service.open_account(
            participant_id="NOBODY", holder_name="X", currency=Currency.HKD, opening_balance=Decimal(0)
        )


async def test_an_ibps_account_holds_cny_only(service: ParticipantsService, ibps: FakeIbps) -> None:
    await bank(service, "CNBANK", System.IBPS)
    with pytest.raises(InvalidRequest):
        await service.open_account(
            participant_id="CNBANK", holder_name="X", currency=Currency.HKD, opening_balance=Decimal(0)
        )
    assert [name for name, _ in ibps.calls] == ["create_participant"]


async def test_another_banks_account_is_as_unknown_as_a_missing_one(service: ParticipantsService) -> None:
    await bank(service, "HKBANK", System.FPS)
    await bank(service, "HKOTHER", System.FPS)
    view = await service.open_account(
        participant_id="HKBANK", holder_name="CHAN", currency=Currency.HKD, opening_balance=Decimal(0)
    )
    account_id = view.record.account_id
    assert await service.owned_account(Principal("HKBANK"), account_id) == view.record
    assert await service.owned_account(OPERATOR, account_id) == view.record
    for principal, wanted in ((Principal("HKOTHER"), account_id), (Principal("HKBANK"), "HK0000")):
        with pytest.raises(NotFound) as hidden:
            await service.owned_account(principal, wanted)
        assert hidden.value.code == "ACCOUNT_NOT_FOUND"


# a bank's BIC -----------------------------------------------------------------------------------


async def test_a_banks_bic_is_kept_and_comes_with_its_key(service: ParticipantsService) -> None:
    created = await service.create_participant(
        participant_id="HKBANK", name="A bank", system=System.FPS, bic="HKBKHKH0XXX"
    )
    assert created.participant.bic == "HKBKHKH0XXX"
    principal = await service.authenticate(created.api_key)
    assert principal == Principal(participant_id="HKBANK", system=System.FPS, bic="HKBKHKH0XXX")
    plain = await service.authenticate(await bank(service, "HKPLAIN", System.FPS))
    assert plain.bic is None


async def test_two_banks_cannot_share_a_bic(service: ParticipantsService) -> None:
    await service.create_participant(participant_id="HKONE", name="One", system=System.FPS, bic="ONEBHKH0")
    with pytest.raises(Conflict) as refused:
        await service.create_participant(
            participant_id="HKTWO", name="Two", system=System.FPS, bic="ONEBHKH0"
        )
    assert refused.value.code == "BIC_IN_USE"
