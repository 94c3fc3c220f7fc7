"""What the console's pages show, built from the gateway's own services and the same access rules.

A bank sees the payments it is party to (as debtor or creditor bank) and the accounts it owns; the
operator sees everything. A customer name is shown in full only to the bank that holds the account
(and to the operator); everyone else gets the masked form the payer saw.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import RowMapping, select

from fpslink import metrics
from fpslink.config import Settings
from fpslink.console import repository as repo
from fpslink.console import throttle, words
from fpslink.console.session import Session
from fpslink.context import Gateway
from fpslink.directory.masking import mask_name
from fpslink.directory.phones import InvalidProxy, normalize_mobile
from fpslink.errors import NotFound
from fpslink.fx.domain import AmountType
from fpslink.ibps_client import IbpsError
from fpslink.ibps_client import deadline as ibps_deadline
from fpslink.idempotency.models import idempotency_keys
from fpslink.iso20022 import pacs002, schema
from fpslink.iso20022.details import Details
from fpslink.iso20022.pacs008 import CreditTransfer
from fpslink.ledger import repository as ledger
from fpslink.ledger.domain import Transfer
from fpslink.limits.policy import business_date
from fpslink.money import Currency, format_minor
from fpslink.participants.repository import AccountRecord
from fpslink.payments.domain import Payment, decimal_text
from fpslink.payments.service import PaymentCommand
from fpslink.principal import OPERATOR, Principal
from fpslink.settlement.states import status_of
from fpslink.vocabulary import Purpose, State
from ibps_wire.amounts import format_amount
from ibps_wire.schemas import TransferOut

SEARCH_LIMIT: Final = 100
MAX_QUERY_CHARS: Final = 255
DASHBOARD_WINDOWS_S: Final = (30, 60, 120, 300)
LATENCY_SAMPLE: Final = 5_000
PENDING_SHOWN: Final = 10
BUSIEST_SHOWN: Final = 10
IBPS_READ_DEADLINE_S: Final = 2.0
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
PHONE_LIKE = re.compile(r"(\+|00)[0-9 ()\-.]{6,40}")


async def principal_of(gw: Gateway, session: Session) -> Principal | None:
    """The principal a session names, or None when it was logged out, the key that logged it in
    was revoked or has expired, or its bank no longer exists."""
    async with gw.uow() as tx:
        if await repo.session_ended(tx.conn, session.nonce):
            return None
        if session.is_operator:
            return OPERATOR
        if not await tx.participants.key_active(session.scope, session.key_prefix, now=gw.now()):
            return None
        found = await tx.participants.participant(session.scope)
    if found is None:
        return None
    return Principal(participant_id=found.participant_id, system=found.system, bic=found.bic)


async def end_session(gw: Gateway, session: Session) -> None:
    """Log the session out on the server: its cookie is refused from now on, by every worker."""
    async with gw.uow() as tx:
        await repo.end_session(
            tx.conn,
            nonce=session.nonce,
            expires_at=datetime.fromtimestamp(session.expires_at_s, tz=UTC),
            now=gw.wall_now(),
        )
        await tx.commit()


def login_limits(settings: Settings) -> throttle.Limits:
    return throttle.Limits(
        window_s=settings.console_login_window_s,
        per_address=settings.console_login_failures_per_address,
        per_key_prefix=settings.console_login_failures_per_key_prefix,
    )


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A counted log-in attempt: `retry_after_s` is set when it is refused unchecked."""

    buckets: list[throttle.Bucket]
    window_start: datetime
    retry_after_s: int | None


async def count_login(gw: Gateway, *, host: str | None, api_key: str) -> LoginAttempt:
    """Count a log-in attempt before its key is checked, and say whether it may be checked."""
    limits = login_limits(gw.settings)
    now = gw.wall_now()  # real time: moving the sandbox's clock must not open a throttled window
    buckets = throttle.buckets(limits, host=host, api_key=api_key)
    start = throttle.window_start(now, limits.window_s)
    async with gw.uow() as tx:
        counts = await repo.count_attempt(tx.conn, buckets=[b.name for b in buckets], window_start=start)
        await tx.commit()
    wait = throttle.retry_after_s(counts, buckets, now=now, window_s=limits.window_s)
    return LoginAttempt(buckets, start, wait)


