"""The reconciliation break rules as a table: one row of `recon_match` per case, and the breaks it must give.

Every per-row rule of `matching.break_rules` is here on every side it applies to (FPS and IBPS for the
leg rules), for a northbound and a southbound payment, SEND and RECEIVE, and next to each break the
near misses that must give none (a payment still in flight, a leg of another date, a boundary).
DUPLICATE is not a per-row rule (it compares rows) and has its own tests.

`tests/unit/test_recon_rules.py` evaluates the rules on these rows in Python, and
`tests/integration/test_gw_recon_rules_pg.py` runs the same rows through PostgreSQL, so the table,
the rules and the SQL the database runs are checked against one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fpslink.reconciliation.domain import BreakType, Side

AS_OF = datetime(2026, 6, 22, 8, 0, tzinfo=UTC)
TIMEOUT_S = 30.0
NOW = AS_OF - timedelta(seconds=5)

Break = tuple[BreakType, Side]

PAYMENTS: dict[str, dict[str, Any]] = {
    # SEND 1,000.00 HKD at 0.917700: round_down(1000.00 * 0.9177) = 917.70 CNY
    "NB-SEND": {
        "direction": "NORTHBOUND",
        "amount_type": "SEND",
        "source_minor": 100_000,
        "source_currency": "HKD",
        "target_minor": 91_770,
        "target_currency": "CNY",
        "rate": "0.917700",
    },
    # RECEIVE 500.00 CNY at 0.917700: round_up(500.00 / 0.9177) = 544.85 HKD (544.8403...)
    "NB-RECEIVE": {
        "direction": "NORTHBOUND",
        "amount_type": "RECEIVE",
        "source_minor": 54_485,
        "source_currency": "HKD",
        "target_minor": 50_000,
        "target_currency": "CNY",
        "rate": "0.917700",
    },
    # SEND 800.00 CNY at 1.084240: round_down(800.00 * 1.08424) = 867.39 HKD (867.392)
    "SB-SEND": {
        "direction": "SOUTHBOUND",
        "amount_type": "SEND",
        "source_minor": 80_000,
        "source_currency": "CNY",
        "target_minor": 86_739,
        "target_currency": "HKD",
        "rate": "1.084240",
    },
    # RECEIVE 800.00 HKD at 1.084240: round_up(800.00 / 1.08424) = 737.85 CNY (737.843...)
    "SB-RECEIVE": {
        "direction": "SOUTHBOUND",
        "amount_type": "RECEIVE",
        "source_minor": 73_785,
        "source_currency": "CNY",
        "target_minor": 80_000,
        "target_currency": "HKD",
        "rate": "1.084240",
    },
}

LEG_STATUSES: dict[str, tuple[str | None, str | None]] = {
    # the gateway's state -> (FPS leg, IBPS leg) as a correct settlement leaves them
    "ACCEPTED": ("PENDING", "PENDING"),
    "COMMITTING": ("POSTED", "PENDING"),
    "ABORTING": ("VOIDED", "PENDING"),
    "SETTLED": ("POSTED", "POSTED"),
    "REJECTED": ("VOIDED", "VOIDED"),
}
IN_FLIGHT = ("ACCEPTED", "COMMITTING", "ABORTING")

COLUMNS = (
    "in_day",
    "gateway_state",
    "direction",
    "amount_type",
    "source_minor",
    "source_currency",
    "target_minor",
    "target_currency",
    "rate",
    "created_at",
    "fps_kind",
    "fps_status",
    "fps_amount_minor",
    "fps_currency",
    "fps_created_at",
    "ibps_kind",
    "ibps_status",
    "ibps_amount_minor",
    "ibps_currency",
    "ibps_created_at",
)
"""The columns of `recon_match` a case sets; the expected legs and the rate in millionths are derived
from them by the matcher's own expressions (`matching._derived`)."""


