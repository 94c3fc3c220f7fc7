"""The pure rules a schema-valid pacs.008 (and a pacs.028) must also keep: sums, the charging rule, the
agents, the settlement date, a UETR's one payment, the creditor's mobile number, and which payment
a status request names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from iso20022_corpus import EXAMPLES

from fpslink.idempotency.repository import KeyRecord
from fpslink.iso20022 import apphdr, consistency, inbound, pacs008, pacs028, uetr
from fpslink.iso20022.examples import PACS008_NORTHBOUND, PACS028_BY_UETR
from fpslink.iso20022.inbound import Refused
from fpslink.iso20022.repository import SentTransaction
from fpslink.iso20022.uetr import Action

CALLER = apphdr.Party("HARBOURHK", "HRBRHKH0XXX")
LINK = apphdr.Party("FPSLINK", "FPSLHKH0XXX")
TODAY = date(2026, 6, 22)
SETTLED = '<IntrBkSttlmAmt Ccy="HKD">1000.00</IntrBkSttlmAmt>'
BEARER = "<ChrgBr>SLEV</ChrgBr>"
DEBTOR_AGENT = "<ClrSysMmbId>\n            <MmbId>HARBOURHK</MmbId>\n          </ClrSysMmbId>"
OTHER_BANK = "<FinInstnId><BICFI>HKICHKH0XXX</BICFI></FinInstnId>"
ASKED_UETR = "<OrgnlUETR>8a562c67-ca16-48ba-b074-65581be6f011</OrgnlUETR>"


def _message(
    text: str = PACS008_NORTHBOUND, family: str = inbound.PACS008, **changes: str
) -> inbound.Inbound:
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    return inbound.read(text.encode(), family)


def _refusal(message: inbound.Inbound, caller: apphdr.Party = CALLER) -> Refused | None:
    """The group's refusal, else the first transaction's."""
    try:
        refusals = consistency.check(message, caller=caller, link=LINK)
    except Refused as refused:
        return refused
    return next((r for r in refusals if r is not None), None)


def _transfer(message: inbound.Inbound) -> pacs008.CreditTransfer:
    """The message's one transaction as the link reads it; raises its refusal."""
    (found,) = pacs008.credit_transfers(message)
    if isinstance(found, Refused):
        raise found
    return found


def _late(message: inbound.Inbound, today: date) -> Refused | None:
    """What the settlement dates refuse: the group's date, else the first transaction's."""
    dates = consistency.settlement_dates(message, today=today)
    return dates.group or next((r for r in dates.transactions if r is not None), None)


def _codes(refused: Refused | None) -> list[str]:
    return [] if refused is None else [r.code for r in refused.reasons]


def _money(tag: str, amount: str) -> str:
    """`<tag Ccy="HKD">5.00</tag>` of "5.00 HKD"."""
    value, currency = amount.split()
    return f'<{tag} Ccy="{currency}">{value}</{tag}>'


def _amounts(
    *,
    settled: str = "1000.00",
    instructed: str | None = None,
    bearer: str = "SLEV",
    charges: tuple[str, ...] = (),
) -> inbound.Inbound:
    """The /docs example with these amounts (written "5.00 HKD") and this charge bearer."""
    agent = "<Agt><FinInstnId><BICFI>HRBRHKH0XXX</BICFI></FinInstnId></Agt>"
    listed = "".join(f"<ChrgsInf>{_money('Amt', c)}{agent}</ChrgsInf>" for c in charges)
    date_element = "<IntrBkSttlmDt>2026-06-22</IntrBkSttlmDt>"
    return _message(
        **{
            SETTLED: _money("IntrBkSttlmAmt", f"{settled} HKD"),
            date_element: date_element + ("" if instructed is None else _money("InstdAmt", instructed)),
            BEARER: f"<ChrgBr>{bearer}</ChrgBr>{listed}",
        }
    )