async def logged_in(gw: Gateway, attempt: LoginAttempt) -> None:
    """The attempt's key was right: it is not a failure."""
    async with gw.uow() as tx:
        await repo.forgive_attempt(
            tx.conn, buckets=[b.name for b in attempt.buckets], window_start=attempt.window_start
        )
        await tx.commit()


def name_for(principal: Principal, account: AccountRecord | None, masked: str | None = None) -> str | None:
    """A holder name as this principal may see it: in full for its own customers, masked otherwise."""
    if account is None:
        return masked
    if principal.is_operator or principal.participant_id == account.participant_id:
        return account.holder_name
    return masked or mask_name(account.holder_name)


# explorer ------------------------------------------------------------------------------------


@dataclass
class Search:
    query: str
    matched: list[str] = field(default_factory=list)
    """How the query was read: payment id, account, proxy, Idempotency-Key."""
    payments: list[dict[str, Any]] = field(default_factory=list)


def payment_summary(payment: Payment) -> dict[str, Any]:
    """One line of a payment list."""
    source, target = payment.source_text(), payment.target_text()
    return {
        "payment_id": payment.payment_id,
        "status": status_of(payment.state).value,
        "direction": payment.direction.value,
        "debtor_account_id": payment.debtor_account_id,
        "creditor_account_id": payment.creditor_account_id,
        "creditor_masked_name": payment.creditor_masked_name,
        # what moved: a rejected payment's amounts were only quoted (the payment page shows them so)
        "source": f"{source} {payment.source_currency.value}" if source and payment.moved else None,
        "target": f"{target} {payment.target_currency.value}"
        if target and payment.target_currency and payment.moved
        else None,
        "reason_code": payment.reason_code,
        "created_at": payment.created_at,
    }


async def search(gw: Gateway, principal: Principal, query: str) -> Search:
    """Every reading of the query that finds something: payment id, account, proxy or key."""
    text = query.strip()[:MAX_QUERY_CHARS]
    found = Search(query=text)
    if not text:
        return found
    rows: dict[str, Payment] = {}
    participant_id = principal.participant_id
    async with gw.uow() as tx:
        conn = tx.conn
        if UUID_TEXT.fullmatch(text):
            payment_id = str(uuid.UUID(text))
            hits = await repo.search_payments(
                conn, participant_id=participant_id, payment_ids=[payment_id], limit=1
            )
            if hits:
                found.matched.append("payment id")
                rows.update((p.payment_id, p) for p in hits)
        account = await tx.participants.account(text.upper())
        if account is not None and (principal.is_operator or account.participant_id == participant_id):
            hits = await repo.search_payments(
                conn, participant_id=participant_id, account_id=account.account_id, limit=SEARCH_LIMIT
            )
            found.matched.append(f"account {account.account_id}")
            rows.update((p.payment_id, p) for p in hits)
        if PHONE_LIKE.fullmatch(text):
            try:
                e164 = normalize_mobile(text)
            except InvalidProxy:
                e164 = None
            if e164 is not None:
                hits = await repo.search_payments(
                    conn, participant_id=participant_id, proxy=e164, limit=SEARCH_LIMIT
                )
                found.matched.append(f"proxy {e164}")
                rows.update((p.payment_id, p) for p in hits)
        ids = await repo.payment_ids_for_key(
            conn, scope=None if principal.is_operator else principal.scope, key=text, limit=SEARCH_LIMIT
        )
        if ids:
            hits = await repo.search_payments(
                conn, participant_id=participant_id, payment_ids=ids, limit=SEARCH_LIMIT
            )
            if hits:
                found.matched.append("Idempotency-Key")
                rows.update((p.payment_id, p) for p in hits)
    ordered = sorted(rows.values(), key=lambda p: (p.created_at, p.payment_id), reverse=True)
    found.payments = [payment_summary(r) for r in ordered[:SEARCH_LIMIT]]
    return found


