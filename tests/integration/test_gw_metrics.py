"""/metrics shows what a dashboard of a long run needs, from a real gateway on PostgreSQL: payments
pending (counted in the database), rejections by code (the limits' AM02 and AM14 among them), and
each IBPS circuit; it still answers when the database does not; and every metric and label the
compose profile `observe` reads (docker/grafana, docker/prometheus) is one that `fpslink serve
--workers 2`, as compose runs it, serves."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from gateway_stack import OPERATOR_KEY, Stack, served_gateway
from gw_support import Crash, Harness, crash_at, funded_bank, unreachable_database_settings
from observe_support import balanced, expressions, selectors
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


async def test_every_metric_the_dashboard_and_the_rules_read_is_served(stack: Stack) -> None:
    """Names, the labels matched and the labels grouped by, against the /metrics of a gateway that
    has settled and rejected a payment, as a stack that has run a while has: a typo, or a metric
    renamed in the code, fails here instead of drawing an empty panel."""
    async with (
        served_gateway(stack, "observe-gateway", workers=2) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        _, key, debtor = await funded_bank(http, "FPS")
        _, _, creditor = await funded_bank(http, "IBPS")
        for amount, status in (("100.00", "SETTLED"), ("9999999.00", "REJECTED")):
            answer = await http.post(
                "/v1/payments",
                json={
                    "debtor_account_id": debtor,
                    "creditor": {"account_id": creditor},
                    "amount": amount,
                    "currency": "HKD",
                    "purpose": "FAMILY_SUPPORT",
                },
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())},
            )
            assert answer.status_code == 201 and answer.json()["status"] == status, answer.text
        exposition = (await http.get("/metrics")).text
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    read = expressions()
    assert len(read) >= 10, [e.where for e in read]
    for expr in read:
        assert balanced(expr.text), expr
        used = selectors(expr.text)
        for name, matched in used:
            assert name in labels, f"{expr.where}: /metrics has no {name}"
            assert matched <= labels[name], f"{expr.where}: {name} has no label {matched - labels[name]}"
        grouped = {
            label.strip()
            for by in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr.text)
            for label in by.split(",")
        }
        offered = {"le"} | {label for name, _ in used for label in labels[name]}
        assert grouped <= offered, f"{expr.where}: no metric it reads has {grouped - offered}"
