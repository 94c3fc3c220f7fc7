"""The `fpslink` command."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated

import typer
from pydantic import ValidationError

from fpslink.config import Settings

app = typer.Typer(
    help="fpslink: a sandbox of the FPS <-> IBPS cross-border payment link.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to bind (keep it local)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Gateway port")] = 8000,
    ibps_port: Annotated[int, typer.Option(help="mock_ibps port")] = 8001,
) -> None:
    """Run the whole sandbox: migrate, start mock_ibps, seed the demo world, serve the gateway."""
    from fpslink.sandbox import run_sandbox

    run_sandbox(Settings(), host=host, port=port, ibps_port=ibps_port)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply migrations first")] = True,
) -> None:
    """Serve the gateway only (mock_ibps runs elsewhere: FPSLINK_IBPS_URL)."""
    import uvicorn

    settings = Settings()
    if migrate:
        from fpslink.migrate import upgrade

        upgrade(settings.database_url)
    uvicorn.run(
        "fpslink.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=os.environ.get("FPSLINK_LOG_LEVEL", "warning"),
    )


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply the gateway's migrations to FPSLINK_DATABASE_URL."""
    from fpslink.migrate import upgrade

    upgrade(Settings().database_url)


@app.command()
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check invariants I1-I6 across the gateway, the FPS ledger and mock_ibps; exit 1 if broken."""
    from fpslink.context import Gateway
    from fpslink.db import create_engine
    from fpslink.ibps_client import IbpsClient
    from fpslink.invariants import check_invariants

    settings = Settings()

    async def run() -> int:
        engine = create_engine(settings.database_url, pool_size=2)
        ibps = IbpsClient(
            base_url=settings.ibps_url, token=settings.ibps_token, timeout_s=settings.ibps_timeout_s
        )
        try:
            report = await check_invariants(Gateway(settings=settings, engine=engine, ibps=ibps))
        finally:
            await ibps.aclose()
            await engine.dispose()
        if as_json:
            print(
                json.dumps(
                    {
                        "ok": report.ok,
                        "violations": report.violations,
                        "payments": report.payments_by_state,
                        "fps_balances_minor": report.fps_balances,
                        "ibps_balances": report.ibps_balances,
                    },
                    indent=2,
                )
            )
        else:
            print(f"payments by state: {report.payments_by_state or 'none'}")
            print(f"FPS ledger sums (minor units): {report.fps_balances}")
            print(f"IBPS ledger sums: {report.ibps_balances}")
            if report.ok:
                print("all invariants hold (I1-I6)")
            for line in report.violations:
                print(f"VIOLATION {line}")
        return 0 if report.ok else 1

    raise typer.Exit(asyncio.run(run()))


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
        print("fpslink: invalid settings (FPSLINK_* environment variables):", *lines, sep="\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