# accounts ------------------------------------------------------------------------------------


async def accounts(gw: Gateway, principal: Principal, *, limit: int) -> Sequence[RowMapping]:
    """The accounts this principal may see, oldest first."""
    async with gw.uow() as tx:
        return await repo.account_list(tx.conn, participant_id=principal.participant_id, limit=limit)


async def account_payments(gw: Gateway, principal: Principal, account_id: str) -> list[dict[str, Any]]:
    """The latest payments of an account the caller may see (`owned_account` checked that)."""
    async with gw.uow() as tx:
        rows = await repo.search_payments(
            tx.conn, participant_id=principal.participant_id, account_id=account_id, limit=SEARCH_LIMIT
        )
    return [payment_summary(r) for r in rows]


# one payment ---------------------------------------------------------------------------------


def _ledger_side(transfer: Transfer | None) -> dict[str, Any] | None:
    """The FPS ledger's transfer of a payment, as the payment page shows a ledger's side."""
    if transfer is None:
        return None
    currency = transfer.currency
    return {
        "kind": transfer.kind.value,
        "status": transfer.status.value,
        "debit_account_id": transfer.debit_account_id,
        "credit_account_id": transfer.credit_account_id,
        "amount": f"{format_minor(transfer.amount_minor, currency)} {currency.value}",
    }


def _ibps_ledger_side(transfer: TransferOut) -> dict[str, Any]:
    """IBPS's transfer of a payment, shown as the FPS side is; an abort's tombstone has no amount."""
    amount = "none"
    if transfer.amount_minor is not None:
        amount = f"{format_amount(transfer.amount_minor)} {transfer.currency}"
    return {
        "kind": None if transfer.kind is None else transfer.kind.value,
        "status": transfer.status.value,
        "debit_account_id": transfer.debit_account_id,
        "credit_account_id": transfer.credit_account_id,
        "amount": amount,
    }


