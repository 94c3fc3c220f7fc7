"""The ``mock-ibps`` command: ``serve`` (migrating first unless told not to) and ``migrate``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mock_ibps.config import Settings
from mock_ibps.db import DatabaseNotConfigured, require_database_url
from mock_ibps.migrate import upgrade


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mock-ibps",
        description="Simulated mainland IBPS for the fpslink sandbox. "
        "The database (PostgreSQL 14+) comes from MOCK_IBPS_DATABASE_URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations before serving")
    commands.add_parser("migrate", help="bring the database up to the latest migration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    settings = Settings()
    args = _parser(settings).parse_args(argv)
    try:
        require_database_url(settings.database_url)
    except DatabaseNotConfigured as exc:
        # Both commands need the database: say how to set it, not a traceback from deep inside.
        print(f"mock-ibps: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        upgrade(settings.database_url)
        return 0
    if not args.no_migrate:
        upgrade(settings.database_url)
    import uvicorn  # only the serve command needs it

    uvicorn.run(
        "mock_ibps.app:serve_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=os.environ.get("MOCK_IBPS_LOG_LEVEL", "warning"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
