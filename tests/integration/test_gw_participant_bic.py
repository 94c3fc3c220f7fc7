"""A bank's BIC: registered with the bank, shown with it, unique, and in the demo world."""

from __future__ import annotations

from gw_support import Harness, bank_code, fresh_bic, problem

from fpslink.demo import DEMO_BANKS


async def test_a_bank_is_created_with_its_bic(harness: Harness) -> None:
    h = harness
    bic = fresh_bic("HK")
    code = bank_code("HK")
    created = await h.http.post(
        "/v1/participants",
        json={"participant_id": code, "name": "A bank", "system": "FPS", "bic": bic},
        headers=h.operator,
    )
    assert created.status_code == 201, created.text
    assert created.json()["bic"] == bic
    again = await h.http.post(
        "/v1/participants",
        json={"participant_id": bank_code("HK"), "name": "B bank", "system": "FPS", "bic": bic},
        headers=h.operator,
    )
    problem(again, 409, "BIC_IN_USE")
    for bad in ("HKBANK", "hkbkhkh0", "HKBKHKH0X", "HKBK12H0XXX"):
        response = await h.http.post(
            "/v1/participants",
            json={"participant_id": bank_code("HK"), "name": "C", "system": "FPS", "bic": bad},
            headers=h.operator,
        )
        problem(response, 422, "VALIDATION_ERROR")
    plain = await h.bank("FPS")
    assert plain.bic is None


def test_every_demo_bank_has_a_test_bic() -> None:
    bics = [bank.bic for bank in DEMO_BANKS]
    assert len(set(bics)) == len(bics)
    assert all(len(bic) == 11 and bic[7] == "0" for bic in bics)
