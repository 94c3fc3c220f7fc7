"""The wire models (``ibps_wire.schemas``): what mock_ibps accepts and answers, and what the gateway reads.

Both services use these models, so each test here checks one side against the other: a request the
gateway builds must be one mock_ibps accepts, and an answer mock_ibps builds must be one the gateway
reads back unchanged.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from fpslink.console import service as console
from fpslink.ibps_client import IbpsClient
from ibps_wire.enums import Operation, Outcome, Reason, TransferKind, TransferStatus
from ibps_wire.schemas import (
    AbortItemIn,
    AccountIn,
    AccountOut,
    BatchIn,
    BatchOut,
    BatchResultOut,
    BatchVerdicts,
    Moved,
    PrepareIn,
    PrepareItemIn,
    PrepareOut,
    Problem,
    TransferOut,
    Verdict,
    trusted,
)
from mock_ibps import schemas as mock_schemas
from mock_ibps.domain import Account, PrepareResult, Transfer
from mock_ibps.errors import TransferVoided

NOW = datetime(2026, 12, 7, 4, 30, tzinfo=UTC)


def _prepare(**changes: Any) -> dict[str, Any]:
    body = {
        "payment_id": str(uuid.uuid4()),
        "kind": "CREDIT",
        "account_id": "CN0001",
        "amount": "123.45",
        "currency": "CNY",
    }
    return {**body, **changes}


def _transfer(**changes: Any) -> Transfer:
    values: dict[str, Any] = {
        "seq": 42,
        "transfer_id": "t-1",
        "payment_id": str(uuid.uuid4()),
        "kind": TransferKind.DEBIT,
        "account_id": "CN0001",
        "debit_account_id": "CN0001",
        "credit_account_id": "LINK",
        "currency": "CNY",
        "amount_minor": 12_345,
        "status": TransferStatus.PENDING,
        "reason_code": None,
        "created_at": NOW,
        "resolved_at": None,
    }
    return Transfer(**{**values, **changes})


# requests ---------------------------------------------------------------------------------------


def test_an_amount_is_read_as_minor_units_and_written_back_as_text() -> None:
    body = PrepareIn.model_validate_json(json.dumps(_prepare(amount="100.5")))
    assert body.amount_minor == 10_050
    assert json.loads(body.model_dump_json())["amount"] == "100.50"


@pytest.mark.parametrize("amount", [100, 100.5, "100.505", "-1.00", "0", "1e2", "NaN", None, True])
def test_a_prepare_refuses_an_amount_that_is_not_a_positive_decimal_string(amount: object) -> None:
    with pytest.raises(ValidationError) as exc:
        PrepareIn.model_validate_json(json.dumps(_prepare(amount=amount)))
    assert exc.value.errors()[0]["loc"] == ("amount",)


def test_an_opening_balance_may_be_zero() -> None:
    body = {"account_id": "CN1", "participant_id": "BK1", "holder_name": "Li", "currency": "CNY"}
    assert AccountIn.model_validate({**body, "opening_balance": "0"}).opening_balance_minor == 0


@pytest.mark.parametrize("kind", ["OPENING", "credit", "REFUND"])
def test_a_prepare_is_a_credit_or_a_debit(kind: str) -> None:
    with pytest.raises(ValidationError):
        PrepareIn.model_validate(_prepare(kind=kind))


def test_a_request_refuses_unknown_fields_even_the_python_name_of_an_aliased_one() -> None:
    body = _prepare(amount_minor="1.00")
    del body["amount"]
    with pytest.raises(ValidationError):
        PrepareIn.model_validate(body)


def test_the_gateways_batch_is_one_mock_ibps_accepts() -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    items = [
        IbpsClient.prepare_item(payment_id=ids[0], kind=TransferKind.DEBIT, account_id="CN7", amount_minor=1),
        IbpsClient.finish_item(ids[1], commit=True),
        IbpsClient.finish_item(ids[2], commit=False),
    ]
    sent = BatchIn.model_construct(items=items).model_dump_json()
    received = BatchIn.model_validate_json(sent)
    assert [item.op for item in received.items] == [Operation.PREPARE, Operation.COMMIT, Operation.ABORT]
    assert [str(item.payment_id) for item in received.items] == ids
    first = received.items[0]
    assert isinstance(first, PrepareItemIn)
    assert (first.kind, first.account_id, first.amount_minor, first.currency) == (
        TransferKind.DEBIT,
        "CN7",
        1,
        "CNY",
    )
    assert json.loads(sent)["items"][0]["amount"] == "0.01"
    assert "references" not in json.loads(sent)["items"][0]  # a JSON payment's prepare is as it was


STRD = '<Strd xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"><AddtlRmtInf>x</AddtlRmtInf></Strd>'


def _references(**changes: Any) -> dict[str, Any]:
    return {
        "msg_id": "M-1",
        "instr_id": None,
        "end_to_end_id": "E-1",
        "tx_id": None,
        "uetr": str(uuid.uuid4()),
        "purpose_code": "FAMI",
        "purpose_proprietary": None,
        "unstructured": ["Tuition"],
        "structured": [STRD],
        "instructed_amount": "1000.00",
        "instructed_currency": "HKD",
        "exchange": {"source_currency": "HKD", "target_currency": "CNY", "rate": "0.917700"},
        **changes,
    }


@pytest.mark.parametrize(
    "change",
    [
        {"structured": ['<!DOCTYPE x [<!ENTITY e "e">]>' + STRD]},
        {"structured": [STRD.replace("<AddtlRmtInf>", "<!-- x --><AddtlRmtInf>")]},
        {"structured": ["<Document/>"]},
        {"structured": [STRD] * 11},
        {"unstructured": ["x" * 141]},
        {"instructed_amount": "1e3"},
        {"instructed_currency": "USD"},
        {"exchange": {"source_currency": "HKD", "target_currency": "CNY", "rate": "-1"}},
        {"purpose_code": "FAMILY"},
    ],
)
def test_references_refuse_what_the_statement_could_not_carry_safely(change: dict[str, Any]) -> None:
    """A Strd is one element with no DTD, comment or processing instruction (IBPS parses it), and
    every amount and rate is a plain decimal."""
    body = {**_prepare(), "references": _references(**change)}
    with pytest.raises(ValidationError):
        PrepareIn.model_validate(body)
    assert PrepareIn.model_validate({**_prepare(), "references": _references()}).references is not None


# answers ----------------------------------------------------------------------------------------


def test_mock_ibps_answers_what_the_gateway_reads_back() -> None:
    transfer = _transfer()
    sent = mock_schemas.transfer_out(transfer).model_dump_json()
    assert json.loads(sent)["amount"] == "123.45"
    read = TransferOut.model_validate_json(sent)
    assert (read.payment_id, read.kind, read.amount_minor, read.status, read.created_at) == (
        transfer.payment_id,
        TransferKind.DEBIT,
        12_345,
        TransferStatus.PENDING,
        NOW,
    )
    account = Account("CN1", "BK1", "Li", "CNY", balance_minor=10_000, held_minor=2_550)
    balances = AccountOut.model_validate_json(mock_schemas.account_out(account).model_dump_json())
    assert (balances.balance_minor, balances.held_minor, balances.available_minor) == (10_000, 2_550, 7_450)


def test_a_tombstone_has_no_kind_and_no_amount() -> None:
    tombstone = _transfer(kind=None, amount_minor=None, currency=None, status=TransferStatus.VOIDED)
    read = TransferOut.model_validate_json(mock_schemas.transfer_out(tombstone).model_dump_json())
    assert (read.kind, read.amount_minor, read.currency) == (None, None, None)


def test_a_batch_answer_carries_typed_bodies() -> None:
    refused = PrepareResult(Outcome.REFUSED, Reason.AM04, _transfer(status=TransferStatus.VOIDED))
    voided = TransferVoided("transfer is voided", payment_id="p-3")
    results = [
        mock_schemas.prepare_out(refused),
        mock_schemas.transfer_out(_transfer(status=TransferStatus.POSTED)),
        mock_schemas.problem(voided),
    ]
    wire = {
        "results": [
            {"payment_id": f"p-{i}", "op": "commit", "status": status, "body": body.model_dump(mode="json")}
            for i, (status, body) in enumerate(zip([200, 200, 409], results, strict=True), 1)
        ]
    }
    read = BatchOut.model_validate_json(json.dumps(wire)).results
    prepare, commit, error = (answer.body for answer in read)
    assert isinstance(prepare, PrepareOut) and not prepare.prepared and prepare.reason_code is Reason.AM04
    assert isinstance(commit, TransferOut) and commit.status is TransferStatus.POSTED
    assert isinstance(error, Problem) and (error.code, error.status) == ("TRANSFER_VOIDED", 409)
    assert error.model_extra == {"payment_id": "p-3"}
    assert [answer.unknown for answer in read] == [False, False, False]


def test_a_batch_writes_each_body_as_its_single_endpoint_writes_it() -> None:
    """Byte for byte: a result's body is the JSON of the model it is, whichever of the union it is."""
    refused = PrepareResult(Outcome.REFUSED, Reason.AM04, _transfer(status=TransferStatus.VOIDED))
    bodies = [
        mock_schemas.prepare_out(refused),
        mock_schemas.transfer_out(_transfer(status=TransferStatus.POSTED)),
        mock_schemas.transfer_out(_transfer(kind=None, amount_minor=None, currency=None)),
        mock_schemas.problem(TransferVoided("transfer is voided", payment_id="p-3")),
    ]
    results = [
        trusted(BatchResultOut, payment_id=f"p-{i}", op=Operation.COMMIT, status=200, body=body)
        for i, body in enumerate(bodies)
    ]
    wire = TypeAdapter(BatchOut).dump_json(BatchOut.model_construct(results=results), by_alias=True)
    written = [
        b'{"payment_id":"p-%d","op":"commit","status":200,"body":%s}' % (i, body.model_dump_json().encode())
        for i, body in enumerate(bodies)
    ]
    assert wire == b'{"results":[' + b",".join(written) + b"]}"


