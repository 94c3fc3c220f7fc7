"""What a reconciliation break is, and what to do about one: pure definitions, no I/O.

The three inputs of business date D (a UTC+8 calendar day):

* gateway: the payments accepted in D (`payments.business_date == D`);
* FPS ledger: the FPS transfers of those payments, and every FPS transfer created in D;
* IBPS statement: the transfers mock_ibps created in D (its own clock), exported over HTTP.

They are matched by payment id. Each payment has one FPS leg (northbound: debtor -> FPS link in the
source currency; southbound: FPS link -> creditor in the target currency) and one IBPS leg (northbound:
a CREDIT to the creditor of the target amount in CNY; southbound: a DEBIT from the debtor of the source
amount in CNY). A ledger entry of D whose payment was accepted on another date is a cut-off timing
difference, counted in the report but not a break.

Cut-off: the gateway dates a payment by its acceptance and IBPS dates its entry by its own creation, a
few milliseconds (or a clock skew) later, so a payment accepted just before midnight can be on the
next day's statement (or, with IBPS's clock behind, on the previous day's). Before a payment of D
near either end of the day (`cut_off_window_s`) is reported as lacking its IBPS entry, the run looks
its entry up at IBPS by payment id; one found on D-1 or D+1 is a timing difference: matched, compared
field by field like a same-day entry (so a wrong amount is still a break), listed apart from the
breaks, and left out of D's IBPS totals. The pair belongs to the run of the payment's business date;
the run of the entry's date counts the entry as of another date, and neither compares it twice.

Break types; each is reported at most once per payment and side:

MISSING_AT_FPS      a payment that is not REJECTED has no FPS transfer (every accepted payment
                    prepares its FPS leg in the acceptance transaction).
MISSING_AT_IBPS     a SETTLED or COMMITTING payment (IBPS prepared, by the decision rule) has no entry
                    in the IBPS statement of D, nor (near the cut-off) on D-1's or D+1's.
UNEXPECTED_AT_IBPS  a pending or posted IBPS entry of D whose payment id the gateway has no record of.
UNEXPECTED_AT_FPS   the same on the FPS ledger (docs/architecture.md#reconciliation: added for symmetry).
AMOUNT_MISMATCH     a leg's amount differs from the payment's recorded amount for that leg.
CURRENCY_MISMATCH   a leg's currency differs from the payment's recorded currency for that leg.
STATUS_MISMATCH     a leg's status disagrees with the payment's final state: SETTLED needs POSTED
                    legs, REJECTED needs VOIDED (or absent) legs. Payments still in flight are not
                    compared; see STUCK_PENDING.
FX_MISMATCH         the payment's amounts do not agree with its recorded rate under the rounding rule:
                    SEND needs target == round_down(source * rate), RECEIVE needs
                    source == round_up(target / rate). The legs are held to the amounts by
                    AMOUNT_MISMATCH, so one corrupted figure gives one break.
DUPLICATE           either one payment id appears more than once in the IBPS statement (IBPS booked
                    the payment twice), or a gateway payment repeats an earlier one of the same day:
                    same debtor account, same end_to_end_id, same creditor account, same source
                    amount and currency, neither REJECTED. The later payment is reported, with the
                    earlier one's id; a bank that resends an instruction under a new Idempotency-Key
                    produces exactly this.
STUCK_PENDING       a payment not SETTLED or REJECTED more than the settlement time-out after it was
                    accepted, as of the reconciliation's run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from fpslink.money import Currency, format_minor

if TYPE_CHECKING:  # the wire's model, read by attribute: this module imports no framework
    from ibps_wire.schemas import TransferOut

BUSINESS_TZ: Final = timezone(timedelta(hours=8))
CLOCK_SKEW_S: Final = 60.0
"""How far IBPS's clock may be from the gateway's, on top of the settlement time-out, when deciding
which payments near midnight may have their IBPS entry on a neighbouring day."""


class BreakType(StrEnum):
    MISSING_AT_IBPS = "MISSING_AT_IBPS"
    MISSING_AT_FPS = "MISSING_AT_FPS"
    UNEXPECTED_AT_IBPS = "UNEXPECTED_AT_IBPS"
    UNEXPECTED_AT_FPS = "UNEXPECTED_AT_FPS"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    STATUS_MISMATCH = "STATUS_MISMATCH"
    FX_MISMATCH = "FX_MISMATCH"
    DUPLICATE = "DUPLICATE"
    STUCK_PENDING = "STUCK_PENDING"


class Side(StrEnum):
    """Where the break shows: a ledger, or the gateway's own record."""

    FPS = "FPS"
    IBPS = "IBPS"
    GATEWAY = "GATEWAY"


