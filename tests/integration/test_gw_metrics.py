"""/metrics shows what a dashboard of a long run needs, from a real gateway on PostgreSQL: payments
pending (counted in the database), rejections by code (the limits' AM02 and AM14 among them), and
each IBPS circuit; and it still answers when the database does not."""

from __future__ import annotations

import httpx
import pytest
from gateway_stack import OPERATOR_KEY
from gw_support import Crash, Harness, crash_at, unreachable_database_settings
from prometheus_client.parser import text_string_to_metric_families

from fpslink.app import create_app
from fpslink.settlement import recovery


async def samples(h: Harness) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = await h.http.get("/metrics")
    assert answer.status_code == 200, answer.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_a_payment_left_pending_is_counted_until_recovery_finishes_it(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor, creditor = await h.account(hk, "HKD"), await h.account(cn, "CNY")
    before = await recovery.pending_counts(h.gw)
    h.gw.crash_hook = crash_at("accepted")
    with pytest.raises(Crash):
        await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="100.00", currency="HKD")
    h.gw.crash_hook = lambda reached: None
    found = await samples(h)
    for state in ("ACCEPTED", "COMMITTING", "ABORTING"):
        expected = before.get(state, 0) + (1 if state == "ACCEPTED" else 0)
        assert value(found, "fpslink_payments_pending", state=state) == expected, state
    h.clock.advance(h.gw.settings.settlement_timeout_s + 1)
    assert await recovery.sweep(h.gw) == {"REJECTED": 1}
    assert await recovery.pending_counts(h.gw) == before


@pytest.mark.settings(northbound_daily_hkd="1000.00")
async def test_limit_rejections_are_counted_by_code(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor, creditor = await h.account(hk, "HKD"), await h.account(cn, "CNY")
    before = await samples(h)
    for amount in ("800.00", "800.00", "9999999.00"):  # settled, over the day's limit, over one's
        answer = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount=amount, currency="HKD")
        assert answer.status_code == 201, answer.text
    after = await samples(h)
    for code in ("AM14", "AM02"):
        labels = {"direction": "NORTHBOUND", "code": code}
        assert value(after, "fpslink_payment_rejections_total", **labels) == (
            value(before, "fpslink_payment_rejections_total", **labels) + 1
        ), code
    assert value(after, "fpslink_ibps_circuit_open", circuit="link") == 0


async def test_metrics_answer_while_the_database_is_down() -> None:
    app = create_app(unreachable_database_settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            answer = await http.get("/metrics", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert answer.status_code == 200, answer.text
    assert "fpslink_payments_total" in answer.text
