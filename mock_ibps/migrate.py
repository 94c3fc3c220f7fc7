"""Run mock_ibps's alembic migrations from code: no alembic.ini; the scripts ship in the package."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

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
    """Bring the database at ``database_url`` up to ``revision``.

    env.py drives the async engine with ``asyncio.run``, which cannot nest in a running loop; called
    from a loop's thread, the migration runs on a worker thread instead (blocking the caller).
    """
    config = alembic_config(database_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(config, revision)
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            command.upgrade(config, revision)
        except BaseException as exc:  # handed back to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name="mock-ibps-migrate")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
