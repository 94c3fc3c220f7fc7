"""Fairness under faults: one bank's magic values or slow payments never refuse another bank's.

A shared sandbox's IBPS circuit used to be one per worker: six look-ups of the magic time-out
number (+86 139 0000 0408) by one bank opened it, and another bank's payment was rejected AB06
"circuit open" for the reset time, repeatably. The circuits are now per bank, and the link's opens
only when the circuits of several banks are open at once (docs/architecture.md#ibps-circuits).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gw_support import Bank, Harness, problem

MAGIC_LOOKUP = "/v1/proxies/MOBILE/%2B8613900000408"
FAST = {"ibps_timeout_s": 0.3, "ibps_retries": 2, "ibps_backoff_s": 0.01, "payment_deadline_s": 6.0}


async def _creditor(h: Harness) -> tuple[Bank, str, str]:
    """A mainland bank with a funded account and its +86 number."""
    cn = await h.bank("IBPS")
    account = await h.account(cn, "CNY", "1000.00")
    return cn, account, await h.proxy(cn, account)


async def _payer(h: Harness) -> tuple[Bank, str]:
    hk = await h.bank("FPS")
    return hk, await h.account(hk, "HKD", "5000.00")


@pytest.mark.settings(**FAST)
async def test_one_banks_magic_look_ups_never_open_the_circuit_for_another_bank(harness: Harness) -> None:
    h = harness
    _, _, proxy = await _creditor(h)
    noisy, noisy_account = await _payer(h)
    other, other_account = await _payer(h)
    for _ in range(6):
        problem(await h.http.get(MAGIC_LOOKUP, headers=noisy.headers), 503, "AB06")

    paid = (await h.pay(other, debtor=other_account, proxy=proxy, amount="100.00", currency="HKD")).json()

    assert (paid["status"], paid["reason_code"]) == ("SETTLED", None), paid
    own = (await h.pay(noisy, debtor=noisy_account, proxy=proxy, amount="100.00", currency="HKD")).json()
    assert (own["status"], own["reason_code"]) == ("REJECTED", "AB06"), "its own circuit is open"
    assert "circuit open" in own["reason"]
    assert await h.balance(noisy_account) == ("5000.00", "0.00")


@pytest.mark.settings(**FAST)
async def test_payments_to_the_magic_number_never_open_the_circuit_for_another_bank(
    harness: Harness,
) -> None:
    h = harness
    _, creditor_account, _ = await _creditor(h)
    noisy, noisy_account = await _payer(h)
    other, other_account = await _payer(h)
    for _ in range(6):
        magic = await h.pay(
            noisy, debtor=noisy_account, proxy="+86 139 0000 0408", amount="1.00", currency="HKD"
        )
        assert (magic.json()["status"], magic.json()["reason_code"]) == ("REJECTED", "AB06")

    paid = await h.pay(
        other, debtor=other_account, creditor_account=creditor_account, amount="100.00", currency="HKD"
    )

    assert (paid.json()["status"], paid.json()["reason_code"]) == ("SETTLED", None), paid.json()


HALF_OPEN = {
    "ibps_timeout_s": 1.0,
    "ibps_retries": 0,
    "ibps_backoff_s": 0.01,
    "ibps_breaker_threshold": 2,
    "ibps_breaker_reset_s": 2.0,
    "payment_deadline_s": 6.0,
}


async def _open_own_circuit(h: Harness, bank: Bank, debtor: str, creditor: str) -> None:
    """Two magic look-ups, one attempt each: the bank's circuit opens."""
    for _ in range(2):
        problem(await h.http.get(MAGIC_LOOKUP, headers=bank.headers), 503, "AB06")
    paid = await h.pay(bank, debtor=debtor, creditor_account=creditor, amount="1.00", currency="HKD")
    assert _refused(paid.json()), paid.json()


async def _pay_until(
    h: Harness, bank: Bank, debtor: str, creditor: str, *, seconds: float
) -> list[tuple[float, dict[str, Any]]]:
    """Small healthy payments one after another for `seconds` (at most 200): when each was sent
    (the event loop's clock), and its answer."""
    loop = asyncio.get_running_loop()
    started, answers = loop.time(), []
    while loop.time() - started < seconds and len(answers) < 200:
        at = loop.time()
        paid = await h.pay(bank, debtor=debtor, creditor_account=creditor, amount="1.00", currency="HKD")
        answers.append((at, paid.json()))
        await asyncio.sleep(0.05)
    return answers


def _refused(answer: dict[str, Any]) -> bool:
    return answer["status"] == "REJECTED" and "circuit open" in (answer["reason"] or "")


