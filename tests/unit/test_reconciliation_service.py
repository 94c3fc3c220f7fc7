"""Reading and refusing reconciliations on fake units of work (the match itself is SQL, tested on
PostgreSQL in tests/integration/test_gw_recon_*.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fpslink.config import Settings
from fpslink.errors import InvalidRequest, NotFound
from fpslink.reconciliation import service as recon
from fpslink.reconciliation.service import ReconciliationService
from unit.fakes import FakeDatabase, FakeIbps

NOW = datetime(2026, 6, 22, 17, 0, tzinfo=UTC)  # 01:00 on 23 June in Hong Kong


def no_connection() -> object:
    raise AssertionError("this test runs no match")


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def service(db: FakeDatabase) -> ReconciliationService:
    return ReconciliationService(db.uow, no_connection, FakeIbps(), clock=lambda: NOW, settings=Settings())


async def test_a_day_that_has_not_begun_in_hong_kong_is_refused(
    service: ReconciliationService, db: FakeDatabase
) -> None:
    with pytest.raises(InvalidRequest):
        await service.reconcile(business_date=date(2026, 6, 24))
    assert db.opened == 0 and db.rows.recon_runs == {}


async def test_a_day_that_retention_purged_is_refused_and_the_first_kept_is_not(
    service: ReconciliationService, db: FakeDatabase
) -> None:
    db.rows.kept_from = date(2026, 6, 20)
    with pytest.raises(InvalidRequest) as purged:
        await service.reconcile(business_date=date(2026, 6, 19))
    assert purged.value.code == "BUSINESS_DATE_PURGED"
    assert purged.value.ids == {"kept_from": "2026-06-20"}
    assert db.rows.recon_runs == {}
    with pytest.raises(AssertionError, match="runs no match"):  # accepted: it went on to match
        await service.reconcile(business_date=date(2026, 6, 20))


async def test_an_unknown_run_is_not_found(service: ReconciliationService) -> None:
    with pytest.raises(NotFound) as missing:
        await service.get_run("no-such-run")
    assert missing.value.code == "RECONCILIATION_NOT_FOUND"


async def test_breaks_are_read_in_pages_up_to_the_limit(
    service: ReconciliationService, db: FakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recon, "BREAK_PAGE_SIZE", 2)
    db.rows.recon_breaks = [{"run_id": "R", "seq": n, "payment_id": f"p-{n}"} for n in range(1, 6)] + [
        {"run_id": "S", "seq": 6, "payment_id": "p-6"}
    ]
    opened = db.opened
    assert [b["seq"] async for b in service.iter_breaks("R")] == [1, 2, 3, 4, 5]
    assert db.opened - opened == 3  # a unit of work per page: none is held while the caller streams
    assert [b["seq"] async for b in service.iter_breaks("R", limit=3)] == [1, 2, 3]
