"""Settings of the mock_ibps service, read from ``MOCK_IBPS_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the service keeps its ledger, who may call it, and where it listens."""

    model_config = SettingsConfigDict(env_prefix="MOCK_IBPS_", extra="ignore")

    # No default database: empty until set, and whatever needs the database then says how to set it.
    database_url: str = Field(
        default="",
        description="PostgreSQL 14+ URL, postgresql+asyncpg://user@host:port/db; empty: not configured",
    )
    # An empty token would let any caller in; refuse it rather than run open.
    token: str = Field(default="ibps-sandbox-token", min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