SUGGESTED_ACTION: Final[dict[BreakType, str]] = {
    BreakType.MISSING_AT_IBPS: (
        "Look the transfer up at IBPS (GET /ibps/v1/transfers/{payment_id}); the run found it neither on "
        "this day's statement nor, near midnight, on a neighbouring day's: open an investigation with "
        "IBPS, the mainland side was never credited or debited."
    ),
    BreakType.MISSING_AT_FPS: (
        "Restore the FPS ledger entry from the payment's timeline and re-check the customer's FPS "
        "balance; do not settle further payments of that account until it is restored."
    ),
    BreakType.UNEXPECTED_AT_IBPS: (
        "IBPS holds or moved funds for a payment the gateway never accepted: ask IBPS to void the "
        "hold or return the funds."
    ),
    BreakType.UNEXPECTED_AT_FPS: (
        "The FPS ledger holds or moved funds for a payment the gateway never accepted: void or "
        "reverse the entry."
    ),
    BreakType.AMOUNT_MISMATCH: (
        "Book an adjustment on the ledger that differs so the leg equals the gateway's amount, after "
        "checking the payment's FX record."
    ),
    BreakType.CURRENCY_MISMATCH: (
        "Reverse the ledger entry and rebook it in the payment's currency; check the account's currency."
    ),
    BreakType.STATUS_MISMATCH: (
        "Finish the decision on the lagging ledger: post the leg of a SETTLED payment, void the leg of "
        "a REJECTED one (both are idempotent by payment id)."
    ),
    BreakType.FX_MISMATCH: (
        "Recompute the conversion at the recorded rate and refund or collect the difference from the "
        "customer; check the quote the payment used."
    ),
    BreakType.DUPLICATE: (
        "Ask the debtor bank whether the instruction was sent twice; if so, return the later payment. "
        "A payment id booked twice at IBPS needs the extra booking reversed by IBPS."
    ),
    BreakType.STUCK_PENDING: (
        "Let recovery finish it (it drives decided payments to their end); if IBPS is unreachable, wait "
        "for it; if it stays, inspect the payment's timeline."
    ),
}


