"""Imports every table so that `metadata` is complete (for Alembic and the invariant check)."""

from fpslink.certification.models import (
    certification_observations,
    certification_runs,
    certification_scenarios,
)
from fpslink.console.models import console_login_attempts, console_sessions_ended
from fpslink.db import metadata
from fpslink.directory.models import proxies
from fpslink.fx.models import quotes
from fpslink.idempotency.models import idempotency_keys
from fpslink.iso20022.models import iso20022_transactions
from fpslink.ledger.models import ledger_accounts, ledger_transfers
from fpslink.limits.models import limit_usage
from fpslink.participants.models import accounts, api_keys, participants
from fpslink.payments.models import payment_events, payments
from fpslink.ratelimit.models import rate_buckets
from fpslink.reconciliation.models import recon_breaks, recon_runs
from fpslink.retention.models import limit_usage_carried, retention_horizon
from fpslink.webhooks.models import webhook_deliveries, webhooks

__all__ = [
    "accounts",
    "api_keys",
    "certification_observations",
    "certification_runs",
    "certification_scenarios",
    "console_login_attempts",
    "console_sessions_ended",
    "idempotency_keys",
    "iso20022_transactions",
    "ledger_accounts",
    "ledger_transfers",
    "limit_usage",
    "limit_usage_carried",
    "metadata",
    "participants",
    "payment_events",
    "payments",
    "proxies",
    "quotes",
    "rate_buckets",
    "recon_breaks",
    "recon_runs",
    "retention_horizon",
    "webhook_deliveries",
    "webhooks",
]
