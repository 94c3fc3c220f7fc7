"""The gateway's IBPS client against answers it did not expect, with an in-process transport.

An answer outside the contract is as good as no answer: the client raises IbpsBadAnswer, an
IbpsUnavailable (the outcome is unknown, so the caller repeats or decides without it), never a
KeyError or a validation error that would surface as a 500.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest

from fpslink.ibps_client import (
    LEDGER_CHECK_TIMEOUT_S,
    IbpsBadAnswer,
    IbpsClient,
    IbpsRefused,
    IbpsUnavailable,
)
from ibps_wire.enums import TransferKind
from ibps_wire.schemas import BatchIn, Moved, PrepareIn, Verdict

PAYMENT = str(uuid.uuid4())
TRANSFER = {
    "seq": 1,
    "payment_id": PAYMENT,
    "kind": "CREDIT",
    "account_id": "CN1",
    "debit_account_id": "LINK",
    "credit_account_id": "CN1",
    "amount": "10.00",
    "currency": "CNY",
    "status": "PENDING",
    "reason_code": None,
    "created_at": "2026-12-07T04:30:00Z",
    "resolved_at": None,
}
PREPARED = {"outcome": "PREPARED", "reason_code": None, "reason": None, "transfer": TRANSFER}

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> IbpsClient:
    return IbpsClient(
        base_url="http://ibps.test",
        token="t",
        timeout_s=1.0,
        retries=0,
        transport=httpx.MockTransport(handler),
    )


def _answer(status: int, body: Any = None, *, content: bytes | None = None, **headers: str) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handle


async def _prepare(client: IbpsClient) -> Any:
    return await client.prepare(
        payment_id=PAYMENT, kind=TransferKind.CREDIT, account_id="CN1", amount_minor=1000
    )


async def test_a_prepare_sends_what_mock_ibps_accepts_and_reads_its_answer() -> None:
    sent: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json=PREPARED)

    outcome = await _prepare(_client(handle))
    assert outcome.prepared and outcome.transfer.amount_minor == 1000
    body = PrepareIn.model_validate_json(sent[0])
    assert (str(body.payment_id), body.amount_minor, body.currency) == (PAYMENT, 1000, "CNY")
    assert json.loads(sent[0])["amount"] == "10.00"


@pytest.mark.parametrize(
    "handler",
    [
        _answer(200, {k: v for k, v in PREPARED.items() if k != "outcome"}),
        _answer(200, {**PREPARED, "outcome": "MAYBE"}),
        _answer(200, {**PREPARED, "transfer": {**TRANSFER, "amount": 10}}),
        _answer(200, ["PREPARED"]),
        _answer(200, content=b"<html>proxy error</html>"),
    ],
    ids=["missing outcome", "unknown outcome", "amount as a number", "not an object", "not JSON"],
)
async def test_a_prepare_answered_outside_the_contract_is_an_unknown_outcome(handler: Handler) -> None:
    with pytest.raises(IbpsBadAnswer) as exc:
        await _prepare(_client(handler))
    assert isinstance(exc.value, IbpsUnavailable)
    assert "PrepareOut" in str(exc.value)


async def test_a_refusal_keeps_its_code_whatever_its_body() -> None:
    problem = {"type": "x", "title": "t", "status": 409, "detail": "voided", "code": "TRANSFER_VOIDED"}
    with pytest.raises(IbpsRefused) as exc:
        await _client(_answer(409, problem)).commit(PAYMENT)
    assert (exc.value.status, exc.value.code, exc.value.detail) == (409, "TRANSFER_VOIDED", "voided")
    for body in (["not", "an", "object"], "text"):
        with pytest.raises(IbpsRefused) as exc:
            await _client(_answer(422, body)).commit(PAYMENT)
        assert exc.value.code == "IBPS_ERROR"


def _batch_answer(*results: dict[str, Any]) -> Handler:
    return _answer(200, {"results": list(results)})


async def test_a_batch_answer_is_read_whole() -> None:
    client = _client(
        _batch_answer(
            {"payment_id": PAYMENT, "op": "prepare", "status": 200, "body": PREPARED},
            {"payment_id": "p2", "op": "commit", "status": 503, "body": {**TRANSFER, "status": "POSTED"}},
        )
    )
    items = [
        client.prepare_item(payment_id=PAYMENT, kind=TransferKind.CREDIT, account_id="CN1", amount_minor=1),
        client.finish_item(str(uuid.uuid4()), commit=True),
    ]
    first, second = await client.batch(items)
    assert isinstance(first.body, Verdict) and first.body.prepared and not first.unknown
    assert isinstance(second.body, Moved) and second.unknown


@pytest.mark.parametrize(
    "handler",
    [
        _batch_answer({"payment_id": PAYMENT, "op": "prepare", "status": "ok", "body": PREPARED}),
        _batch_answer(
            {"payment_id": PAYMENT, "op": "prepare", "status": 200, "body": {"outcome": "PREPARED"}}
        ),
        _batch_answer({"payment_id": PAYMENT, "op": "settle", "status": 200, "body": PREPARED}),
        _batch_answer(),  # no result for the item
        _answer(200, {"answers": []}),
    ],
    ids=["status not a number", "body of no known shape", "unknown op", "too few results", "no results"],
)
async def test_a_batch_answered_outside_the_contract_leaves_every_item_unknown(handler: Handler) -> None:
    client = _client(handler)
    item = client.prepare_item(payment_id=PAYMENT, kind=TransferKind.CREDIT, account_id="CN1", amount_minor=1)
    with pytest.raises(IbpsBadAnswer):
        await client.batch([item])


async def test_the_batch_request_is_one_mock_ibps_accepts() -> None:
    sent: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json={"results": []})

    client = _client(handle)
    with pytest.raises(IbpsBadAnswer):  # no results for one item
        await client.batch([client.finish_item(PAYMENT, commit=False)])
    assert str(BatchIn.model_validate_json(sent[0]).items[0].payment_id) == PAYMENT


async def test_a_look_up_answered_without_a_field_is_an_unknown_outcome() -> None:
    proxy = {
        "proxy_type": "MOBILE",
        "proxy_value": "+8613800000000",
        "account_id": "CN1",
        "participant_id": "B",
    }
    with pytest.raises(IbpsBadAnswer):
        await _client(_answer(200, proxy)).lookup_proxy("+8613800000000")  # no holder_name, no currency
    found = await _client(_answer(200, {**proxy, "holder_name": "Li", "currency": "CNY"})).lookup_proxy("+86")
    assert found is not None and found.holder_name == "Li"
    assert await _client(_answer(404, {"code": "BE23"})).lookup_proxy("+8613800000000") is None


async def test_an_account_answered_with_a_number_for_a_balance_is_refused() -> None:
    account = {"account_id": "CN1", "participant_id": "B", "holder_name": "Li", "currency": "CNY"}
    amounts = {"balance": "10.00", "held": "0.00", "available_balance": "10.00"}
    read = await _client(_answer(200, {**account, **amounts})).get_account("CN1")
    assert read is not None and read.balance_minor == 1000
    with pytest.raises(IbpsBadAnswer):
        await _client(_answer(200, {**account, **amounts, "balance": 10})).get_account("CN1")


@pytest.mark.parametrize(
    "headers",
    [{"Fpslink-Columns": "seq"}, {"Fpslink-Columns": "seq", "Fpslink-Count": "many"}],
    ids=["no count", "count not a number"],
)
async def test_a_statement_page_with_bad_headers_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(IbpsBadAnswer):
        await _client(_answer(200, content=b"", **headers)).statement_tsv_page(date(2026, 12, 7))


async def test_a_statement_page_reads_its_headers() -> None:
    headers = {"Fpslink-Columns": "seq,payment_id", "Fpslink-Count": "2", "Fpslink-Next-After": "9"}
    page = await _client(_answer(200, content=b"1\ta\n9\tb\n", **headers)).statement_tsv_page(
        date(2026, 12, 7)
    )
    assert (page.columns, page.count, page.next_after, page.total) == (("seq", "payment_id"), 2, 9, None)
    assert page.data == b"1\ta\n9\tb\n"


async def test_the_ledger_check_waits_for_a_large_ledger_a_payments_call_does_not() -> None:
    """Before: the check waited a payment's 2 s, three times, and a soak's 1.06 million payments
    ended with 'IBPS: ledger could not be read' instead of the check."""
    waits: dict[str, float] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        waits[request.url.path] = request.extensions["timeout"]["read"]
        if request.url.path.endswith("/ledger/check"):
            return httpx.Response(200, json={"ok": True, "violations": [], "balances": {}, "accounts": 3})
        return httpx.Response(200, json=PREPARED)

    client = _client(handle)
    try:
        assert (await client.ledger_check()).ok
        await _prepare(client)
    finally:
        await client.aclose()
    assert waits == {"/ibps/v1/ledger/check": LEDGER_CHECK_TIMEOUT_S, "/ibps/v1/transfers/prepare": 1.0}
    assert LEDGER_CHECK_TIMEOUT_S >= 60