def business_day_bounds(business_date: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC+8 business date, in UTC: the same rule mock_ibps's statement uses."""
    start = datetime.combine(business_date, time.min, tzinfo=BUSINESS_TZ).astimezone(UTC)
    return start, start + timedelta(days=1)


def business_date_of(moment: datetime) -> date:
    return moment.astimezone(BUSINESS_TZ).date()


def cut_off_window_s(settlement_timeout_s: float) -> float:
    """How close to either end of its day a payment must be for its IBPS entry to be on the next or
    previous day: IBPS records a leg within the settlement time-out of acceptance (a decided payment
    was prepared before its decision), give or take the two clocks' skew. A voided entry written
    later by recovery may fall outside it, and a voided entry breaks nothing."""
    return settlement_timeout_s + CLOCK_SKEW_S


@dataclass(frozen=True, slots=True)
class NeighbourEntry:
    """A payment's IBPS entry found by id on the day before or after the one reconciled."""

    payment_id: str
    day_offset: int
    """-1: on the previous day's statement, +1: on the next day's."""
    kind: str | None
    status: str
    amount_minor: int | None
    currency: str | None
    created_at: datetime


def neighbour_entry(business_date: date, transfer: TransferOut) -> NeighbourEntry | None:
    """The transfer (as `GET /ibps/v1/transfers/{payment_id}` returns it) if it is on the statement of
    the day before or after `business_date`; None if it is on that day's own or a farther one's."""
    created = transfer.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    offset = (business_date_of(created) - business_date).days
    if offset not in (-1, 1) or transfer.payment_id is None:
        return None
    return NeighbourEntry(
        payment_id=transfer.payment_id,
        day_offset=offset,
        kind=None if transfer.kind is None else transfer.kind.value,
        status=transfer.status.value,
        amount_minor=transfer.amount_minor,
        currency=transfer.currency,
        created_at=created.astimezone(UTC),
    )


def hour_of_day(moment: datetime) -> int:
    return moment.astimezone(BUSINESS_TZ).hour


LATENCY_BUCKETS_MS: Final = (50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000)
"""Upper bounds of the settlement latency histogram; one more bucket holds the slower rest."""


def latency_labels() -> list[str]:
    labels, low = [], 0
    for high in LATENCY_BUCKETS_MS:
        labels.append(f"{_ms(low)}-{_ms(high)}")
        low = high
    labels.append(f">{_ms(low)}")
    return labels


def _ms(value: int) -> str:
    return f"{value // 1000}s" if value >= 1000 and value % 1000 == 0 else f"{value}ms"


def rate_micro(rate: str) -> int:
    """A stored rate ("0.917700", "1") in millionths; the SQL matcher parses it the same way."""
    whole, _, fraction = rate.partition(".")
    return int(whole or "0") * 1_000_000 + int((fraction + "000000")[:6])


def fx_consistent(*, amount_type: str, source_minor: int, target_minor: int, rate: str) -> bool:
    """The rounding rule on integers: SEND pays round_down(source * rate), RECEIVE collects
    round_up(target / rate)."""
    micro = rate_micro(rate)
    if micro <= 0:
        return False
    if amount_type == "SEND":
        return target_minor == source_minor * micro // 1_000_000
    return source_minor == (target_minor * 1_000_000 + micro - 1) // micro


def money_text(minor: int | None, currency: str | None) -> str:
    if minor is None:
        return "-"
    if currency in (Currency.HKD.value, Currency.CNY.value):
        return f"{format_minor(int(minor), Currency(currency))} {currency}"
    return f"{Decimal(int(minor)).scaleb(-2):f} {currency or '?'}"


@dataclass(frozen=True, slots=True)
class BreakView:
    """One break as the report shows it: both sides' values in words, its age and what to do."""

    break_type: BreakType
    side: Side
    payment_id: str
    direction: str | None
    gateway_value: str
    fps_value: str
    ibps_value: str
    expected: str
    age_s: int
    suggested_action: str
    related_payment_id: str | None
    occurred_at: datetime | None


def expected_legs(row: dict[str, Any]) -> tuple[tuple[int | None, str | None], tuple[int | None, str | None]]:
    """((FPS amount, currency), (IBPS amount, currency)) the payment's record calls for."""
    source = (row.get("source_minor"), row.get("source_currency"))
    target = (row.get("target_minor"), row.get("target_currency"))
    if row.get("direction") == "NORTHBOUND":
        return source, target
    if row.get("direction") == "SOUTHBOUND":
        return target, source
    return (None, None), (None, None)


def _leg_text(status: str | None, minor: int | None, currency: str | None) -> str:
    if status is None:
        return "(no entry)"
    return f"{status} {money_text(minor, currency)}"


def describe(row: dict[str, Any], *, as_of: datetime) -> BreakView:
    """Turn a stored break row into words: the gateway's, FPS's and IBPS's values side by side."""
    kind, side = BreakType(row["break_type"]), Side(row["side"])
    (fps_minor, fps_cur), (ibps_minor, ibps_cur) = expected_legs(row)
    state = row.get("gateway_state")
    if state is None:
        gateway_value = "(no payment)"
    else:
        gateway_value = (
            f"{state} {money_text(row.get('source_minor'), row.get('source_currency'))}"
            f" -> {money_text(row.get('target_minor'), row.get('target_currency'))}"
        )
        if row.get("rate"):
            gateway_value += f" at {row['rate']}"
    fps_value = _leg_text(row.get("fps_status"), row.get("fps_amount_minor"), row.get("fps_currency"))
    ibps_value = _leg_text(row.get("ibps_status"), row.get("ibps_amount_minor"), row.get("ibps_currency"))
    expected = "-"
    if kind in (BreakType.AMOUNT_MISMATCH, BreakType.CURRENCY_MISMATCH, BreakType.MISSING_AT_FPS):
        expected = money_text(fps_minor, fps_cur) if side is Side.FPS else money_text(ibps_minor, ibps_cur)
    elif kind is BreakType.MISSING_AT_IBPS:
        expected = money_text(ibps_minor, ibps_cur)
    elif kind is BreakType.STATUS_MISMATCH:
        expected = "POSTED" if state == "SETTLED" else "VOIDED or no entry"
    elif kind is BreakType.FX_MISMATCH:
        expected = _fx_expected(row)
    elif kind is BreakType.DUPLICATE:
        expected = (
            f"first payment {row['related_payment_id']}"
            if row.get("related_payment_id")
            else f"one entry, found {row.get('occurrences') or 2}"
        )
    elif kind is BreakType.STUCK_PENDING:
        expected = "SETTLED or REJECTED"
    elif kind in (BreakType.UNEXPECTED_AT_IBPS, BreakType.UNEXPECTED_AT_FPS):
        expected = "no entry"
    occurred = row.get("occurred_at")
    age_s = max(0, int((as_of - occurred).total_seconds())) if occurred is not None else 0
    return BreakView(
        break_type=kind,
        side=side,
        payment_id=row["payment_id"],
        direction=row.get("direction"),
        gateway_value=gateway_value,
        fps_value=fps_value,
        ibps_value=ibps_value,
        expected=expected,
        age_s=age_s,
        suggested_action=SUGGESTED_ACTION[kind],
        related_payment_id=row.get("related_payment_id"),
        occurred_at=occurred,
    )


def _fx_expected(row: dict[str, Any]) -> str:
    rate, source, target = row.get("rate"), row.get("source_minor"), row.get("target_minor")
    if not rate or source is None or target is None:
        return "-"
    micro = rate_micro(rate)
    if micro <= 0:
        return f"a positive rate, not {rate}"
    if row.get("amount_type") == "RECEIVE":
        due = (int(target) * 1_000_000 + micro - 1) // micro
        return f"source {money_text(due, row.get('source_currency'))} at {rate}"
    return f"target {money_text(int(source) * micro // 1_000_000, row.get('target_currency'))} at {rate}"


def age_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"