def test_the_samples_are_consistent() -> None:
    assert _refusal(_message()) is None
    for path in sorted(EXAMPLES.glob("pacs008_*.xml")):
        caller = apphdr.Party("PEARLCN") if "southbound" in path.name else CALLER
        message = inbound.read(path.read_bytes())
        assert _refusal(message, caller) is None, path.name
        assert _late(message, TODAY) is None, path.name


@pytest.mark.parametrize(
    ("change", "codes", "words"),
    [
        (
            "<CtrlSum>999.00</CtrlSum>",
            ["AM16"],
            "GrpHdr/CtrlSum is 999.00 but the transactions' IntrBkSttlmAmt sum to 1000.00",
        ),
        ("<CtrlSum>1000</CtrlSum>", [], ""),
        (
            '<TtlIntrBkSttlmAmt Ccy="HKD">999.99</TtlIntrBkSttlmAmt>',
            ["AM16"],
            "GrpHdr/TtlIntrBkSttlmAmt is 999.99 HKD",
        ),
        (
            '<TtlIntrBkSttlmAmt Ccy="CNY">1000.00</TtlIntrBkSttlmAmt>',
            ["AM16"],
            "is in CNY but the transactions settle in HKD",
        ),
        (
            '<CtrlSum>1.00</CtrlSum><TtlIntrBkSttlmAmt Ccy="HKD">1.00</TtlIntrBkSttlmAmt>',
            ["AM16", "AM16"],
            "CtrlSum",
        ),
    ],
)
def test_the_group_sums_are_the_transactions(change: str, codes: list[str], words: str) -> None:
    """A CtrlSum of 999.00 for a 1000.00 payment was accepted."""
    refused = _refusal(_message(**{"<NbOfTxs>1</NbOfTxs>": f"<NbOfTxs>1</NbOfTxs>{change}"}))
    assert _codes(refused) == codes
    if refused is not None:
        assert refused.transaction is None  # about the message: group level
        assert words in refused.reasons[0].text


@pytest.mark.parametrize(
    ("settled", "instructed", "bearer", "charges", "codes"),
    [
        ("1.00", "2.00 HKD", "SLEV", (), ["AM09"]),  # the case that settled 2.00
        ("1000.00", "1000.00 HKD", "SLEV", (), []),
        ("1000.00", "1000 HKD", "DEBT", (), []),
        ("1000.00", "1005.00 HKD", "SHAR", ("5.00 HKD",), []),
        ("1000.00", "1005.00 HKD", "CRED", ("2.00 HKD", "3.00 HKD"), []),
        ("1000.00", "1000.00 HKD", "CRED", ("5.00 HKD",), ["AM09"]),
        ("1005.00", "1000.00 HKD", "DEBT", ("5.00 HKD",), ["AM09"]),  # charges prepaid to the link
        ("1000.00", "1000.00 HKD", "DEBT", ("5.00 HKD",), []),  # the debtor's charges, billed apart
        ("1000.00", "1005.00 HKD", "SLEV", ("5.00 HKD",), ["AM09"]),
        ("1000.00", "920.00 CNY", "SLEV", (), ["AM11"]),
        ("1000.00", "1005.00 HKD", "SHAR", ("5.00 CNY",), ["AM11"]),
        ("1000.00", None, "SHAR", ("5.00 HKD",), ["CH21"]),
    ],
)
def test_the_charging_rule(
    settled: str, instructed: str | None, bearer: str, charges: tuple[str, ...], codes: list[str]
) -> None:
    refused = _refusal(_amounts(settled=settled, instructed=instructed, bearer=bearer, charges=charges))
    assert _codes(refused) == codes
    if refused is not None:
        assert refused.transaction is not None and refused.transaction.uetr is not None
        assert refused.reasons[0].text.startswith("CdtTrfTxInf/")


def test_the_amount_settled_is_what_the_link_pays() -> None:
    """InstdAmt was paid over IntrBkSttlmAmt: now the settlement amount is the payment's."""
    transfer = _transfer(
        _amounts(settled="1000.00", instructed="1005.00 HKD", bearer="SHAR", charges=("5.00 HKD",))
    )
    assert str(transfer.command.amount) == "1000.00"


