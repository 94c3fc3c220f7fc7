"""No input answers 5xx: seeded mutations of real-shaped messages, sent to the gateway over HTTP.

Every sample message (bare, and in each envelope), pacs.008 and pacs.028, and messages of several
transactions made of them, are mutated in the ways tests/iso20022_corpus.py describes, and their
bytes are also cut short and corrupted. Each answer must be a schema-valid pacs.002 (settled,
rejected, paid in part, found, not found or refused, and never refused because the model could not
hold a checked message), or problem+json for what is not a message (400) or a key still in use
(409); never a 5xx. The runs are bounded: FPSLINK_ISO20022_FUZZ_CASES cases
(400 by default) of pacs.008 and half as many of pacs.028.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import httpx
from gw_support import Harness, IsoWorld, fresh_uetr, iso_reasons, iso_world, several
from iso20022_corpus import XSD_DIR, mutate, official_verdict, vocabulary

from fpslink.iso20022 import pacs002

EXAMPLES = Path(__file__).parent / "iso20022_examples"
CASES = int(os.environ.get("FPSLINK_ISO20022_FUZZ_CASES", "400"))
URL = "/v1/iso20022/pacs.008"
STATUS_URL = "/v1/iso20022/pacs.028"
XML = {"Content-Type": "application/xml"}


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


async def _world(h: Harness) -> tuple[IsoWorld, dict[str, str]]:
    """The samples' world, with the unknown number made this payee's too, so that mutants pay."""
    world = await iso_world(h, "1000000.00")
    return world, {"+86-13700000000": world.number}


def _fill(world: IsoWorld, path: Path, replace: dict[str, str]) -> str:
    text = path.read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return world.fill(text)


def _variant(base: bytes, rng: random.Random, words: list[str]) -> tuple[str, bytes]:
    if rng.random() < 0.15:
        return _corrupt(base, rng)
    mutant = mutate(base, rng, words)
    return mutant.what, mutant.xml


def _judge(
    response: httpx.Response, what: tuple[str, str], statuses: tuple[int, ...], seen: Counter[str]
) -> bool:
    """Count an answer (a schema-valid pacs.002, or problem+json for what is not a message); False
    for a 5xx."""
    status = response.status_code
    kind = response.headers.get("content-type", "")
    if status >= 500:
        return False
    if kind.startswith("application/xml"):
        report = pacs002.parse(response.content).fito_fipmt_sts_rpt  # raises unless schema-valid
        if XSD_DIR.is_dir():
            assert official_verdict(response.content) is True, what
        assert not any("could not be read" in text for text in iso_reasons(response)), what
        group = report.orgnl_grp_inf_and_sts[0]
        tx_statuses = [t.tx_sts for t in report.tx_inf_and_sts]
        if group.grp_sts == "RJCT":
            reasons = [r.rsn.cd for t in report.tx_inf_and_sts for r in t.sts_rsn_inf if r.rsn]
            seen["not found" if reasons == ["AG09"] else "refused"] += 1
        elif len(tx_statuses) > 1:
            seen[f"batch {group.grp_sts}"] += 1
        else:
            seen[f"payment {tx_statuses[0]}"] += 1
        assert status in statuses, (what, status)
    else:
        assert kind.startswith("application/problem+json"), (what, status, response.text)
        code = response.json()["code"]
        assert (status, code) in ((400, "ISO20022_MALFORMED"), (409, "IDEMPOTENCY_IN_PROGRESS")), code
        seen[code] += 1
    return True


async def test_no_mutated_message_answers_5xx(harness: Harness) -> None:
    h = harness
    world, extra = await _world(h)
    bases = [
        (path.name, _fill(world, path, extra))
        for path in sorted(EXAMPLES.glob("pacs008_*.xml"))
        if path.name != "pacs008_southbound_account.xml"  # another bank's, and only in service hours
    ]
    for name, smaller, unknown in (
        ("pacs008_northbound_proxy.xml", ">1000.00<", world.number),
        ("pacs008_v08_cbpr_envelope.xml", ">250.00<", world.cn_account),
    ):
        # several transactions: the sample's, a smaller one, and one to an unknown payee
        text = several(
            _fill(world, EXAMPLES / name, {}), {}, {smaller: ">12.34<"}, {unknown: "+86-13700000001"}
        )
        bases.append((f"3 transactions of {name}", text))
    rng = random.Random(20261209)
    words = sorted({w for name in ("pacs.008.001.08", "head.001.001.02") for w in vocabulary(name)})
    seen: Counter[str] = Counter()
    failures: list[tuple[str, str]] = []
    for case in range(CASES):
        name, text = bases[case % len(bases)]
        base = fresh_uetr(text).encode()  # a UETR of its own, so that the mutant is judged, not DUPL
        what, body = _variant(base, rng, words)
        response = await h.http.post(URL, content=body, headers={**world.hk.headers, **XML})
        if not _judge(response, (name, what), (201, 202, 404, 422), seen):
            failures.append((name, what))
    print(f"\n{CASES} mutated messages: {dict(seen)}; 5xx: {len(failures)}")
    assert failures == []
    assert sum(seen.values()) == CASES
    assert seen["refused"] > CASES // 4 and seen["ISO20022_MALFORMED"] > 0
    assert seen["payment ACSC"] + seen["payment RJCT"] > 0
    assert seen["batch PART"] > 0  # the messages of several transactions were paid in part, mutated


async def test_no_mutated_status_request_answers_5xx(harness: Harness) -> None:
    """The pacs.028 samples ask about payments this bank made, so that mutants find them, miss them
    (AG09), or are refused."""
    h = harness
    world, extra = await _world(h)
    paid: dict[str, str] = {}
    for name in (
        "pacs008_northbound_proxy.xml",
        "pacs008_v08_cbpr_envelope.xml",
        "pacs008_v10_mojaloop_style.xml",
    ):
        response = await h.http.post(
            URL, content=_fill(world, EXAMPLES / name, extra).encode(), headers={**world.hk.headers, **XML}
        )
        assert response.status_code == 201, response.text
        paid[name] = response.headers["location"].rsplit("/", 1)[1]
    extra["3c5f1e2a8b7d4c6e9a102f4b6d8e0a13"] = paid["pacs008_northbound_proxy.xml"].replace("-", "")
    bases = [
        (path.name, _fill(world, path, extra).encode()) for path in sorted(EXAMPLES.glob("pacs028_*.xml"))
    ]
    rng = random.Random(20261216)
    words = sorted({w for name in ("pacs.028.001.03", "head.001.001.02") for w in vocabulary(name)})
    seen: Counter[str] = Counter()
    failures: list[tuple[str, str]] = []
    cases = max(CASES // 2, len(bases))
    for case in range(cases):
        name, base = bases[case % len(bases)]
        what, body = _variant(base, rng, words)
        response = await h.http.post(STATUS_URL, content=body, headers={**world.hk.headers, **XML})
        if not _judge(response, (name, what), (200, 404, 422), seen):
            failures.append((name, what))
    print(f"\n{cases} mutated status requests: {dict(seen)}; 5xx: {len(failures)}")
    assert failures == []
    assert sum(seen.values()) == cases
    assert seen["payment ACSC"] > 0 and seen["not found"] > 0 and seen["refused"] > cases // 4
    assert seen["ISO20022_MALFORMED"] > 0
