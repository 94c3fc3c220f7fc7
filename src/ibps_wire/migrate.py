"""Alembic's upgrade from code, for both services; each keeps its own scripts and version table."""

from __future__ import annotations

import asyncio
import threading

from alembic import command
from alembic.config import Config


def upgrade(config: Config, revision: str = "heads", *, thread_name: str = "migrate") -> None:
    """Bring the database that ``config`` names up to ``revision``.

    Each service's env.py drives its async engine with ``asyncio.run``, which cannot nest in a
    running loop; called from a loop's thread, the migration runs on a worker thread instead
    (blocking the caller) and its failure is raised here.
    """
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

    worker = threading.Thread(target=run, name=thread_name)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