def test_an_exchange_rate_is_refused_the_link_converts_itself() -> None:
    message = _message(**{BEARER: f"<XchgRate>1.0</XchgRate>{BEARER}"})
    refused = _refusal(message)
    assert _codes(refused) == ["CH17"]
    assert refused is not None and "CdtTrfTxInf/XchgRate 1.0" in refused.reasons[0].text


@pytest.mark.parametrize(
    ("change", "codes", "path"),
    [
        (
            {DEBTOR_AGENT: "<ClrSysMmbId><MmbId>OTHERBANK</MmbId></ClrSysMmbId>"},
            ["RC09"],
            "DbtrAgt/FinInstnId/ClrSysMmbId/MmbId",
        ),
        ({DEBTOR_AGENT: "<BICFI>HKICHKH0XXX</BICFI>"}, ["RC06"], "DbtrAgt/FinInstnId/BICFI HKICHKH0XXX"),
        ({DEBTOR_AGENT: "<BICFI>HRBRHKH0</BICFI>"}, [], ""),
        ({DEBTOR_AGENT: f"<BICFI>HRBRHKH0XXX</BICFI>{DEBTOR_AGENT}"}, [], ""),
        ({DEBTOR_AGENT: "<Nm>Harbour Bank</Nm>"}, ["RC03"], "DbtrAgt/FinInstnId names no BICFI"),
        ({DEBTOR_AGENT: "<Othr><Id>pearlcn</Id></Othr>"}, ["RC03"], "DbtrAgt/FinInstnId/Othr/Id pearlcn"),
        ({DEBTOR_AGENT: "<Othr><Id>harbourhk</Id></Othr>"}, [], ""),
        (
            {"</PmtTpInf>\n    </GrpHdr>": f"</PmtTpInf><InstgAgt>{OTHER_BANK}</InstgAgt></GrpHdr>"},
            ["AGNT"],
            "GrpHdr/InstgAgt",
        ),
        (
            {BEARER: f"{BEARER}<InstdAgt><FinInstnId><BICFI>HRBRHKH0XXX</BICFI></FinInstnId></InstdAgt>"},
            ["AGNT"],
            "CdtTrfTxInf/InstdAgt/FinInstnId/BICFI HRBRHKH0XXX is not the link",
        ),
    ],
)
def test_the_agents_are_the_caller_and_the_link(change: dict[str, str], codes: list[str], path: str) -> None:
    """A message whose debtor agent was another bank was accepted under the caller's key."""
    refused = _refusal(_message(**change))
    assert _codes(refused) == codes
    if refused is not None:
        assert path in refused.reasons[0].text, refused.reasons[0].text


def test_a_transactions_inconsistency_refuses_that_transaction_alone() -> None:
    """Of a message's transactions, the one whose debtor agent is another bank is refused, the one
    repeating an earlier transaction's UETR is refused DUPL, and the others are not."""
    text = PACS008_NORTHBOUND
    tx = text[text.index("<CdtTrfTxInf>") : text.index("</CdtTrfTxInf>") + len("</CdtTrfTxInf>")]
    other_agent = tx.replace(DEBTOR_AGENT, "<BICFI>HKICHKH0XXX</BICFI>").replace(
        "8a562c67-ca16-48ba-b074-65581be6f011", "0b1e5d3f-7a29-4c6e-8f41-3d2c9a6b5e70"
    )
    message = _message(**{tx: tx + other_agent + tx, "<NbOfTxs>1</NbOfTxs>": "<NbOfTxs>3</NbOfTxs>"})
    first, agent, again = consistency.check(message, caller=CALLER, link=LINK)
    assert first is None
    assert _codes(agent) == ["RC06"] and agent is not None and agent.transaction is not None
    assert agent.transaction.uetr == "0b1e5d3f-7a29-4c6e-8f41-3d2c9a6b5e70"
    assert _codes(again) == ["DUPL"] and again is not None
    assert again.reasons[0].text.startswith(
        "PmtId/UETR 8a562c67-ca16-48ba-b074-65581be6f011 is also the UETR of transaction 1 of this message"
    )
    dates = consistency.settlement_dates(message, today=TODAY + timedelta(days=1))
    assert dates.group is None and [_codes(r) for r in dates.transactions] == [["DT01"]] * 3