def test_an_answer_may_carry_fields_the_gateway_does_not_know_yet() -> None:
    sent = json.loads(mock_schemas.transfer_out(_transfer()).model_dump_json())
    assert TransferOut.model_validate({**sent, "channel": "IBPS2"}).seq == 42


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 12345},  # a number, not a decimal string
        {"amount": "123.456"},
        {"status": "SETTLED"},  # not a transfer status
        {"reason_code": "XX99"},
        {"seq": "forty-two"},
        {"created_at": "yesterday"},
    ],
)
def test_an_answer_with_a_wrong_type_is_refused(change: dict[str, Any]) -> None:
    sent = json.loads(mock_schemas.transfer_out(_transfer()).model_dump_json())
    with pytest.raises(ValidationError):
        TransferOut.model_validate_json(json.dumps({**sent, **change}))


@pytest.mark.parametrize("missing", ["seq", "status", "amount", "created_at"])
def test_an_answer_missing_a_field_is_refused(missing: str) -> None:
    sent = json.loads(mock_schemas.transfer_out(_transfer()).model_dump_json())
    del sent[missing]
    with pytest.raises(ValidationError):
        TransferOut.model_validate_json(json.dumps(sent))


def test_the_console_shows_what_ibps_answered_even_for_a_tombstone() -> None:
    posted = TransferOut.model_validate_json(mock_schemas.transfer_out(_transfer()).model_dump_json())
    assert console._ibps_ledger_side(posted)["amount"] == "123.45 CNY"
    tombstone = _transfer(kind=None, amount_minor=None, currency=None, status=TransferStatus.VOIDED)
    read = TransferOut.model_validate_json(mock_schemas.transfer_out(tombstone).model_dump_json())
    assert console._ibps_ledger_side(read) == {
        "kind": None,
        "status": "VOIDED",
        "debit_account_id": "CN0001",
        "credit_account_id": "LINK",
        "amount": "none",
    }


