"""Apply the gateway's Alembic migrations from code (the sandbox and tests do this on start)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from ibps_wire import migrate as migrations


def migrations_dir() -> Path:
    """The packaged copy in a wheel, else the repository's `migrations/` (editable install)."""
    packaged = Path(__file__).resolve().parent / "_migrations"
    if packaged.is_dir():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "migrations"
    if repo.is_dir():
        return repo
    raise RuntimeError("gateway migrations not found: reinstall fpslink")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Migrate the gateway's database; from inside a running event loop the work moves to a thread."""
    migrations.upgrade(alembic_config(database_url), revision, thread_name="fpslink-migrate")