def test_the_settlement_date_is_todays_business_date() -> None:
    message = _message()
    assert _late(message, TODAY) is None
    late = _late(message, TODAY + timedelta(days=1))
    assert late is not None and _codes(late) == ["DT01"]
    assert late.transaction is not None and late.transaction.end_to_end_id == "INV-2026-0622-0001"
    assert late.reasons[0].text.startswith("CdtTrfTxInf/IntrBkSttlmDt is 2026-06-22: ")
    assert "2026-06-23" in late.reasons[0].text
    grouped = _message(
        **{
            "<IntrBkSttlmDt>2026-06-22</IntrBkSttlmDt>": "",
            "<SttlmInf>": "<IntrBkSttlmDt>2026-06-21</IntrBkSttlmDt><SttlmInf>",
        }
    )
    early = _late(grouped, TODAY)
    assert early is not None and _codes(early) == ["DT01"] and early.transaction is None
    undated = _message(**{"<IntrBkSttlmDt>2026-06-22</IntrBkSttlmDt>": ""})
    assert _late(undated, TODAY + timedelta(days=300)) is None


# a UETR's one payment ------------------------------------------------------------------------------

T0 = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
CLAIM = SentTransaction(
    record_id="r-1",
    participant_id="HARBOURHK",
    uetr="8a562c67-ca16-48ba-b074-65581be6f011",
    msg_id="M-1",
    message_name="pacs.008.001.08",
    instr_id=None,
    end_to_end_id="E-1",
    tx_id=None,
    fingerprint="f" * 64,
    idempotency_key="pacs.008/M-1",
    payment_id=None,
    created_at=T0,
)
BOUND = KeyRecord("HARBOURHK", "pacs.008/M-1", "POST /v1/payments", "x", "p-1", None, None, T0, None)


@pytest.mark.parametrize(
    ("claim", "fingerprint", "key", "now", "expected"),
    [
        (
            replace(CLAIM, payment_id="p-1"),
            "f" * 64,
            None,
            T0 + timedelta(days=9),
            (Action.REPLAY, None, "p-1"),
        ),
        (CLAIM, "f" * 64, None, T0, (Action.RESUME, "pacs.008/M-1", None)),
        (CLAIM, "f" * 64, BOUND, T0 + timedelta(days=1), (Action.RESUME, "pacs.008/M-1", None)),
        (replace(CLAIM, payment_id="p-1"), "e" * 64, None, T0, (Action.DUPLICATE, None, "p-1")),
        (CLAIM, "e" * 64, BOUND, T0 + timedelta(days=1), (Action.DUPLICATE, None, None)),
        (CLAIM, "e" * 64, None, T0 + LEASE - timedelta(seconds=1), (Action.DUPLICATE, None, None)),
        (CLAIM, "e" * 64, None, T0 + LEASE, (Action.TAKE_OVER, None, None)),
    ],
    ids=[
        "same, paid",
        "same, running",
        "same, key bound",
        "other, paid",
        "other, key bound",
        "other, young",
        "stale",
    ],
)
def test_a_uetr_names_one_payment(
    claim: SentTransaction,
    fingerprint: str,
    key: KeyRecord | None,
    now: datetime,
    expected: tuple[Action, str | None, str | None],
) -> None:
    decision = uetr.decide(claim, fingerprint, key=key, now=now, lease=LEASE)
    assert (decision.action, decision.key, decision.payment_id) == expected


# the creditor's mobile number ----------------------------------------------------------------------

MOJALOOP = (EXAMPLES / "pacs008_v10_mojaloop_style.xml").read_text()
PROXY = (
    "<Prxy>\n          <Tp>\n            <Prtry>MOBILE</Prtry>\n          </Tp>\n"
    "          <Id>+86-13800138000</Id>\n        </Prxy>"
)
ACCOUNT = "<CdtrAcct>\n        " + PROXY + "\n      </CdtrAcct>"
CREDITOR = "<Cdtr>\n        <Nm>ZHANG Xiao Ming</Nm>\n      </Cdtr>"


