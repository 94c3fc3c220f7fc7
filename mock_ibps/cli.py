"""The ``mock-ibps`` command: ``serve`` (migrating first unless told not to), ``migrate`` and ``retention``.

On typer, like the gateway's ``fpslink`` command. The defaults of ``--host`` and ``--port`` come from
:class:`mock_ibps.config.Settings` (``MOCK_IBPS_HOST``, ``MOCK_IBPS_PORT``) when a command runs, not
when this module is imported, so the environment of the moment counts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from ibps_wire.credentials import WeakSecrets
from mock_ibps import migrate as migrations
from mock_ibps.config import Settings, ready_to_serve
from mock_ibps.db import DatabaseNotConfigured, create_engine, require_database_url

app = typer.Typer(
    help="Simulated mainland IBPS for the fpslink sandbox. "
    "The database (PostgreSQL 14+) comes from MOCK_IBPS_DATABASE_URL.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _database_url() -> str:
    """MOCK_IBPS_DATABASE_URL; both commands need it, so its absence says how to set it (exit 2)
    rather than a traceback from deep inside."""
    url = Settings().database_url
    try:
        require_database_url(url)
    except DatabaseNotConfigured as exc:
        print(f"mock-ibps: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    return url


def _default_host() -> str:
    return Settings().host


def _default_port() -> int:
    return Settings().port


@app.command(help="migrate the database, then serve HTTP")
def serve(
    host: Annotated[
        str,
        typer.Option(
            default_factory=_default_host,
            show_default=f"MOCK_IBPS_HOST, else {Settings.model_fields['host'].default}",
        ),
    ],
    port: Annotated[
        int,
        typer.Option(
            default_factory=_default_port,
            show_default=f"MOCK_IBPS_PORT, else {Settings.model_fields['port'].default}",
        ),
    ],
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="do not run migrations before serving")
    ] = False,
    insecure_local: Annotated[
        bool,
        typer.Option(
            "--insecure-local",
            help="serve with a missing, short or published MOCK_IBPS_TOKEN, on a loopback address "
            "only (MOCK_IBPS_INSECURE_LOCAL=1)",
        ),
    ] = False,
) -> None:
    """Serve mock_ibps's API with uvicorn; the gateway's sandbox starts it with --no-migrate.

    MOCK_IBPS_TOKEN must be a secret of the install's own (ibps_wire/credentials.py): checked
    before the migrations, so a refused start changes nothing.
    """
    url = _database_url()
    settings = Settings()
    if insecure_local:
        settings = settings.model_copy(update={"insecure_local": True})
        os.environ["MOCK_IBPS_INSECURE_LOCAL"] = "1"  # the app factory reads its settings again
    try:
        _, warnings = ready_to_serve(settings, host=host)
    except WeakSecrets as exc:
        print(exc, file=sys.stderr)
        raise typer.Exit(2) from None
    for warning in warnings:
        print(warning, file=sys.stderr)
    if not no_migrate:
        migrations.upgrade(url)
    import uvicorn  # only the serve command needs it

    uvicorn.run(
        "mock_ibps.app:serve_app",
        factory=True,
        host=host,
        port=port,
        log_level=os.environ.get("MOCK_IBPS_LOG_LEVEL", "warning"),
    )


@app.command("migrate", help="bring the database up to the latest migration")
def migrate_cmd() -> None:
    """Apply mock_ibps's migrations to MOCK_IBPS_DATABASE_URL."""
    migrations.upgrade(_database_url())


@app.command("retention", help="purge what has outlived MOCK_IBPS_RETENTION_DAYS now, until nothing is left")
def retention_cmd(
    max_passes: Annotated[int, typer.Option(min=1, max=100_000, help="passes at most")] = 100,
) -> None:
    """Run retention passes in IBPS's time (its sandbox clock); exit 2 when another process holds the
    job's lock. The service's own job does the same every MOCK_IBPS_RETENTION_INTERVAL_S."""
    import asyncio

    from mock_ibps.clock import IbpsClock
    from mock_ibps.retention import IbpsRetention

    url = _database_url()

    async def run() -> int:
        engine = create_engine(url)
        try:
            clock = IbpsClock(engine)
            await clock.read()
            job = IbpsRetention(engine, clock=clock.now, settings=Settings())
            for _ in range(max_passes):
                report = await job.run_once()
                if not report.ran:
                    print(
                        "mock-ibps retention: another process is purging now; try again later",
                        file=sys.stderr,
                    )
                    return 2
                print(
                    f"kept from {report.kept_from}: purged {report.transfers} transfers; "
                    f"{report.carried} balances carried"
                )
                if report.finished:
                    return 0
            print(f"mock-ibps retention: more left after {max_passes} passes; run it again", file=sys.stderr)
            return 0
        finally:
            await engine.dispose()

    code = asyncio.run(run())
    if code:
        raise typer.Exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mock-ibps`` with ``argv`` (else the process's arguments); 0 once the command is done.

    Usage errors still leave through SystemExit (code 2), as they do from any command line; the
    return value keeps ``raise SystemExit(main())`` and callers that check for 0 working.
    """
    try:
        app(args=None if argv is None else list(argv), prog_name="mock-ibps")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
