"""Settings of the mock_ibps service, read from ``MOCK_IBPS_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibps_wire import credentials


class Settings(BaseSettings):
    """Where the service keeps its ledger, who may call it, and where it listens."""

    model_config = SettingsConfigDict(env_prefix="MOCK_IBPS_", extra="ignore")

    # No default database: empty until set, and whatever needs the database then says how to set it.
    database_url: str = Field(
        default="",
        description="PostgreSQL 14+ URL, postgresql+asyncpg://user@host:port/db; empty: not configured",
    )
    token: str = Field(
        default="",
        description="Bearer token of the one caller, the gateway (its FPSLINK_IBPS_TOKEN): required to "
        "serve, 32+ characters and never a published value. Unset, every call but /healthz is refused.",
    )
    insecure_local: bool = Field(
        default=False,
        description="Serve with a missing, short or published token, on a loopback address only; an "
        "unset token is then the published sandbox one.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address to bind: loopback, since only the gateway on this machine calls it; a "
        "gateway elsewhere needs it widened (`--host`), and then a private network.",
    )
    port: int = Field(default=8001, ge=1, le=65535)
    retention_enabled: bool = Field(
        default=True,
        description="Run the retention job in the background (one process at a time purges: a lock "
        "in the database). Off, transfers are kept for ever.",
    )
    retention_days: int = Field(
        default=31,
        ge=1,
        le=3_660,
        description="Business dates (UTC+8) kept besides today: a payment's transfer, once resolved, "
        "is purged with its date (balances carried forward) and that date's statements are refused. "
        "Keep at least one day more than the gateway's FPSLINK_PAYMENT_RETENTION_DAYS (30), so that "
        "its oldest day still finds the entries booked the day before.",
    )
    retention_interval_s: float = Field(
        default=60.0, gt=0, le=86_400, description="Pause between two passes of the retention job."
    )
    retention_batch_size: int = Field(
        default=2_000, ge=10, le=50_000, description="Transfers one retention transaction deletes."
    )
    retention_max_batches: int = Field(
        default=100, ge=1, le=100_000, description="Batches in one pass; what is left waits for the next."
    )


INSECURE_SWITCH = "MOCK_IBPS_INSECURE_LOCAL=1 (or `mock-ibps serve --insecure-local`)"


def ready_to_serve(settings: Settings, *, host: str | None = None) -> tuple[Settings, list[str]]:
    """The settings mock_ibps serves with and the warnings to print; `WeakSecrets` when its token is
    missing, short or published, or when the insecure local mode would listen on `host` beyond
    loopback. Its token is the gateway's identity: a holder can credit any account (ibps_wire
    /credentials.py)."""
    if settings.insecure_local and not settings.token:
        settings = settings.model_copy(update={"token": credentials.INSECURE_LOCAL_IBPS_TOKEN})
    hosts: Mapping[str, str] | None = {"mock_ibps": host} if host is not None else None
    warnings = credentials.check(
        "mock-ibps",
        [
            credentials.SecretSpec(
                "MOCK_IBPS_TOKEN", settings.token, note="the gateway's FPSLINK_IBPS_TOKEN must be the same"
            )
        ],
        insecure_local=settings.insecure_local,
        insecure_switch=INSECURE_SWITCH,
        hosts=hosts,
    )
    return settings, warnings
