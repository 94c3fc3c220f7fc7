"""Reading a pacs.008 as banks send it, checking its header, and the answers the gateway writes, which
must validate against the official XSDs (pacs.002.001.10, head.001.001.02 and .04, camt.053.001.08)."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from iso20022_corpus import EXAMPLES, XSD_DIR, official_verdict, requires_xsd

from fpslink.fx.domain import AmountType
from fpslink.iso20022 import apphdr, inbound, pacs002, pacs008, pacs028, schema
from fpslink.iso20022.examples import PACS008_NORTHBOUND
from fpslink.iso20022.inbound import Envelope, Original, Reason, Refused, Transaction
from fpslink.money import Currency
from fpslink.payments.domain import Payment
from fpslink.vocabulary import Direction, Purpose, State
from mock_ibps import camt053

T0 = datetime(2026, 6, 22, 4, 0, 0, 52_345, tzinfo=UTC)
CALLER = apphdr.Party("HARBOURHK", "HRBRHKH0XXX")
LINK = apphdr.Party("FPSLINK", "FPSLHKH0XXX")
TO = pacs002.Addressing(caller=CALLER, link=LINK)
ROOT = Path(__file__).resolve().parents[2]


def _sample(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def _payment(state: State, **changes: object) -> Payment:
    payment = Payment(
        payment_id="0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11",
        participant_id="HARBOURHK",
        creditor_participant_id="PEARLCN",
        direction=Direction.NORTHBOUND,
        state=state,
        debtor_account_id="HKDEMO0001",
        creditor_account_id="CNDEMO0001",
        creditor_proxy="+8613800138000",
        creditor_masked_name="张*明",
        source_minor=100_000,
        source_currency=Currency.HKD,
        target_minor=91_770,
        target_currency=Currency.CNY,
        amount_type=AmountType.SEND,
        mid_rate=Decimal("0.920000"),
        rate=Decimal("0.917700"),
        spread_bps=Decimal("25"),
        quote_id=None,
        purpose="FAMILY_SUPPORT",
        remittance_info=None,
        end_to_end_id="INV-2026-0622-0001",
        reason_code=None,
        reason=None,
        business_date=date(2026, 6, 22),
        limit_minor=100_000,
        limit_currency=Currency.HKD,
        attempts=0,
        created_at=T0,
        updated_at=T0,
        decided_at=T0,
        settled_at=T0 if state is State.SETTLED else None,
    )
    return replace(payment, **changes)  # type: ignore[arg-type]


def _answers() -> dict[str, bytes]:
    """One of every kind of answer the gateway writes to a pacs.008."""
    bare = pacs008.parse(PACS008_NORTHBOUND.encode())
    enveloped = {
        n: pacs008.parse(_sample(n)) for n in ("pacs008_v08_cbpr_envelope.xml", "pacs008_v12_busmsgenvlp.xml")
    }
    rejected = _payment(
        State.REJECTED, reason_code="BE23", reason="no account is registered for +86 " + "x" * 300
    )
    answers = {
        "settled": pacs002.render(bare, _payment(State.SETTLED)),
        "rejected": pacs002.render(bare, rejected),
        "pending": pacs002.render(bare, _payment(State.ACCEPTED, decided_at=None)),
        "rejected, gateway code": pacs002.render(bare, replace(rejected, reason_code="NOT_CROSS_BORDER")),
    }
    for name, transfer in enveloped.items():
        answers[f"settled in {name}"] = pacs002.render(transfer, _payment(State.SETTLED), addressing=TO)
    refusals = {
        "schema": Refused(
            [Reason("FF01", f"finding {i} " + "y" * 200) for i in range(20)], original=Original()
        ),
        "transaction": Refused(
            [Reason("AC02", "ACCOUNT_NOT_FOUND: debtor account HKX not found")],
            original=Original("MSG-1", "pacs.008.001.09"),
            transaction=Transaction("I-1", None, "T-1", "8a562c67-ca16-48ba-b074-65581be6f011"),
            status=404,
        ),
    }
    for name, refused in refusals.items():
        answers[f"refused: {name}"] = pacs002.render_refusal(refused, at=T0, addressing=TO)
    for head in schema.HEAD_VERSIONS:
        envelope = Envelope("{urn:swift:xsd:envelope}Envelope", f"head.001.001.{head}")
        refused = Refused(
            [Reason("FF01", "AppHdr: missing element BizMsgIdr")], original=Original(envelope=envelope)
        )
        answers[f"refused, unreadable head.001.001.{head}"] = pacs002.render_refusal(
            refused, at=T0, addressing=TO
        )
    header = inbound.read(_sample("pacs008_v08_cbpr_envelope.xml")).original
    refused = Refused([Reason("AG08", "AppHdr/Fr names another bank")], original=header)
    answers["refused in RequestPayload"] = pacs002.render_refusal(refused, at=T0, addressing=TO)
    # a message of several transactions: settled, pending and refused ones, bare and in an envelope
    batch_statuses = [
        pacs002.payment_status(bare, _payment(State.SETTLED)),
        pacs002.payment_status(bare, _payment(State.ACCEPTED, decided_at=None)),
        pacs002.refused_status(refusals["transaction"]),
    ]
    for name, original in (("bare", bare.original), ("in an envelope", header)):
        assert original is not None
        answers[f"batch, {name}"] = pacs002.render_batch(
            original, batch_statuses, message_id=pacs002.batch_report_id(["p-1", "p-2"]), at=T0, addressing=TO
        )
    # a status request's answers: the payment's report, and "never received"
    for name in ("pacs028_v03_by_uetr.xml", "pacs028_v03_cbpr_envelope.xml"):
        request = inbound.read(_sample(name), inbound.PACS028)
        asked = pacs028.query(request, caller=CALLER, link=LINK)
        answers[f"status: {name}"] = pacs002.render_status(
            bare,
            _payment(State.ACCEPTED, decided_at=None),
            status_id=asked.status_request_id,
            envelope=request.original.envelope,
            at=T0,
            addressing=TO,
        )
        answers[f"status not found: {name}"] = pacs002.render_refusal(
            pacs028.not_found(asked), at=T0, addressing=TO
        )
    return answers


@pytest.mark.parametrize(("kind", "xml"), sorted(_answers().items()))
def test_every_answer_passes_the_derived_check(kind: str, xml: bytes) -> None:
    report = pacs002.parse(xml)
    assert report.fito_fipmt_sts_rpt.grp_hdr.msg_id.startswith("FPSLINK")
    root = ET.fromstring(xml)
    if not root.tag.endswith("}Document"):
        header = root[0]
        name = header.tag[1:].split("}")[0].removeprefix(schema.NAMESPACE_PREFIX)
        assert schema.schema_of(name).validate(ET.fromstring(ET.tostring(header))) == []


@requires_xsd
@pytest.mark.parametrize(("kind", "xml"), sorted(_answers().items()))
def test_every_answer_validates_against_the_official_xsd(kind: str, xml: bytes) -> None:
    verdict = official_verdict(xml)
    if verdict == "UNKNOWN":  # head.001.001.03 has no XSD in ../shared
        assert "head.001.001.03" in kind
        return
    assert verdict is True


@requires_xsd
def test_the_camt053_statement_validates_against_the_official_xsd() -> None:
    statement = (ROOT / "tests" / "mock_ibps" / "camt053_example.xml").read_bytes()
    assert official_verdict(statement) is True


def test_a_refusal_report_says_why_at_group_or_transaction_level() -> None:
    group = pacs002.parse(_answers()["refused: schema"]).fito_fipmt_sts_rpt
    (original,) = group.orgnl_grp_inf_and_sts
    assert (original.orgnl_msg_id, original.orgnl_msg_nm_id) == ("NOTPROVIDED", "NOTPROVIDED")
    assert original.grp_sts == "RJCT"
    assert len(original.sts_rsn_inf) == 20 and group.tx_inf_and_sts == []
    for number, reason in enumerate(original.sts_rsn_inf):
        assert reason.rsn.cd == "FF01" and all(len(piece) <= 105 for piece in reason.addtl_inf)
        assert "".join(reason.addtl_inf) == f"finding {number} " + "y" * 200
    tx_level = pacs002.parse(_answers()["refused: transaction"]).fito_fipmt_sts_rpt
    assert tx_level.orgnl_grp_inf_and_sts[0].sts_rsn_inf == []
    (tx,) = tx_level.tx_inf_and_sts
    assert (tx.orgnl_instr_id, tx.orgnl_end_to_end_id, tx.orgnl_tx_id, tx.tx_sts) == (
        "I-1",
        "NOTPROVIDED",
        "T-1",
        "RJCT",
    )
    assert tx.sts_rsn_inf[0].addtl_inf == ["ACCOUNT_NOT_FOUND: debtor account HKX not found"]


def test_the_answers_header_swaps_the_requests_and_points_back_to_it() -> None:
    root = ET.fromstring(_answers()["settled in pacs008_v08_cbpr_envelope.xml"])
    ns = "{urn:iso:std:iso:20022:tech:xsd:head.001.001.02}"
    header = root[0]
    assert root.tag == "{urn:swift:xsd:envelope}Envelope"

    def text(path: str) -> str | None:
        found = header.find("/".join(ns + p for p in path.split("/")))
        return None if found is None else found.text

    assert text("Fr/FIId/FinInstnId/BICFI") == "FPSLHKH0XXX"
    assert text("To/FIId/FinInstnId/BICFI") == "HRBRHKH0XXX"
    assert text("MsgDefIdr") == "pacs.002.001.10"
    assert text("BizMsgIdr") == "FPSLINK0b7f7c3e3c0a4f5e8a535b7d7d5a"
    assert text("BizSvc") == "swift.cbprplus.02"
    assert text("CreDt") == "2026-06-22T04:00:00.052Z"
    assert (text("Rltd/BizMsgIdr"), text("Rltd/MsgDefIdr")) == ("HRBR2026062200011", "pacs.008.001.08")
    assert text("Rltd/Fr/FIId/FinInstnId/BICFI") == "HRBRHKH0XXX"


# reading ------------------------------------------------------------------------------------------

DOCUMENT = re.search(rb"<Document.*</Document>", PACS008_NORTHBOUND.encode(), re.S).group(0)  # type: ignore[union-attr]
HEADER = re.search(rb"<AppHdr.*</AppHdr>", _sample("pacs008_v08_cbpr_envelope.xml"), re.S).group(0)  # type: ignore[union-attr]
HEADER = HEADER.replace(b"HRBR2026062200011", b"HARBOURHK20260622-000001")


@pytest.mark.parametrize("name", inbound.ENVELOPE_NAMES)
@pytest.mark.parametrize("namespace", inbound.ENVELOPE_NAMESPACES)
def test_every_envelope_form_is_read(name: str, namespace: str | None) -> None:
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    message = inbound.read(
        f"<{name}{xmlns}>\n  ".encode() + HEADER + b"\n  " + DOCUMENT + f"</{name}>".encode()
    )
    assert message.name == "pacs.008.001.08" and message.header is not None
    assert message.original.envelope is not None
    assert message.original.envelope.tag == (f"{{{namespace}}}{name}" if namespace else name)
    apphdr.check(message, caller=CALLER, link=LINK)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            b"<Envelope>" + DOCUMENT + b"</Envelope>",
            "an envelope holds AppHdr and then Document, found Document",
        ),
        (b"<Envelope>" + DOCUMENT + HEADER + b"</Envelope>", "found Document, AppHdr"),
        (b"<Envelope>" + HEADER + DOCUMENT + b"<Extra/></Envelope>", "found AppHdr, Document, Extra"),
        (b'<Envelope id="1">' + HEADER + DOCUMENT + b"</Envelope>", "attribute id is not allowed"),
        (b"<Envelope>" + HEADER + b"text" + DOCUMENT + b"</Envelope>", "text 'text' between elements"),
        (
            b'<Envelope xmlns="urn:example">' + HEADER + DOCUMENT + b"</Envelope>",
            "the root element is Envelope",
        ),
        (b"<Wrapper>" + HEADER + DOCUMENT + b"</Wrapper>", "the root element is Wrapper"),
        (
            DOCUMENT.replace(b"<Document", b"<Envelope").replace(b"</Document>", b"</Envelope>"),
            "Envelope (namespace",
        ),
        (
            DOCUMENT.replace(b"pacs.008.001.08", b"pacs.008.001.07"),
            "pacs.008.001.07 is not supported; send one of",
        ),
        (
            DOCUMENT.replace(b"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08", b"urn:example"),
            "namespace urn:example",
        ),
        (b"<Document/>", "the Document is in namespace none"),
    ],
)
def test_what_is_not_a_pacs008_in_a_known_form_is_refused_ff01(body: bytes, says: str) -> None:
    with pytest.raises(Refused) as refused:
        inbound.read(body)
    assert refused.value.code == "FF01"
    assert says in refused.value.reasons[0].text, refused.value.reasons


def test_a_refusal_echoes_what_could_be_read() -> None:
    with pytest.raises(Refused) as refused:
        inbound.read(DOCUMENT.replace(b"<ChrgBr>SLEV</ChrgBr>", b""))
    assert refused.value.original == Original("HARBOURHK20260622-000001", "pacs.008.001.08")
    with pytest.raises(Refused) as refused:
        inbound.read(DOCUMENT.replace(b"<MsgId>HARBOURHK", b"<MsgId><b/>HARBOURHK"))
    assert refused.value.original.msg_id == "NOTPROVIDED"
    deep = DOCUMENT.replace(
        b"</CdtTrfTxInf>",
        b"<SplmtryData><Envlp>" + b"<x>" * 60 + b"</x>" * 60 + b"</Envlp></SplmtryData></CdtTrfTxInf>",
    )
    with pytest.raises(Refused) as refused:
        inbound.read(deep)
    assert refused.value.reasons == [Reason("FF01", "elements are nested deeper than 48 levels")]
    assert refused.value.original.msg_id == "HARBOURHK20260622-000001"


def test_the_links_rules_refuse_with_the_code_that_fits() -> None:
    def code(old: bytes, new: bytes) -> str:
        with pytest.raises(Refused) as refused:
            pacs008.parse(DOCUMENT.replace(old, new, 1))
        return refused.value.code

    assert code(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>2</NbOfTxs>") == "AM18"
    assert code(b'Ccy="HKD">1000.00', b'Ccy="EUR">1000.00') == "AM03"
    assert code(b">1000.00<", b">1000.005<") == "CH20"
    assert code(b">1000.00<", b">0<") == "AM01"
    assert code(b">1000.00<", b">9999999999999.99<") == "AM02"
    assert code(b"<Id>HKDEMO0001</Id>", b"<Id>NOTPROVIDED</Id>") == "AC02"
    assert code(b"<Cd>TELE</Cd>", b"<Cd>EMAL</Cd>") == "BE23"
    assert code(b"<EndToEndId>INV-2026-0622-0001", b"<EndToEndId>INV 1") == "FF08"
    assert (
        code(
            b"<Ustrd>Tuition for June</Ustrd>",
            b"<Ustrd>" + b"x" * 100 + b"</Ustrd><Ustrd>" + b"y" * 40 + b"</Ustrd>",
        )
        == "CH15"
    )


def _batch(*transactions: bytes) -> bytes:
    """The /docs example carrying these transactions (its own, changed: `old` -> `new` pairs)."""
    tx = re.search(rb"<CdtTrfTxInf>.*</CdtTrfTxInf>", DOCUMENT, re.S).group(0)  # type: ignore[union-attr]
    count = f"<NbOfTxs>{len(transactions)}</NbOfTxs>".encode()
    return DOCUMENT.replace(b"<NbOfTxs>1</NbOfTxs>", count).replace(tx, b"".join(transactions))


def test_each_transaction_of_a_message_is_read_on_its_own() -> None:
    """A message with two transactions was refused whole; now each is a payment, or refused alone."""
    tx = re.search(rb"<CdtTrfTxInf>.*</CdtTrfTxInf>", DOCUMENT, re.S).group(0)  # type: ignore[union-attr]
    second = tx.replace(b"INV-2026-0622-0001", b"INV-2026-0622-0002").replace(b">1000.00<", b">20.00<")
    third = tx.replace(b"<Prtry>FAMILY_SUPPORT</Prtry>", b"<Prtry>LOTTERY</Prtry>")
    found = pacs008.credit_transfers(inbound.read(_batch(tx, second, third)))
    first, paid, refused = found
    assert isinstance(first, pacs008.CreditTransfer) and isinstance(paid, pacs008.CreditTransfer)
    assert (paid.end_to_end_id, str(paid.command.amount)) == ("INV-2026-0622-0002", "20.00")
    assert paid.msg_id == first.msg_id == "HARBOURHK20260622-000001"
    assert isinstance(refused, Refused) and refused.code == "FF07"
    assert refused.transaction is not None and refused.transaction.end_to_end_id == "INV-2026-0622-0001"
    with pytest.raises(Refused) as too_many:
        pacs008.credit_transfers(inbound.read(_batch(tx, second, tx)), max_transactions=2)
    assert too_many.value.code == "AM18" and too_many.value.transaction is None
    assert "at most 2 in one message" in too_many.value.reasons[0].text


def test_nbotxs_01_and_a_missing_purpose_are_taken() -> None:
    taken = pacs008.parse(
        DOCUMENT.replace(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>01</NbOfTxs>").replace(
            b"<Purp>\n        <Prtry>FAMILY_SUPPORT</Prtry>\n      </Purp>\n", b""
        ),
        default_purpose=Purpose.GIFT,
    )
    assert taken.command.purpose is Purpose.GIFT
    assert taken.uetr == "8a562c67-ca16-48ba-b074-65581be6f011"


def test_the_header_must_name_the_caller_the_link_and_the_document() -> None:
    message = inbound.read(_sample("pacs008_v08_cbpr_envelope.xml"))
    apphdr.check(message, caller=CALLER, link=LINK)
    apphdr.check(message, caller=apphdr.Party("HARBOURHK", "HRBRHKH0"), link=apphdr.Party("X", "FPSLHKH0"))
    with pytest.raises(Refused) as refused:
        apphdr.check(message, caller=apphdr.Party("OTHER", "OTHRHKH0XXX"), link=apphdr.Party("X", None))
    assert [r.code for r in refused.value.reasons] == ["AG08", "AGNT"]
    assert refused.value.reasons[0].text == (
        "AppHdr/Fr names BICFI HRBRHKH0XXX, not your bank (BICFI OTHRHKH0XXX or MmbId OTHER)"
    )
    member = inbound.read(
        _sample("pacs008_v09_hvps_requestpayload.xml").replace(
            b"HVPS-20260622-000012</BizMsgIdr>", b"X</BizMsgIdr>"
        )
    )
    with pytest.raises(Refused) as refused:
        apphdr.check(member, caller=apphdr.Party("HARBOURHK", None), link=LINK)
    assert refused.value.reasons == [
        Reason("CH16", "AppHdr/BizMsgIdr X is not GrpHdr/MsgId HVPS-20260622-000012")
    ]


def test_bics_compare_as_institutions() -> None:
    assert apphdr.same_bic("HRBRHKH0", "HRBRHKH0XXX") and apphdr.same_bic("hrbrhkh0xxx", "HRBRHKH0")
    assert not apphdr.same_bic("HRBRHKH0", "HRBRHKH0001")


def test_what_a_transaction_was_sent_with_is_read_as_sent() -> None:
    """Structured remittance was dropped and the Ustrd lines kept only joined; now each is kept."""
    sample = _sample("pacs008_v11_structured_remittance.xml").replace(
        b"<RmtInf>", b"<RmtInf><Ustrd> Invoice INV-2026-0345</Ustrd><Ustrd>June </Ustrd>"
    )
    transfer = pacs008.parse(sample)
    details = transfer.command.details
    assert details is not None
    assert (details.message_name, details.msg_id, details.uetr) == (
        "pacs.008.001.11",
        "HARBOURHK20260622-000015",
        "0b1e5d3f-7a29-4c6e-8f41-3d2c9a6b5e70",
    )
    assert (details.purpose_code, details.purpose_proprietary, details.instructed_amount) == (
        "IVPT",
        None,
        None,
    )
    assert details.unstructured == (" Invoice INV-2026-0345", "June ")  # as sent; the payment's is joined
    assert transfer.command.remittance_info == "Invoice INV-2026-0345 June"
    (strd,) = details.structured
    namespace = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.11"
    assert strd.startswith(f'<Strd xmlns="{namespace}"><RfrdDocInf><Tp><CdOrPrtry><Cd>CINV</Cd>')
    root = ET.fromstring(strd)  # the same element as sent, in its message's namespace
    assert root.findtext(f"{{{namespace}}}CdtrRefInf/{{{namespace}}}Ref") == "RF18539007547034"
    assert root.find(f"{{{namespace}}}RfrdDocAmt/{{{namespace}}}DuePyblAmt").get("Ccy") == "HKD"  # type: ignore[union-attr]
    many = sample.replace(b"<Strd>", b"<Strd><AddtlRmtInf>x</AddtlRmtInf></Strd>" * 10 + b"<Strd>", 1)
    with pytest.raises(Refused) as refused:
        pacs008.parse(many)
    assert refused.value.code == "CH15" and "at most 10 Strd" in refused.value.reasons[0].text


def _statement_with(references: list[camt053.EntryReferences]) -> bytes:
    """A camt.053 page with one credit per references given (a payment sent as ISO 20022)."""
    entries = [
        camt053.LedgerEntry(
            seq=n,
            payment_id=str(uuid.UUID(int=n)),
            kind="CREDIT",
            debit_account_id="IBPS-LINK-CNY",
            credit_account_id="CN0001",
            currency="CNY",
            amount_minor=91_770,
            status="POSTED",
            resolved_at=T0,
            references=found,
        )
        for n, found in enumerate(references, start=1)
    ]
    page = camt053.StatementPage(
        business_date=date(2026, 6, 22),
        accounts=[camt053.StatementAccount("CN0001", "CNY", "ZHANG Xiao Ming")],
        totals={
            "CN0001": camt053.AccountTotals(credit_count=len(entries), credit_minor=91_770 * len(entries))
        },
        entries=entries,
        page_number=1,
        next_after=None,
        created_at=T0,
    )
    return camt053.render(page)


def test_the_statement_carries_a_strd_where_its_version_can_hold_it() -> None:
    """A pacs.008.001.08-.11 Strd fits camt.053.001.08's; a .12 one with a dated-and-typed RltdDt does
    not, and is left out of the statement (the payment keeps it) rather than written wrong."""
    old = (
        '<Strd xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">'
        "<CdtrRefInf><Ref>RF18</Ref></CdtrRefInf></Strd>"
    )
    new = (
        '<Strd xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.12"><RfrdDocInf><Nb>INV-1</Nb>'
        "<RltdDt><Tp><Cd>INDA</Cd></Tp><Dt>2026-06-01</Dt></RltdDt></RfrdDocInf></Strd>"
    )
    sent = camt053.EntryReferences(
        msg_id="M-1",
        instr_id=None,
        end_to_end_id="E-1",
        tx_id="T-1",
        uetr="8a562c67-ca16-48ba-b074-65581be6f011",
        purpose_code=None,
        purpose_proprietary="FAMILY_SUPPORT",
        unstructured=("Tuition",),
        structured=(old,),
        instructed_amount="1000.005",
        instructed_currency="HKD",
        source_currency="HKD",
        target_currency="CNY",
        rate="0.917700",
    )
    statement = _statement_with([sent, replace(sent, structured=(new,), source_currency=None, rate=None)])
    assert schema.schema_of("camt.053.001.08").validate(ET.fromstring(statement)) == []
    if XSD_DIR.is_dir():
        assert official_verdict(statement) is True
    ns = f"{{{camt053.NAMESPACE}}}"
    fits, misfit = ET.fromstring(statement).iter(f"{ns}TxDtls")
    assert fits.findtext(f"{ns}RmtInf/{ns}Strd/{ns}CdtrRefInf/{ns}Ref") == "RF18"
    assert fits.findtext(f"{ns}Purp/{ns}Prtry") == "FAMILY_SUPPORT"
    assert fits.findtext(f"{ns}AmtDtls/{ns}InstdAmt/{ns}Amt") == "1000.005"
    assert misfit.find(f"{ns}RmtInf/{ns}Strd") is None
    assert misfit.findtext(f"{ns}RmtInf/{ns}Ustrd") == "Tuition"
    assert misfit.find(f"{ns}AmtDtls/{ns}InstdAmt/{ns}CcyXchg") is None


def test_the_group_status_of_a_message_of_several_transactions() -> None:
    assert pacs002.group_status(["ACSC", "ACSC"]) == "ACSC"
    assert pacs002.group_status(["RJCT", "RJCT"]) == "RJCT"
    assert pacs002.group_status(["ACSC", "RJCT"]) == pacs002.group_status(["PDNG", "RJCT"]) == "PART"
    assert pacs002.group_status(["ACSC", "PDNG"]) == pacs002.group_status(["PDNG"]) == "PDNG"
    report = pacs002.parse(_answers()["batch, bare"]).fito_fipmt_sts_rpt
    (group,) = report.orgnl_grp_inf_and_sts
    assert (group.grp_sts, group.orgnl_nb_of_txs) == ("PART", "3")
    assert [(d.dtld_sts, d.dtld_nb_of_txs) for d in group.nb_of_txs_per_sts] == [
        ("ACSC", "1"),
        ("PDNG", "1"),
        ("RJCT", "1"),
    ]
    assert [t.tx_sts for t in report.tx_inf_and_sts] == ["ACSC", "PDNG", "RJCT"]
    assert pacs002.batch_report_id(["a", "b"]) != pacs002.batch_report_id(["b", "a"])


def test_each_transaction_of_a_message_has_a_key_of_its_own() -> None:
    from fpslink.idempotency.service import KEY_PATTERN
    from fpslink.iso20022.exchange import transaction_key

    assert transaction_key("pacs.008/M-1", 1, 1) == "pacs.008/M-1"
    assert [transaction_key("pacs.008/M-1", n, 3) for n in (1, 3)] == ["pacs.008/M-1/1", "pacs.008/M-1/3"]
    long = transaction_key("k" * 255, 2, 2)
    assert KEY_PATTERN.fullmatch(long) and long != transaction_key("k" * 255, 1, 2)


def test_the_default_key_of_a_message_fits_any_msgid() -> None:
    from fpslink.idempotency.service import KEY_PATTERN
    from fpslink.iso20022.exchange import message_key

    assert message_key("HARBOURHK-1") == "pacs.008/HARBOURHK-1"
    for msg_id in ("HARBOUR HK 1", "匯款-0001", "x" * 35):
        key = message_key(msg_id)
        assert KEY_PATTERN.fullmatch(key) and key == message_key(msg_id)
    assert message_key("a b") != message_key("a  b")


def test_a_model_that_cannot_hold_a_checked_message_is_a_refusal_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> None:
        raise ValueError("xsdata could not convert a value")

    monkeypatch.setattr(schema, "to_model", broken)
    with pytest.raises(Refused) as refused:
        inbound.read(DOCUMENT)
    assert refused.value.reasons == [
        Reason("FF01", "the message passed the pacs.008.001.08 schema check but could not be read")
    ]
    assert "could not be read into its model" in caplog.text


def test_a_refused_document_is_answered_to_its_readable_header() -> None:
    invalid = _sample("pacs008_v08_cbpr_envelope.xml").replace(
        b"<ChrgBr>SHAR</ChrgBr>", b"<ChrgBr>SHA</ChrgBr>"
    )
    with pytest.raises(Refused) as refused:
        inbound.read(invalid)
    envelope = refused.value.original.envelope
    assert envelope is not None and envelope.header is not None
    answer = ET.fromstring(pacs002.render_refusal(refused.value, at=T0, addressing=TO))
    ns = "{urn:iso:std:iso:20022:tech:xsd:head.001.001.02}"
    assert answer[0].findtext(f"{ns}Rltd/{ns}BizMsgIdr") == "HRBR2026062200011"