def legs(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The FPS and the IBPS leg a payment of `kind` books, amounts and currencies as recorded."""
    p = PAYMENTS[kind]
    source = (p["source_minor"], p["source_currency"])
    target = (p["target_minor"], p["target_currency"])
    if p["direction"] == "NORTHBOUND":  # FPS: debtor -> link, source; IBPS: credit the payee, target
        fps, ibps = ("DEBIT", *source), ("CREDIT", *target)
    else:  # FPS: link -> creditor, target; IBPS: debit the payer, source
        fps, ibps = ("CREDIT", *target), ("DEBIT", *source)
    return (
        {"fps_kind": fps[0], "fps_amount_minor": fps[1], "fps_currency": fps[2]},
        {"ibps_kind": ibps[0], "ibps_amount_minor": ibps[1], "ibps_currency": ibps[2]},
    )


def row(kind: str = "NB-SEND", state: str | None = "SETTLED", **changes: Any) -> dict[str, Any]:
    """A row as the matcher builds it: the payment of `kind` in `state`, its legs as that state leaves
    them, then `changes`. `fps_status=None` (or `ibps_status=None`) removes that leg; `state=None` is a
    ledger entry with no payment behind it."""
    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    fps, ibps = legs(kind)
    if state is not None:
        values.update(PAYMENTS[kind], in_day=1, gateway_state=state, created_at=NOW)
        values["fps_status"], values["ibps_status"] = LEG_STATUSES[state]
    else:
        values.update(in_day=0, fps_status="POSTED", ibps_status="POSTED")
    values.update(**fps, **ibps, fps_created_at=NOW, ibps_created_at=NOW)
    values.update(changes)
    for side in ("fps", "ibps"):
        if values[f"{side}_status"] is None:
            for column in ("kind", "amount_minor", "currency", "created_at"):
                values[f"{side}_{column}"] = None
    return values


@dataclass(frozen=True)
class Case:
    id: str
    row: dict[str, Any]
    breaks: frozenset[Break]


def _case(id: str, values: dict[str, Any], *breaks: Break) -> Case:
    return Case(id, values, frozenset(breaks))


def _other(currency: str) -> str:
    return "CNY" if currency == "HKD" else "HKD"


def cases() -> list[Case]:
    found: list[Case] = []
    add = found.append
    side_columns = {Side.FPS: "fps", Side.IBPS: "ibps"}

    # in order: every kind of payment in every state, and a payment rejected before any leg existed
    for kind in PAYMENTS:
        for state in LEG_STATUSES:
            add(_case(f"clean-{kind}-{state}", row(kind, state)))
        add(_case(f"rejected-at-acceptance-{kind}", row(kind, "REJECTED", fps_status=None, ibps_status=None)))
        add(_case(f"rejected-before-ibps-{kind}", row(kind, "REJECTED", ibps_status=None)))

    for kind in ("NB-SEND", "SB-RECEIVE"):
        for side, leg in side_columns.items():
            status = f"{leg}_status"
            # STATUS_MISMATCH: SETTLED needs POSTED, REJECTED needs VOIDED (or no entry)
            for found_status in ("PENDING", "VOIDED"):
                add(
                    _case(
                        f"status-{kind}-{side}-settled-{found_status}",
                        row(kind, "SETTLED", **{status: found_status}),
                        (BreakType.STATUS_MISMATCH, side),
                    )
                )
            for found_status in ("POSTED", "PENDING"):
                add(
                    _case(
                        f"status-{kind}-{side}-rejected-{found_status}",
                        row(kind, "REJECTED", **{status: found_status}),
                        (BreakType.STATUS_MISMATCH, side),
                    )
                )
            for state in IN_FLIGHT:  # still in flight: legs are not compared with a final state
                for found_status in ("PENDING", "POSTED", "VOIDED"):
                    add(
                        _case(
                            f"status-{kind}-{side}-{state}-{found_status}",
                            row(kind, state, **{status: found_status}),
                        )
                    )

            # AMOUNT_MISMATCH and CURRENCY_MISMATCH, whatever the state
            for state in ("SETTLED", "REJECTED", "COMMITTING"):
                expected = legs(kind)[0 if side is Side.FPS else 1]
                add(
                    _case(
                        f"amount-{kind}-{side}-{state}",
                        row(kind, state, **{f"{leg}_amount_minor": expected[f"{leg}_amount_minor"] + 1}),
                        (BreakType.AMOUNT_MISMATCH, side),
                    )
                )
                add(
                    _case(
                        f"currency-{kind}-{side}-{state}",
                        row(kind, state, **{f"{leg}_currency": _other(expected[f"{leg}_currency"])}),
                        (BreakType.CURRENCY_MISMATCH, side),
                    )
                )
        add(
            _case(
                f"status-{kind}-rejected-both-legs-posted",
                row(kind, "REJECTED", fps_status="POSTED", ibps_status="POSTED"),
                (BreakType.STATUS_MISMATCH, Side.FPS),
                (BreakType.STATUS_MISMATCH, Side.IBPS),
            )
        )
        add(
            _case(
                f"amount-{kind}-both-legs-swapped",
                row(
                    kind,
                    "SETTLED",
                    fps_amount_minor=legs(kind)[1]["ibps_amount_minor"],
                    ibps_amount_minor=legs(kind)[0]["fps_amount_minor"],
                ),
                (BreakType.AMOUNT_MISMATCH, Side.FPS),
                (BreakType.AMOUNT_MISMATCH, Side.IBPS),
            )
        )

        # MISSING_AT_FPS: every payment not REJECTED has its FPS leg
        for state in ("SETTLED", *IN_FLIGHT):
            add(
                _case(
                    f"missing-fps-{kind}-{state}",
                    row(kind, state, fps_status=None),
                    (BreakType.MISSING_AT_FPS, Side.FPS),
                )
            )
        # MISSING_AT_IBPS: a decided-to-commit payment was prepared at IBPS
        for state in ("SETTLED", "COMMITTING"):
            add(
                _case(
                    f"missing-ibps-{kind}-{state}",
                    row(kind, state, ibps_status=None),
                    (BreakType.MISSING_AT_IBPS, Side.IBPS),
                )
            )
        for state in ("ACCEPTED", "ABORTING"):
            add(_case(f"no-ibps-yet-{kind}-{state}", row(kind, state, ibps_status=None)))

    # UNEXPECTED_AT_*: a ledger entry with no payment behind it; a voided one breaks nothing
    for status in ("PENDING", "POSTED"):
        add(
            _case(
                f"unexpected-ibps-{status}",
                row(state=None, ibps_status=status, fps_status=None),
                (BreakType.UNEXPECTED_AT_IBPS, Side.IBPS),
            )
        )
        add(
            _case(
                f"unexpected-fps-{status}",
                row(state=None, fps_status=status, ibps_status=None),
                (BreakType.UNEXPECTED_AT_FPS, Side.FPS),
            )
        )
    add(_case("unexpected-ibps-VOIDED", row(state=None, ibps_status="VOIDED", fps_status=None)))
    add(_case("unexpected-fps-VOIDED", row(state=None, fps_status="VOIDED", ibps_status=None)))
    add(
        _case(
            "unexpected-both",
            row(state=None),
            (BreakType.UNEXPECTED_AT_IBPS, Side.IBPS),
            (BreakType.UNEXPECTED_AT_FPS, Side.FPS),
        )
    )

    # FX_MISMATCH: the amounts against the recorded rate under the rounding rule
    for kind, p in PAYMENTS.items():
        fps, ibps = legs(kind)
        wrong_rate = "0.927700" if p["rate"] == "0.917700" else "1.094240"
        add(_case(f"fx-{kind}-other-rate", row(kind, rate=wrong_rate), (BreakType.FX_MISMATCH, Side.GATEWAY)))
        add(_case(f"fx-{kind}-zero-rate", row(kind, rate="0"), (BreakType.FX_MISMATCH, Side.GATEWAY)))
        add(_case(f"fx-{kind}-rejected-other-rate", row(kind, "REJECTED", rate=wrong_rate)))
        add(
            _case(
                f"fx-{kind}-in-flight-other-rate",
                row(kind, "COMMITTING", rate=wrong_rate),
                (BreakType.FX_MISMATCH, Side.GATEWAY),
            )
        )
        add(_case(f"fx-{kind}-seventh-digit", row(kind, rate=p["rate"] + "9")))
        # one minor unit either side of the rounding rule, the legs agreeing with the amounts
        fixed = "target" if p["amount_type"] == "SEND" else "source"
        for delta in (1, -1):
            minor = p[f"{fixed}_minor"] + delta
            leg_columns = {
                f"{leg}_amount_minor": minor
                for leg, values in (("fps", fps), ("ibps", ibps))
                if values[f"{leg}_amount_minor"] == p[f"{fixed}_minor"]
                and values[f"{leg}_currency"] == p[f"{fixed}_currency"]
            }
            add(
                _case(
                    f"fx-{kind}-{fixed}-{delta:+d}",
                    row(kind, **{f"{fixed}_minor": minor}, **leg_columns),
                    (BreakType.FX_MISMATCH, Side.GATEWAY),
                )
            )
    # digits past the sixth are cut, not rounded: "0.9177009" is 0.917700, and 10,000.00 HKD at it
    # gives exactly 9,177.00 CNY (at 0.917701 it would be 9,177.01)
    add(
        _case(
            "fx-seventh-digit-is-cut",
            row(
                "NB-SEND",
                rate="0.9177009",
                source_minor=1_000_000,
                target_minor=917_700,
                fps_amount_minor=1_000_000,
                ibps_amount_minor=917_700,
            ),
        )
    )
    add(
        _case(
            "fx-same-currency-rate-1",
            row(
                "NB-SEND",
                rate="1",
                target_minor=100_000,
                target_currency="HKD",
                ibps_amount_minor=100_000,
                ibps_currency="HKD",
            ),
        )
    )

    # the rule's arithmetic at its edges: each row is consistent, so none may break
    edges = {
        # an exact quotient is not rounded up a further cent: 500.00 CNY at 0.5 costs 1,000.00 HKD
        "fx-receive-exact-quotient": ("NB-RECEIVE", "0.500000", 100_000, 50_000),
        # one millionth over a whole cent is a cent more: 0.01 CNY at 0.999999 costs 0.02 HKD
        "fx-receive-one-millionth-over": ("NB-RECEIVE", "0.999999", 2, 1),
        # the smallest positive rate is a rate: 1,000.00 HKD at 0.000001 buys nothing
        "fx-smallest-rate": ("NB-SEND", "0.000001", 100_000, 0),
        # RECEIVE 0.12 HKD at 1.08424 costs 0.12 CNY, though 0.12 CNY sent would buy 0.13 HKD
        "fx-receive-is-not-held-to-the-send-rule": ("SB-RECEIVE", "1.084240", 12, 12),
        # SEND 1.01 HKD at 0.5 pays 0.50 CNY, though 0.50 CNY received would cost 1.00 HKD
        "fx-send-is-not-held-to-the-receive-rule": ("NB-SEND", "0.500000", 101, 50),
    }
    for name, (kind, rate, source_minor, target_minor) in edges.items():
        north = PAYMENTS[kind]["direction"] == "NORTHBOUND"
        fps_minor, ibps_minor = (source_minor, target_minor) if north else (target_minor, source_minor)
        values = row(
            kind,
            rate=rate,
            source_minor=source_minor,
            target_minor=target_minor,
            fps_amount_minor=fps_minor,
            ibps_amount_minor=ibps_minor,
        )
        add(_case(name, values))

    # STUCK_PENDING: not final more than the settlement time-out after acceptance
    for state in IN_FLIGHT:
        add(
            _case(
                f"stuck-{state}",
                row("NB-SEND", state, created_at=AS_OF - timedelta(seconds=TIMEOUT_S + 1)),
                (BreakType.STUCK_PENDING, Side.GATEWAY),
            )
        )
        add(
            _case(
                f"not-yet-stuck-{state}",
                row("NB-SEND", state, created_at=AS_OF - timedelta(seconds=TIMEOUT_S)),
            )
        )
    for state in ("SETTLED", "REJECTED"):
        add(_case(f"old-{state}", row("SB-RECEIVE", state, created_at=AS_OF - timedelta(days=1))))

    # a payment of another date (in_day 0) on the day's ledgers: a timing difference, never a break
    for changes in (
        {"fps_amount_minor": 1},
        {"ibps_currency": "HKD"},
        {"fps_status": None},
        {"ibps_status": None},
        {"ibps_status": "PENDING"},
        {"rate": "0"},
        {"gateway_state": "COMMITTING", "created_at": AS_OF - timedelta(days=1)},
    ):
        name = "-".join(f"{k}={v}" for k, v in changes.items() if k != "created_at")
        add(_case(f"other-date-{name}", row("NB-SEND", **{"in_day": 0, **changes})))

    ids = [case.id for case in found]
    assert len(ids) == len(set(ids)), "case ids are unique"
    return found


CASES = cases()