async def _ibps_side(gw: Gateway, payment_id: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        with ibps_deadline(IBPS_READ_DEADLINE_S):
            found = await gw.ibps.get_transfer(payment_id)
    except IbpsError as exc:
        return None, f"IBPS did not answer: {exc}"
    if found is None:
        return None, "IBPS has no transfer for this payment"
    return _ibps_ledger_side(found), None


def pacs002_for(payment: Payment, *, msg_id: str | None, details: Details | None = None) -> str | None:
    """The pacs.002 the gateway would report for this payment now (the original pacs.008 is not kept).

    A payment sent as a pacs.008 is reported with its references as sent (`details`); for the others
    the original message id is known only for payments sent as pacs.008 without their own key, else
    NOTPROVIDED, and the original instruction and transaction ids are absent.
    """
    if details is not None:
        return schema.serialize(pacs002.build(details, payment)).decode()
    sent = payment.amount_type is AmountType.SEND
    minor = payment.source_minor if sent else payment.target_minor
    currency = payment.source_currency if sent else payment.target_currency
    if currency is None:  # a RECEIVE payment rejected before its creditor was known
        return None
    message = CreditTransfer(
        msg_id=msg_id or "NOTPROVIDED",
        instr_id=None,
        end_to_end_id=payment.end_to_end_id,
        tx_id=None,
        uetr=None,
        command=PaymentCommand(
            debtor_account_id=payment.debtor_account_id,
            creditor_proxy=payment.creditor_proxy,
            creditor_account_id=payment.creditor_account_id,
            amount=Decimal(format_minor(minor, currency)) if minor is not None else Decimal(0),
            currency=currency,
            quote_id=payment.quote_id,
            # a payment stored before purposes became a closed list keeps its text; pacs.002 omits it
            purpose=Purpose(payment.purpose) if payment.purpose in Purpose.__members__ else Purpose.OTHER,
            remittance_info=payment.remittance_info,
            end_to_end_id=payment.end_to_end_id,
        ),
    )
    try:
        return pacs002.render(message, payment).decode()
    except Exception:
        return None


async def payment_page(gw: Gateway, principal: Principal, payment_id: str) -> dict[str, Any]:
    """Everything the payment page shows; 404 alike for unknown and for another bank's payment."""
    try:
        payment_id = str(uuid.UUID(payment_id))
    except ValueError as exc:
        raise NotFound(f"payment {payment_id} not found", code="PAYMENT_NOT_FOUND") from exc
    result = await gw.payments.get_payment(principal, payment_id)
    payment = result.payment
    async with gw.uow() as tx:
        debtor = await tx.participants.account(payment.debtor_account_id)
        creditor = (
            await tx.participants.account(payment.creditor_account_id)
            if payment.creditor_account_id
            else None
        )
        fps = await ledger.transfer_of(tx.conn, payment_id)
        key_row = (
            await tx.conn.execute(
                select(idempotency_keys.c.key).where(
                    idempotency_keys.c.participant_id == payment.participant_id,
                    idempotency_keys.c.payment_id == payment_id,
                )
            )
        ).first()
    key = str(key_row[0]) if key_row is not None else None
    debtor_bank_view = principal.is_operator or principal.participant_id == payment.participant_id
    if any(e.event == "ACCEPTED" for e in result.events):
        ibps, ibps_note = await _ibps_side(gw, payment_id)
    else:
        ibps, ibps_note = None, "rejected at acceptance: the payment never reached IBPS"
    summary = payment_summary(payment)
    first_at = result.events[0].at if result.events else payment.created_at
    timeline = [
        {
            "at": e.at,
            "offset_ms": round((e.at - first_at).total_seconds() * 1000),
            "event": e.event,
            "label": words.event_label(e.event),
            "kind": words.event_kind(e.event),
            "detail": e.detail,
        }
        for e in result.events
    ]
    msg_id = key[len("pacs.008/") :] if key and key.startswith("pacs.008/") else None
    settled_ms = (
        round((payment.settled_at - payment.created_at).total_seconds() * 1000)
        if payment.settled_at
        else None
    )
    quoted_source, quoted_target = payment.source_text(), payment.target_text()
    return {
        **summary,
        # a rejected payment's bound amounts, shown as what it would have sent and received: only
        # where they say something (both bound, so a rate was applied), and never as paid
        "would_send": f"{quoted_source} {payment.source_currency.value}"
        if not payment.moved and quoted_source and quoted_target
        else None,
        "would_receive": f"{quoted_target} {payment.target_currency.value}"
        if not payment.moved and quoted_target and payment.target_currency and quoted_source
        else None,
        "state": payment.state.value,
        "end_to_end_id": payment.end_to_end_id,
        "amount_type": payment.amount_type.value,
        "rate": decimal_text(payment.rate),
        "mid_rate": decimal_text(payment.mid_rate),
        "spread_bps": decimal_text(payment.spread_bps),
        "quote_id": payment.quote_id,
        "purpose": payment.purpose,
        "remittance_info": payment.remittance_info,
        "reason": payment.reason,
        "reason_words": words.reason_in_words(payment.reason_code, payment.reason),
        "business_date": payment.business_date.isoformat(),
        "settled_at": payment.settled_at,
        "settle_ms": settled_ms,
        "attempts": payment.attempts,
        "debtor_bank": payment.participant_id,
        "creditor_bank": payment.creditor_participant_id,
        "debtor_name": name_for(principal, debtor),
        "creditor_name": name_for(principal, creditor, payment.creditor_masked_name),
        "creditor_proxy": payment.creditor_proxy,
        "idempotency_key": key if debtor_bank_view else None,
        "timeline": timeline,
        "recovery_actions": sum(1 for e in result.events if e.event == "RECOVERY"),
        "fps": _ledger_side(fps),
        "ibps": ibps,
        "ibps_note": ibps_note,
        "pacs002": pacs002_for(payment, msg_id=msg_id, details=result.details),
        "iso20022": None if result.details is None else result.details.public(),
    }


# dashboard -----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _counter(counter: Any, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """A Prometheus counter's current values over every worker, one row per label set."""
    rows = []
    for family in metrics.families(counter):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                rows.append({**{k: sample.labels.get(k, "") for k in labels}, "count": int(sample.value)})
    return sorted(rows, key=lambda r: tuple(r[k] for k in labels))


async def dashboard(gw: Gateway, principal: Principal, *, window_s: int) -> dict[str, Any]:
    """Throughput, latency, pending payments, IBPS outcomes and limit usage, as of now."""
    window_s = min(DASHBOARD_WINDOWS_S, key=lambda w: abs(w - window_s))
    now = gw.now()
    since = now - timedelta(seconds=window_s)
    pid = principal.participant_id
    async with gw.uow() as tx:
        conn = tx.conn
        per_second = await repo.finals_per_second(conn, since=since, participant_id=pid)
        times = await repo.settle_times(conn, since=since, participant_id=pid, limit=LATENCY_SAMPLE)
        pending_count, oldest = await repo.pending(conn, participant_id=pid, limit=PENDING_SHOWN)
        busiest = await repo.busiest_accounts(
            conn, day_key=business_date(now).isoformat(), participant_id=pid, limit=BUSIEST_SHOWN
        )
    end_s = int(now.timestamp())
    start_s = end_s - window_s + 1
    series = {s: {"t": s, "settled": 0, "rejected": 0} for s in range(start_s, end_s + 1)}
    for second, state, count in per_second:
        if second in series:
            series[second]["settled" if state == State.SETTLED.value else "rejected"] += count
    points = list(series.values())
    recent = points[-10:]
    durations = sorted((settled - created).total_seconds() * 1000 for created, settled in times)
    out: dict[str, Any] = {
        "as_of": now.isoformat(),
        "window_s": window_s,
        "series": points,
        "totals": {
            "settled": sum(p["settled"] for p in points),
            "rejected": sum(p["rejected"] for p in points),
        },
        "rates": {
            "settled_per_s": round(sum(p["settled"] for p in recent) / len(recent), 2),
            "rejected_per_s": round(sum(p["rejected"] for p in recent) / len(recent), 2),
        },
        "latency_ms": {
            "count": len(durations),
            **{
                name: None if (v := percentile(durations, q)) is None else round(v, 1)
                for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
            },
        },
        "pending": {
            "count": pending_count,
            "oldest": [
                {
                    "payment_id": r["payment_id"],
                    "state": r["state"],
                    "direction": r["direction"],
                    "age_s": round((now - r["created_at"]).total_seconds(), 1),
                    "attempts": r["attempts"],
                }
                for r in oldest
            ],
        },
        "busiest": [
            {
                "account_id": r["account_id"],
                "participant_id": r["participant_id"],
                "direction": r["direction"],
                "used": f"{format_minor(r['used_minor'], Currency(r['currency']))} {r['currency']}",
                "cap": None
                if r["cap_minor"] is None
                else f"{format_minor(r['cap_minor'], Currency(r['currency']))} {r['currency']}",
                "ratio": None if not r["cap_minor"] else round(r["used_minor"] / r["cap_minor"], 4),
            }
            for r in busiest
        ],
        "operator": principal.is_operator,
    }
    if principal.is_operator:
        out["ibps_calls"] = _counter(metrics.IBPS_CALLS, ("call", "outcome"))
        out["recovery"] = _counter(metrics.RECOVERY, ("state",))
    return out


def as_json(value: Any) -> Any:
    """Datetimes as ISO text, recursively, for the dashboard's JSON."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value