def _msisdn(number: str) -> str:
    return f"<Othr><Id>{number}</Id><SchmeNm><Prtry>MSISDN</Prtry></SchmeNm></Othr>"


def _creditor(**changes: str) -> tuple[str | None, str | None]:
    message = _message(MOJALOOP, **changes)
    command = _transfer(message).command
    return command.creditor_proxy, command.creditor_account_id


def _creditor_refusal(**changes: str) -> str:
    with pytest.raises(Refused) as refused:
        _creditor(**changes)
    assert refused.value.code == "BE23"
    return refused.value.reasons[0].text


def test_a_mobile_number_is_read_where_real_messages_carry_it() -> None:
    """Mojaloop-style numbers (an MSISDN account id, the creditor's MSISDN id or contact mobile)
    were not read: such a message was refused AC03 or paid nobody."""
    assert _creditor() == ("+86-13800138000", None)
    msisdn_account = f"<CdtrAcct><Id>{_msisdn('+86-13800138000')}</Id></CdtrAcct>"
    assert _creditor(**{ACCOUNT: msisdn_account}) == ("+86-13800138000", None)
    party = f"<Cdtr><Nm>ZHANG Xiao Ming</Nm><Id><PrvtId>{_msisdn('+8613800138000')}</PrvtId></Id></Cdtr>"
    assert _creditor(**{ACCOUNT: "", CREDITOR: party}) == ("+8613800138000", None)
    organisation = f"<Cdtr><Nm>Shop</Nm><Id><OrgId>{_msisdn('+86 138 0013 8000')}</OrgId></Id></Cdtr>"
    assert _creditor(**{ACCOUNT: "", CREDITOR: organisation}) == ("+86 138 0013 8000", None)
    contact = "<Cdtr><Nm>ZHANG Xiao Ming</Nm><CtctDtls><MobNb>+86-13800138000</MobNb></CtctDtls></Cdtr>"
    assert _creditor(**{ACCOUNT: "", CREDITOR: contact}) == ("+86-13800138000", None)
    not_provided = "<CdtrAcct><Id><Othr><Id>NOTPROVIDED</Id></Othr></Id></CdtrAcct>"
    assert _creditor(**{ACCOUNT: not_provided, CREDITOR: contact}) == ("+86-13800138000", None)


def test_the_precedence_of_the_places_a_number_may_be() -> None:
    contact = "<Cdtr><Nm>ZHANG Xiao Ming</Nm><CtctDtls><MobNb>+86-13900139000</MobNb></CtctDtls></Cdtr>"
    # the account names the creditor: the contact details are not read
    assert _creditor(**{CREDITOR: contact}) == ("+86-13800138000", None)
    account = "<CdtrAcct><Id><Othr><Id>CNDEMO0002</Id></Othr></Id></CdtrAcct>"
    assert _creditor(**{ACCOUNT: account, CREDITOR: contact}) == (None, "CNDEMO0002")
    # the same number written twice is one number
    both = f"<CdtrAcct><Id>{_msisdn('+8613800138000')}</Id>{PROXY}</CdtrAcct>"
    assert _creditor(**{ACCOUNT: both}) == ("+86-13800138000", None)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (
            {ACCOUNT: f"<CdtrAcct><Id>{_msisdn('+86-13900139000')}</Id>{PROXY}</CdtrAcct>"},
            "CdtrAcct/Prxy/Id +86-13800138000 and CdtrAcct/Id/Othr/Id +86-13900139000 name different",
        ),
        (
            {
                ACCOUNT: "",
                CREDITOR: "<Cdtr><Id><PrvtId>"
                + _msisdn("+86-13800138000")
                + "</PrvtId></Id><CtctDtls><MobNb>+86-13900139000</MobNb></CtctDtls></Cdtr>",
            },
            "Cdtr/Id/PrvtId/Othr/Id +86-13800138000 and Cdtr/CtctDtls/MobNb +86-13900139000",
        ),
        (
            {ACCOUNT: "", CREDITOR: "<Cdtr><CtctDtls><MobNb>+852-1234</MobNb></CtctDtls></Cdtr>"},
            "Cdtr/CtctDtls/MobNb: '+852-1234' is not a valid +852 number",
        ),
    ],
)
def test_numbers_that_disagree_are_refused_naming_both(changes: dict[str, str], words: str) -> None:
    assert words in _creditor_refusal(**changes)