def test_trusted_builds_what_model_construct_builds_and_refuses_a_wrong_field_name() -> None:
    values: dict[str, Any] = {
        "op": Operation.ABORT,
        "payment_id": uuid.uuid4(),
    }
    built = trusted(AbortItemIn, **values)
    assert built == AbortItemIn.model_construct(**values)
    assert built.model_dump_json() == AbortItemIn.model_construct(**values).model_dump_json()
    with pytest.raises(TypeError):
        trusted(AbortItemIn, op=Operation.ABORT)  # payment_id missing
    with pytest.raises(TypeError):  # "amount" is the name on the wire, not the field's
        trusted(PrepareItemIn, **_prepare(op=Operation.PREPARE))


def test_settlement_reads_every_batch_answer_as_its_verdict() -> None:
    """`BatchVerdicts` is a view of `BatchOut`: what mock_ibps answers must read into it, each body
    as the verdict the full model carries (the view skips the transfer, never the decision)."""
    refused = PrepareResult(Outcome.REFUSED, Reason.AM04, _transfer(status=TransferStatus.VOIDED))
    prepared = PrepareResult(Outcome.PREPARED, None, _transfer(status=TransferStatus.PENDING))
    results = [
        (201, mock_schemas.prepare_out(prepared)),
        (200, mock_schemas.prepare_out(refused)),
        (200, mock_schemas.transfer_out(_transfer(status=TransferStatus.POSTED))),
        (409, mock_schemas.problem(TransferVoided("transfer is voided", payment_id="p-4"))),
        (503, mock_schemas.problem(TransferVoided("try again", payment_id="p-5"))),
    ]
    wire = json.dumps(
        {
            "results": [
                {
                    "payment_id": f"p-{i}",
                    "op": "prepare",
                    "status": status,
                    "body": body.model_dump(mode="json"),
                }
                for i, (status, body) in enumerate(results, 1)
            ]
        }
    )
    full = BatchOut.model_validate_json(wire).results
    view = BatchVerdicts.model_validate_json(wire).results
    assert [v.status for v in view] == [f.status for f in full]
    assert [v.unknown for v in view] == [f.unknown for f in full] == [False, False, False, False, True]
    ok, no, moved, voided, unknown = (v.body for v in view)
    assert isinstance(ok, Verdict) and ok.prepared
    assert isinstance(no, Verdict) and not no.prepared and no.reason_code is Reason.AM04
    assert no.reason == "insufficient available funds"
    assert isinstance(moved, Moved) and moved.status is TransferStatus.POSTED
    assert isinstance(voided, Problem) and voided.code == "TRANSFER_VOIDED"
    assert isinstance(unknown, Problem)