def _longest_refusal(answers: list[tuple[float, dict[str, Any]]]) -> float:
    """The longest time from a refused payment to the next one let through (or the last sent)."""
    longest, since = 0.0, None
    for at, answer in answers:
        if _refused(answer):
            since = at if since is None else since
            longest = max(longest, at - since)
        elif since is not None:
            longest, since = max(longest, at - since), None
    return longest


@pytest.mark.settings(**HALF_OPEN)
async def test_a_slow_trial_refuses_no_healthy_payment_beside_it(harness: Harness) -> None:
    """Half-open, the bank's slow call (a magic look-up that hangs until the 1 s time-out) went out
    as the trial; every payment of that bank was refused while it hung, and for a whole reset time
    (2 s) after it failed: 3 s of refusals. Now healthy payments go out beside it as trials of their
    own, and the first answer closes the circuit."""
    h = harness
    _, creditor_account, _ = await _creditor(h)
    bank, debtor = await _payer(h)
    await _open_own_circuit(h, bank, debtor, creditor_account)
    await asyncio.sleep(HALF_OPEN["ibps_breaker_reset_s"] + 0.05)
    slow_trial = asyncio.create_task(h.http.get(MAGIC_LOOKUP, headers=bank.headers))
    await asyncio.sleep(0.05)  # the look-up is at IBPS, hanging

    answers = await _pay_until(h, bank, debtor, creditor_account, seconds=2.5)

    problem(await slow_trial, 503, "AB06")
    refused = [a for _, a in answers if _refused(a)]
    longest = _longest_refusal(answers)
    assert (len(refused), longest) == (0, 0.0), (
        f"{len(refused)} of {len(answers)} payments refused 'circuit open', for {longest:.2f} s at a stretch"
    )
    assert all(a["status"] == "SETTLED" for _, a in answers), [a["status"] for _, a in answers]


@pytest.mark.settings(**HALF_OPEN)
async def test_a_trial_that_times_out_refuses_for_no_longer_than_one_reset_time(harness: Harness) -> None:
    """With nothing else to try, the failed trial re-opens the circuit as from the moment it went
    out: payments are let through again one reset time (2 s) after that, not 2 s after its time-out
    (3 s)."""
    h = harness
    _, creditor_account, _ = await _creditor(h)
    bank, debtor = await _payer(h)
    await _open_own_circuit(h, bank, debtor, creditor_account)
    await asyncio.sleep(HALF_OPEN["ibps_breaker_reset_s"] + 0.05)
    trial_went_out = asyncio.get_running_loop().time()
    problem(await h.http.get(MAGIC_LOOKUP, headers=bank.headers), 503, "AB06")  # hangs 1 s

    answers = await _pay_until(h, bank, debtor, creditor_account, seconds=3.0)

    refused = [at - trial_went_out for at, a in answers if _refused(a)]
    settled = [at - trial_went_out for at, a in answers if a["status"] == "SETTLED"]
    assert refused and settled, [a["reason"] for _, a in answers]
    reset = HALF_OPEN["ibps_breaker_reset_s"]
    assert max(refused) < reset + 0.5, f"refused until {max(refused):.2f} s after the trial went out"
    assert min(settled) > max(refused), "once let through, the payments stay let through"


@pytest.mark.settings(
    ibps_timeout_s=1.0,
    ibps_retries=0,
    ibps_breaker_threshold=2,
    ibps_breaker_reset_s=30.0,
    payment_deadline_s=4.0,
)
async def test_when_ibps_fails_every_bank_the_link_refuses_every_bank_at_once(
    harness: Harness, faults: Any
) -> None:
    """The breaker still protects the gateway: once three banks' circuits are open (the quorum),
    a bank that never failed is rejected at once, before anything is held."""
    h = harness
    _, creditor_account, _ = await _creditor(h)
    await faults(call="lookup", kind="error", probability=1.0)
    for _ in range(3):
        bank, _ = await _payer(h)
        for _ in range(2):
            lookup = await h.http.get("/v1/proxies/MOBILE/%2B8613800138000", headers=bank.headers)
            problem(lookup, 503, "AB06")
    fresh, debtor = await _payer(h)

    paid = (
        await h.pay(fresh, debtor=debtor, creditor_account=creditor_account, amount="1.00", currency="HKD")
    ).json()

    assert (paid["status"], paid["reason_code"]) == ("REJECTED", "AB06")
    assert "circuit open" in paid["reason"]
    assert [e["event"] for e in paid["events"]] == ["REJECTED"]
    assert await h.balance(debtor) == ("5000.00", "0.00")
