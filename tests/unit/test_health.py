"""GET /healthz's service on a fake unit of work and a fake IBPS."""

from __future__ import annotations

from fpslink.health import HealthService
from fpslink.ibps_client import IbpsUnavailable
from unit.fakes import FakeDatabase, FakeIbps


async def test_both_answer() -> None:
    report = await HealthService(FakeDatabase().uow, FakeIbps()).check()
    assert (report.ok, report.database, report.ibps) == (True, "ok", "ok")


async def test_a_database_out_of_reach_is_named_by_its_error_type_only() -> None:
    db = FakeDatabase()
    db.down = True
    report = await HealthService(db.uow, FakeIbps()).check()
    assert (report.ok, report.database) == (False, "error: ConnectionRefusedError")


async def test_ibps_out_of_reach_leaves_the_gateway_ok() -> None:
    ibps = FakeIbps()
    ibps.fail_with = IbpsUnavailable("no route")
    report = await HealthService(FakeDatabase().uow, ibps).check()
    assert (report.ok, report.ibps) == (True, "unreachable")
