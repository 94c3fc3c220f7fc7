"""NUL, control and bidi-override characters in names, remittance, purpose and references: 422,
with the field named, in the JSON API, and a pacs.002 RJCT (FF01) naming the element in ISO 20022.

Before: a NUL in remittance_info or purpose reached PostgreSQL inside the payment batch, which
failed whole (500 for every payment in it, other banks' included); a NUL in a bank's or an account
holder's name was a 500; and U+202E and the like were stored and shown as they came, so that a
name could read as another.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from gw_support import Bank, Harness, iso_rejection, problem

from fpslink.iso20022 import pacs002

REFUSED = [
    "\x00",
    "\x07",
    "\x1b",
    "\t",
    "\n",
    "\x7f",
    "\x85",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
]
EXAMPLES = Path(__file__).parents[1] / "integration" / "iso20022_examples"


def _field_errors(body: dict[str, object]) -> list[str]:
    errors = body.get("errors")
    assert isinstance(errors, list), body
    return [str(e["field"]) for e in errors if isinstance(e, dict)]


async def _pair(h: Harness) -> tuple[Bank, str, str]:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk)
    creditor = await h.account(cn)
    return hk, debtor, creditor


@pytest.mark.parametrize("char", REFUSED, ids=[f"U+{ord(c):04X}" for c in REFUSED])
async def test_payment_text_with_a_refused_character_is_422_with_the_field(
    harness: Harness, char: str
) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    before = await h.balance(debtor)
    text = await h.pay(
        hk,
        debtor=debtor,
        amount="10.00",
        currency="HKD",
        creditor_account=creditor,
        remittance_info=f"rent{char}for June",
    )
    body = problem(text, 422, "VALIDATION_ERROR")
    assert _field_errors(body) == ["remittance_info"], body
    assert f"U+{ord(char):04X}" in body["detail"], body
    # purpose is one of the named purposes: anything else, a look-alike with a hidden character
    # included, is refused by name
    purpose = await h.pay(
        hk, debtor=debtor, amount="10.00", currency="HKD", creditor_account=creditor, purpose=f"GI{char}FT"
    )
    assert _field_errors(problem(purpose, 422, "VALIDATION_ERROR")) == ["purpose"]
    assert await h.balance(debtor) == before


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u202e", "\u2067"], ids=["NUL", "ESC", "RLO", "RLI"])
async def test_names_with_a_refused_character_are_422_with_the_field(harness: Harness, char: str) -> None:
    h = harness
    hk = await h.bank("FPS")
    code = f"HK{uuid.uuid4().hex[:10].upper()}"
    made = await h.http.post(
        "/v1/participants",
        json={"participant_id": code, "name": f"Bank{char}of Tests", "system": "FPS"},
        headers=h.operator,
    )
    assert _field_errors(problem(made, 422, "VALIDATION_ERROR")) == ["name"]
    opened = await h.http.post(
        "/v1/accounts",
        json={"participant_id": hk.participant_id, "holder_name": f"CHAN Tai{char}Man", "currency": "HKD"},
        headers=h.operator,
    )
    assert _field_errors(problem(opened, 422, "VALIDATION_ERROR")) == ["holder_name"]
    hook = await h.http.post("/v1/webhooks", json={"url": f"http://127.0.0.1:9/{char}"}, headers=hk.headers)
    assert _field_errors(problem(hook, 422, "VALIDATION_ERROR")) == ["url"]


async def test_one_bad_payment_no_longer_fails_the_batch_it_joins(harness: Harness, faults: Any) -> None:
    """Payments sent together settle in batches: the first alone and, while it waits on a slow IBPS,
    those behind it together. A NUL in one of them used to make PostgreSQL refuse that batch's
    write, and every payment of the batch, another bank's included, answered 500."""
    h = harness
    await faults(call="prepare", kind="latency", probability=1.0, latency_ms=300)
    hk, debtor, creditor = await _pair(h)
    other, other_debtor, _ = await _pair(h)
    goods = [
        h.pay(other, debtor=other_debtor, amount="1.00", currency="HKD", creditor_account=creditor)
        for _ in range(8)
    ]
    bad = h.pay(
        hk, debtor=debtor, amount="1.00", currency="HKD", creditor_account=creditor, remittance_info="a\x00b"
    )
    answers = await asyncio.gather(goods[0], bad, *goods[1:])
    problem(answers[1], 422, "VALIDATION_ERROR")
    settled = [answers[0], *answers[2:]]
    assert [a.status_code for a in settled] == [201] * 8, [a.text for a in settled if a.status_code != 201]
    assert {a.json()["status"] for a in settled} == {"SETTLED"}
    batcher = h.gw.payments.batcher
    assert batcher is not None and batcher.batches < batcher.items, "the payments did not share a batch"


def _pacs008(**replace: str) -> bytes:
    text = (EXAMPLES / "pacs008_northbound_account_receive.xml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


@pytest.mark.parametrize(
    ("element", "old", "new"),
    [
        ("RmtInf/Ustrd", "<Ustrd>", "<Ustrd>\u202e"),
        ("Dbtr/Nm", "<Nm>CHAN Tai Man</Nm>", "<Nm>CHAN Tai\u2067Man</Nm>"),
        ("Cdtr/Nm", "<Nm>LI Hua</Nm>", "<Nm>LI&#x85;Hua</Nm>"),
        ("GrpHdr/MsgId", "<MsgId>", "<MsgId>&#x7f;"),
        # C0 controls but tab and line ends are not XML at all (400 ISO20022_MALFORMED); C1 ones are
        ("Purp/Prtry", "<Cd>EDUC</Cd>", "<Prtry>FAMILY&#x9b;SUPPORT</Prtry>"),
    ],
)
async def test_iso20022_text_with_a_refused_character_is_a_pacs002_rjct_naming_its_path(
    harness: Harness, element: str, old: str, new: str
) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    message = _pacs008(
        HKDEMO0001=debtor,
        CNDEMO0002=creditor,
        **{old: new},
    )
    answer = await h.http.post(
        "/v1/iso20022/pacs.008",
        content=message,
        headers={**hk.headers, "Content-Type": "application/xml", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert set(iso_rejection(answer, 422)) == {"FF01"}
    (group,) = pacs002.parse(answer.content).fito_fipmt_sts_rpt.orgnl_grp_inf_and_sts
    words = " ".join(text for reason in group.sts_rsn_inf for text in reason.addtl_inf)
    assert element in words and "bidirectional-override" in words, words
    assert await h.balance(debtor) == ("100000.00", "0.00")