def test_without_any_creditor_the_message_is_refused_ac03() -> None:
    with pytest.raises(Refused) as refused:
        _creditor(**{ACCOUNT: ""})
    assert refused.value.code == "AC03" and "Cdtr/CtctDtls/MobNb" in refused.value.reasons[0].text


# which payment a status request names --------------------------------------------------------------

PAID = replace(
    CLAIM,
    msg_id="HARBOURHK20260622-000001",
    instr_id="HARBOURHK-INSTR-000001",
    end_to_end_id="INV-2026-0622-0001",
    payment_id="0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11",
)


def _query(text: str = PACS028_BY_UETR, **changes: str) -> pacs028.StatusQuery:
    message = _message(text, inbound.PACS028, **changes)
    return pacs028.query(message, caller=CALLER, link=LINK)


def test_a_status_request_names_its_payment_by_its_references() -> None:
    asked = _query()
    assert (asked.uetr, asked.msg_id, asked.status_request_id) == (
        PAID.uetr,
        PAID.msg_id,
        "HARBOURHK-STS-0001",
    )
    assert pacs028.matches(asked, PAID)
    assert not pacs028.matches(asked, replace(PAID, payment_id=None))  # claimed, never paid
    assert not pacs028.matches(asked, replace(PAID, end_to_end_id="OTHER"))
    assert not pacs028.matches(asked, replace(PAID, message_name="pacs.008.001.09"))
    assert pacs028.pick(asked, [replace(PAID, end_to_end_id="OTHER"), PAID]) == [PAID]
    by_ref = _query(**{ASKED_UETR: "<ClrSysRef>0B7F7C3E3C0A4F5E8A535B7D7D5A9C11</ClrSysRef>"})
    assert by_ref.payment_id == PAID.payment_id and pacs028.matches(by_ref, PAID)
    foreign = _query(**{ASKED_UETR: "<ClrSysRef>NOT-OURS</ClrSysRef>"})
    assert foreign.payment_id is None and not pacs028.matches(foreign, PAID)
    not_provided = _query(**{"INV-2026-0622-0001": "NOTPROVIDED"})
    assert not_provided.end_to_end_id is None and pacs028.matches(not_provided, PAID)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        (
            {"</TxInf>": f"</TxInf><TxInf>{ASKED_UETR}</TxInf>"},
            "AM18",
        ),
        (
            {
                "<OrgnlGrpInf>\n        <OrgnlMsgId>HARBOURHK20260622-000001</OrgnlMsgId>\n        "
                "<OrgnlMsgNmId>pacs.008.001.08</OrgnlMsgNmId>\n      </OrgnlGrpInf>": "",
                ASKED_UETR: "",
            },
            "CH21",
        ),
        (
            {"</GrpHdr>": f"<InstgAgt>{OTHER_BANK}</InstgAgt></GrpHdr>"},
            "AGNT",
        ),
    ],
)
def test_a_status_request_that_names_no_one_payment_is_refused(changes: dict[str, str], code: str) -> None:
    with pytest.raises(Refused) as refused:
        _query(**changes)
    assert refused.value.code == code
    assert refused.value.original.name == "pacs.028.001.03"


def test_not_found_reveals_only_what_was_asked() -> None:
    asked = _query()
    answer = pacs028.not_found(asked)
    assert (answer.code, answer.status) == ("AG09", 404)
    assert answer.transaction == inbound.Transaction(None, "INV-2026-0622-0001", None, PAID.uetr)
