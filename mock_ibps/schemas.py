"""The wire's response models (``ibps_wire.schemas``) built from this service's records.

The records are the ledger's own, so the models are built without validation (``trusted`` on the
batch path, ``model_construct`` elsewhere); their serialisers write amounts as decimal strings.
"""

from __future__ import annotations

from ibps_wire.enums import Reason
from ibps_wire.schemas import (
    AccountOut,
    PrepareOut,
    Problem,
    ProxyOut,
    ProxyRegistered,
    TransferOut,
    trusted,
)
from mock_ibps.domain import Account, PrepareResult, Proxy, Transfer
from mock_ibps.errors import IbpsError, error_body


def account_out(account: Account) -> AccountOut:
    return AccountOut.model_construct(
        account_id=account.account_id,
        participant_id=account.participant_id,
        holder_name=account.holder_name,
        currency=account.currency,
        balance_minor=account.balance_minor,
        held_minor=account.held_minor,
        available_minor=account.available_minor,
    )


def proxy_registered(proxy: Proxy) -> ProxyRegistered:
    return ProxyRegistered.model_construct(
        proxy_type=proxy.proxy_type,
        proxy_value=proxy.proxy_value,
        account_id=proxy.account_id,
        participant_id=proxy.participant_id,
    )


def proxy_out(proxy: Proxy) -> ProxyOut:
    return ProxyOut.model_construct(
        proxy_type=proxy.proxy_type,
        proxy_value=proxy.proxy_value,
        account_id=proxy.account_id,
        participant_id=proxy.participant_id,
        holder_name=proxy.holder_name,
        currency=proxy.currency,
    )


def _reason(code: str | None) -> Reason | None:
    return None if code is None else Reason(code)


def transfer_out(transfer: Transfer) -> TransferOut:
    return trusted(
        TransferOut,
        seq=transfer.seq,
        payment_id=transfer.payment_id,
        kind=transfer.kind,
        account_id=transfer.account_id,
        debit_account_id=transfer.debit_account_id,
        credit_account_id=transfer.credit_account_id,
        amount_minor=transfer.amount_minor,
        currency=transfer.currency,
        status=transfer.status,
        reason_code=_reason(transfer.reason_code),
        created_at=transfer.created_at,
        resolved_at=transfer.resolved_at,
    )


def prepare_out(result: PrepareResult) -> PrepareOut:
    return trusted(
        PrepareOut,
        outcome=result.outcome,
        reason_code=_reason(result.reason_code),
        reason=result.reason,
        transfer=transfer_out(result.transfer),
    )


def problem(error: IbpsError) -> Problem:
    """The problem+json body of an error, as the batch answers it for an item."""
    return Problem.model_construct(**error_body(error))
