"""Run mock_ibps's alembic migrations from code: no alembic.ini; the scripts ship in the package."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from ibps_wire import migrate as migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Its own version table, so the gateway's alembic history never collides with ours in one database.
VERSION_TABLE = "mock_ibps_alembic_version"


def alembic_config(database_url: str) -> Config:
    """Build the alembic Config in code; the URL rides in ``attributes``, safe from '%' parsing."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Bring the database at ``database_url`` up to ``revision``; from inside a running event loop
    the migration runs on a worker thread (``ibps_wire.migrate``)."""
    migrations.upgrade(alembic_config(database_url), revision, thread_name="mock-ibps-migrate")
