"""No input answers 5xx: seeded mutations of real-shaped messages, sent to the gateway over HTTP.

Every sample message (bare, and in each envelope) is mutated in the ways tests/iso20022_corpus.py
describes, and its bytes are also cut short and corrupted. Each answer must be a schema-valid pacs.002
(settled, rejected or refused, and never refused because the model could not hold a checked message),
or problem+json for what is not a message (400) or a key still in use (409); never a 5xx. The run is
bounded: FPSLINK_ISO20022_FUZZ_CASES cases (400 by default).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

from gw_support import Harness, fresh_bic, iso_reasons
from iso20022_corpus import XSD_DIR, mutate, official_verdict, vocabulary

from fpslink.iso20022 import pacs002

EXAMPLES = Path(__file__).parent / "iso20022_examples"
CASES = int(os.environ.get("FPSLINK_ISO20022_FUZZ_CASES", "400"))
URL = "/v1/iso20022/pacs.008"


def _corrupt(xml: bytes, rng: random.Random) -> tuple[str, bytes]:
    choice = rng.randrange(3)
    if choice == 0:
        cut = rng.randrange(len(xml))
        return f"cut at byte {cut}", xml[:cut]
    if choice == 1:
        data = bytearray(xml)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return "bytes flipped", bytes(data)
    junk = rng.choice([b"<!DOCTYPE x>", b"&amp;&bogus;", b"\xff\xfe", b"<?xml-stylesheet?>", b"]]>"])
    at = rng.randrange(len(xml))
    return f"{junk!r} inserted", xml[:at] + junk + xml[at:]


async def test_no_mutated_message_answers_5xx(harness: Harness) -> None:
    h = harness
    hk = await h.bank("FPS", bic=fresh_bic("HK"))
    cn = await h.bank("IBPS", bic=fresh_bic("CN"))
    hk_account = await h.account(hk, "HKD", "1000000.00")
    cn_account = await h.account(cn, "CNY", "1000000.00")
    number = await h.proxy(cn, cn_account)
    assert hk.bic is not None
    bases: list[tuple[str, bytes]] = []
    for path in sorted(EXAMPLES.glob("*.xml")):
        text = path.read_text()
        for old, new in (
            ("HKDEMO0001", hk_account),
            ("CNDEMO0002", cn_account),
            ("+86-13800138000", f"+86-{number[3:]}"),
            ("+86-13700000000", f"+86-{number[3:]}"),
            ("HRBRHKH0XXX", hk.bic),
            ("HRBRHKH0", hk.bic[:8]),
            ("<MmbId>HARBOURHK</MmbId>", f"<MmbId>{hk.participant_id}</MmbId>"),
        ):
            text = text.replace(old, new)
        if path.name != "pacs008_southbound_account.xml":  # another bank's, and only in service hours
            bases.append((path.name, text.encode()))
    rng = random.Random(20261209)
    words = sorted({w for name in ("pacs.008.001.08", "head.001.001.02") for w in vocabulary(name)})
    seen: Counter[str] = Counter()
    failures: list[tuple[str, str, int, str]] = []
    for case in range(CASES):
        name, base = bases[case % len(bases)]
        if rng.random() < 0.15:
            what, body = _corrupt(base, rng)
        else:
            mutant = mutate(base, rng, words)
            what, body = mutant.what, mutant.xml
        response = await h.http.post(
            URL, content=body, headers={**hk.headers, "Content-Type": "application/xml"}
        )
        status = response.status_code
        kind = response.headers.get("content-type", "")
        if status >= 500:
            failures.append((name, what, status, response.text[:300]))
            continue
        if kind.startswith("application/xml"):
            report = pacs002.parse(response.content)  # raises unless schema-valid
            if XSD_DIR.is_dir():
                assert official_verdict(response.content) is True, (name, what)
            assert not any("could not be read" in text for text in iso_reasons(response)), (name, what)
            group = report.fito_fipmt_sts_rpt.orgnl_grp_inf_and_sts[0]
            statuses = [t.tx_sts for t in report.fito_fipmt_sts_rpt.tx_inf_and_sts]
            seen["refused" if group.grp_sts == "RJCT" else f"payment {statuses[0]}"] += 1
            assert status in (201, 202, 404, 422), (name, what, status)
        else:
            assert kind.startswith("application/problem+json"), (name, what, status, response.text)
            code = response.json()["code"]
            assert (status, code) in ((400, "ISO20022_MALFORMED"), (409, "IDEMPOTENCY_IN_PROGRESS")), code
            seen[code] += 1
    print(f"\n{CASES} mutated messages: {dict(seen)}; 5xx: {len(failures)}")
    assert failures == []
    assert sum(seen.values()) == CASES
    assert seen["refused"] > CASES // 4 and seen["ISO20022_MALFORMED"] > 0
    assert seen["payment ACSC"] + seen["payment RJCT"] > 0
