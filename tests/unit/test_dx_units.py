"""Pure parts of the developer-experience features: masking, webhook back-off and signatures, ISO codes.

Which targets a webhook may reach: tests/unit/test_webhook_policy.py.
"""

from __future__ import annotations

import json
import logging
import random

import pytest

from fpslink import logs
from fpslink.iso20022 import pacs002
from fpslink.webhooks import policy, signing


def test_phone_numbers_are_masked_in_any_written_form() -> None:
    assert logs.mask_phone("paid +8613800138000 ok") == "paid +86138****8000 ok"
    assert logs.mask_phone("to +86 138 0013 8000.") == "to +86138****8000."
    assert logs.mask_phone("+85291234567") == "+85291**4567"
    assert logs.mask_phone("payment 2026-06-22 id 1234") == "payment 2026-06-22 id 1234"


def test_names_are_masked_where_fields_carry_them() -> None:
    assert logs.mask_text("holder_name='CHAN Tai Man'") == "holder_name='CHAN T** M**'"
    assert logs.mask_text('{"holder_name": "张小明"}') == '{"holder_name": "张*明"}'


def test_json_log_lines_carry_ids_and_mask(capsys: pytest.CaptureFixture[str]) -> None:
    handler = logs.configure("json", "INFO")
    try:
        token = logs.request_id_var.set("req-1")
        logs.bind_payment("pay-1")
        logging.getLogger("fpslink.test").info("sent to %s", "+8613800138000", extra={"holder_name": "李华"})
        logs.request_id_var.reset(token)
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        logging.getLogger().removeHandler(handler)
        logs.payment_id_var.set(None)
    assert line["message"] == "sent to +86138****8000"
    assert (line["request_id"], line["payment_id"], line["holder_name"]) == ("req-1", "pay-1", "李*")
    assert line["level"] == "INFO" and line["logger"] == "fpslink.test"


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [policy.backoff_s(n, base_s=2, max_s=60, rng=rng) for n in range(1, 10)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(60, 2 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert policy.backoff_s(10_000, base_s=2, max_s=60) <= 60


def test_signatures_verify_and_expire() -> None:
    body = b'{"event":"payment.settled"}'
    header = signing.sign("whsec_x", 1_750_000_000, body)
    assert header.startswith("t=1750000000,v1=")
    assert signing.verify("whsec_x", header, body, now=1_750_000_100)
    assert not signing.verify("whsec_x", header, body, now=1_750_000_000 + 301)
    assert not signing.verify("whsec_y", header, body, now=1_750_000_000)
    assert not signing.verify("whsec_x", "v1=abc", body, now=1_750_000_000)


def test_reason_codes_map_to_iso() -> None:
    assert pacs002.iso_reason("AM04") == "AM04"
    assert pacs002.iso_reason("OUTSIDE_SERVICE_HOURS") == "TM01"
    assert pacs002.iso_reason("NOT_CROSS_BORDER") == "NARR"
    assert pacs002.iso_reason("SOMETHING_NEW") == "NARR"
