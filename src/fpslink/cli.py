"""The `fpslink` command.

The gateway's workers never import this module; the tools in `fpslink_tools` are imported inside the
commands that run them, so that serving the gateway loads none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, cast

import typer
from pydantic import ValidationError

from fpslink import logs
from fpslink.config import DEFAULT_DATA_DIR, Settings, ready_to_serve
from ibps_wire.credentials import WeakSecrets

app = typer.Typer(
    help="fpslink: a sandbox of the FPS <-> IBPS cross-border payment link. Exit codes: 0 fine, 1 "
    "violations or breaks found, 2 could not run (add --debug for the traceback).",
    no_args_is_help=True,
    add_completion=False,
)


EMBEDDED = f"the embedded PostgreSQL in {DEFAULT_DATA_DIR}/pg"
DEBUG_FLAG = "--debug"
COULD_NOT_RUN = 2
"""Every command's exit codes: 0 done and fine, 1 done and something found (invariant violations,
reconciliation breaks, money lost in a chaos run), 2 could not run (bad settings or arguments, an
unreachable database or mock_ibps), with one line that says why; the traceback only with --debug."""


def local_settings() -> Settings:
    """The settings from FPSLINK_*, with what a sandbox running from this directory recorded in
    `.fpslink/` where the environment sets nothing: its operator key and IBPS token, its mock_ibps
    (whatever `--ibps-port` it was given) and its database."""
    from fpslink_tools.local_secrets import with_local_sandbox, with_local_secrets

    data_dir = Path(DEFAULT_DATA_DIR)
    return with_local_sandbox(with_local_secrets(Settings(), data_dir), data_dir)


@contextlib.contextmanager
def database(
    configured: str, name: str = "fpslink", *, create: bool = True, existing: bool = False
) -> Iterator[str]:
    """`configured`, else database `name` on the embedded server (started for the command and
    stopped after, unless it was running already), created if missing unless told not to.

    `existing`: the command reads what a sandbox wrote, so an embedded server that was never
    initialized here is an error that says so, not a new empty one.
    """
    from fpslink_tools import embedded_pg
    from fpslink_tools.pgadmin import ensure_database

    root = Path(DEFAULT_DATA_DIR) / "pg"
    if existing and not configured and not embedded_pg.EmbeddedPostgres(root).initialized():
        print(
            f"fpslink: no sandbox data in {root.resolve()}: run this command where `fpslink sandbox` "
            "ran, or set FPSLINK_DATABASE_URL",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    # uvicorn re-raises a SIGTERM it handled once it has shut down; as SystemExit it reaches the
    # `with` below, which stops an embedded server this command started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with embedded_pg.database_url(configured, root, name) as url:
        if create and not configured:
            asyncio.run(ensure_database(url))
        yield url


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to bind (keep it local)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Gateway port")] = 8000,
    ibps_port: Annotated[int, typer.Option(help="mock_ibps port")] = 8001,
    ibps_host: Annotated[
        str, typer.Option(help="Address mock_ibps binds (loopback: only the gateway calls it)")
    ] = "127.0.0.1",
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=16,
            help="Gateway worker processes (one batch pipeline each); default half the cores, at least 1",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the whole sandbox: PostgreSQL (embedded unless FPSLINK_DATABASE_URL is set), migrations,
    mock_ibps, the demo world and the gateway. Its operator key and mock_ibps token are generated
    into .fpslink/ on the first start (unless FPSLINK_OPERATOR_KEY, FPSLINK_IBPS_TOKEN are set)."""
    from fpslink_tools.sandbox import run_sandbox

    settings = Settings()
    logs.configure(settings.log_format, os.environ.get("FPSLINK_LOG_LEVEL", "WARNING").upper())
    # With one worker uvicorn re-raises the Ctrl-C it handled once it has shut down; by then the
    # gateway, mock_ibps and the embedded PostgreSQL have stopped: a clean end, not an abort.
    with _one_line_if_port_in_use("fpslink sandbox"), contextlib.suppress(KeyboardInterrupt):
        run_sandbox(settings, host=host, port=port, ibps_host=ibps_host, ibps_port=ibps_port, workers=workers)
    print("fpslink sandbox stopped", flush=True)


@contextlib.contextmanager
def _one_line_if_port_in_use(command: str, hint: str = "") -> Iterator[None]:
    """Exit 2 with the address and what to do when another server holds the port."""
    from fpslink.serving import PortInUse

    try:
        yield
    except PortInUse as exc:
        print(f"{command}: {exc}{hint}", file=sys.stderr)
        raise typer.Exit(COULD_NOT_RUN) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply migrations first")] = True,
    insecure_local: Annotated[
        bool,
        typer.Option(
            "--insecure-local",
            help="Serve with missing, short or published secrets, on a loopback address only "
            "(FPSLINK_INSECURE_LOCAL=1)",
        ),
    ] = False,
) -> None:
    """Serve the gateway only (mock_ibps runs elsewhere: FPSLINK_IBPS_URL). Without
    FPSLINK_DATABASE_URL, on the embedded PostgreSQL. Refuses a missing, short or published
    FPSLINK_OPERATOR_KEY or FPSLINK_IBPS_TOKEN (a sandbox's in .fpslink/ serve when unset)."""
    from fpslink import serving

    settings = local_settings()
    if insecure_local:
        settings = settings.model_copy(update={"insecure_local": True})
    settings, _ = ready_to_serve(settings, hosts={"the gateway": host})  # the workers log any warning
    # the workers read their settings from the environment
    os.environ["FPSLINK_IBPS_TOKEN"] = settings.ibps_token
    if settings.operator_key:
        os.environ["FPSLINK_OPERATOR_KEY"] = settings.operator_key
    if settings.insecure_local:
        os.environ["FPSLINK_INSECURE_LOCAL"] = "1"
    with _one_line_if_port_in_use("fpslink serve", hint="; stop it, or choose another --port"):
        serving.ensure_free(host, port)  # before the database starts for nothing
    with contextlib.suppress(KeyboardInterrupt), database(settings.database_url) as url:
        os.environ["FPSLINK_DATABASE_URL"] = url
        if migrate:
            from fpslink.migrate import upgrade

            upgrade(url)
        serving.serve(
            "fpslink.app:app_from_env",
            host=host,
            port=port,
            workers=workers,
            log_level=os.environ.get("FPSLINK_LOG_LEVEL", "warning"),
        )


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply the gateway's migrations to FPSLINK_DATABASE_URL (or the embedded PostgreSQL)."""
    from fpslink.migrate import upgrade

    with database(Settings().database_url) as url:
        upgrade(url)


@app.command()
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check invariants I1-I6 across the gateway, the FPS ledger and mock_ibps; exit 1 if broken."""
    from fpslink.context import Gateway
    from fpslink.db import create_engine
    from fpslink.ibps_client import client_from_settings
    from fpslink.invariants import check_invariants

    async def run(settings: Settings) -> int:
        engine = create_engine(settings.database_url, pool_size=2)
        ibps = client_from_settings(settings)
        try:
            gw = Gateway(settings=settings, engine=engine, ibps=ibps)
            await gw.read_sandbox_offset()  # I4 ages payments by the sandbox's time
            report = await check_invariants(gw)
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
        if not report.ibps_reachable:  # a check that could not read both ledgers found nothing out
            print(
                f"fpslink check: could not read mock_ibps at {settings.ibps_url}; is the sandbox running "
                "here, or FPSLINK_IBPS_URL set?",
                file=sys.stderr,
            )
            return COULD_NOT_RUN
        return 0 if report.ok else 1

    settings = local_settings()
    with database(settings.database_url, create=False, existing=True) as url:
        code = asyncio.run(run(settings.model_copy(update={"database_url": url})))
    raise typer.Exit(code)


@app.command()
def retention(
    as_json: Annotated[bool, typer.Option("--json", help="Print each pass's report as JSON")] = False,
    max_passes: Annotated[
        int,
        typer.Option(
            min=1, max=100_000, help="Passes at most, each bounded by FPSLINK_RETENTION_MAX_BATCHES"
        ),
    ] = 100,
) -> None:
    """Purge what has outlived its retention now (the workers' job does it every
    FPSLINK_RETENTION_INTERVAL_S): passes until nothing is left, in the sandbox's time. Exit 2 when
    another process holds the job's lock."""
    from fpslink.context import Gateway
    from fpslink.db import create_engine
    from fpslink.ibps_client import client_from_settings

    async def run(settings: Settings) -> int:
        engine = create_engine(settings.database_url, pool_size=2)
        ibps = client_from_settings(settings)
        try:
            gw = Gateway(settings=settings, engine=engine, ibps=ibps)
            await gw.read_sandbox_offset()  # what is old, by the sandbox's time
            for _ in range(max_passes):
                report = await gw.retention.run_once()
                if not report.ran:
                    print(
                        "fpslink retention: another process is purging now; try again later", file=sys.stderr
                    )
                    return COULD_NOT_RUN
                if as_json:
                    print(json.dumps(report.as_json()))
                else:
                    purged = (
                        ", ".join(f"{name} {count}" for name, count in report.purged.items()) or "nothing"
                    )
                    print(f"kept from {report.kept_from}: purged {purged}; {report.carried} balances carried")
                if report.finished:
                    return 0
        finally:
            await ibps.aclose()
            await engine.dispose()
        print(f"fpslink retention: more left after {max_passes} passes; run it again", file=sys.stderr)
        return 0

    settings = local_settings()
    with database(settings.database_url, create=False, existing=True) as url:
        code = asyncio.run(run(settings.model_copy(update={"database_url": url})))
    raise typer.Exit(code)


@app.command()
def recon(
    business_date: Annotated[
        datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="UTC+8 business date")
    ],
    output: Annotated[Path, typer.Option("--output", help="File to write the report to")],
    report_format: Annotated[str, typer.Option("--format", help="json, csv or html")] = "html",
) -> None:
    """Reconcile a business date (gateway x FPS ledger x IBPS statement); exit 1 when there are breaks."""
    from fpslink.reconciliation.command import Format, run_command

    if report_format not in ("json", "csv", "html"):
        raise typer.BadParameter("--format must be json, csv or html")
    fmt = cast(Format, report_format)
    settings = local_settings()
    with database(settings.database_url, create=False, existing=True) as url:
        code = asyncio.run(
            run_command(
                settings.model_copy(update={"database_url": url}),
                business_date=business_date.date(),
                fmt=fmt,
                output=output,
            )
        )
    raise typer.Exit(code)


@app.command()
def chaos(
    payments: Annotated[int, typer.Option(min=1, max=1_000_000, help="Payments to send")] = 1000,
    fault_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of IBPS calls that misbehave")
    ] = 0.1,
    kills: Annotated[int, typer.Option(min=0, max=100, help="Times the gateway is SIGKILLed")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the payments and the faults")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=512)] = 32,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Gateway worker processes")] = 2,
    database_url: Annotated[
        str,
        typer.Option(
            help="PostgreSQL database to create for the run (and <name>_ibps beside it)"
            f" [default: fpslink_chaos on {EMBEDDED}]"
        ),
    ] = "",
    port: Annotated[int, typer.Option()] = 18700,
    ibps_port: Annotated[int, typer.Option()] = 18701,
    max_seconds: Annotated[float, typer.Option(help="Bound on the driving phase")] = 1800.0,
    keep_databases: Annotated[bool, typer.Option(help="Keep the run's databases for inspection")] = False,
) -> None:
    """Chaos run on PostgreSQL: faults and gateway kills, then an audit; exit 1 on any loss."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from fpslink_tools import chaos as chaos_run
    from fpslink_tools.pgadmin import ForeignDatabase

    console = Console()
    try:
        with (
            database(database_url, "fpslink_chaos", create=False) as url,
            Progress(console=console, transient=True) as bar,
        ):
            cfg = chaos_run.ChaosConfig(
                payments=payments,
                fault_rate=fault_rate,
                kills=kills,
                seed=seed,
                concurrency=concurrency,
                workers=workers,
                database_url=url,
                port=port,
                ibps_port=ibps_port,
                max_seconds=max_seconds,
                keep_databases=keep_databases,
            )
            task = bar.add_task("payments", total=payments)
            report = asyncio.run(chaos_run.run(cfg, progress=lambda done: bar.update(task, completed=done)))
    except ForeignDatabase as exc:
        console.print(f"[red]fpslink chaos:[/red] {exc}")
        raise typer.Exit(COULD_NOT_RUN) from None
    table = Table(title=f"fpslink chaos: {payments} payments, fault rate {fault_rate}, seed {seed}")
    table.add_column("what")
    table.add_column("result", justify="right")
    for status, count in sorted(report.by_status.items()):
        table.add_row(f"payments {status}", str(count))
    for code, count in sorted(report.by_reason.items()):
        table.add_row(f"  rejected {code}", str(count))
    for call, kinds in sorted(report.faults_injected.items()):
        for kind, count in sorted(kinds.items()):
            table.add_row(f"faults injected: {call} {kind}", str(count))
    table.add_row("gateway kills", str(report.kills))
    table.add_row("client retries (same key)", str(report.client_retries))
    for label, amount in sorted(report.money_drift.items()):
        table.add_row(f"money created (+) or lost (-): {label}", f"{amount}")
    for label, amount in sorted(report.holds_left.items()):
        table.add_row(f"holds left: {label}", f"{amount}")
    table.add_row("payments still PENDING", str(report.pending))
    table.add_row("payments never answered", str(report.unanswered))
    table.add_row("invariant violations (I1-I6)", str(len(report.invariant_violations)))
    table.add_row("driving time (s)", f"{report.drive_seconds:.1f}")
    table.add_row("total time (s)", f"{report.total_seconds:.1f}")
    console.print(table)
    for line in report.invariant_violations[:20]:
        console.print(f"[red]VIOLATION[/red] {line}")
    console.print(
        "[green]OK: no money lost or created, no holds, nothing stuck[/green]"
        if report.ok
        else "[red]FAILED[/red]"
    )
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def loadtest(
    workers: Annotated[int, typer.Option(min=1, max=16, help="Gateway worker processes")] = 2,
    duration: Annotated[
        str, typer.Option(help="How long locust runs: 60s, 2m, 1h30m or seconds (with --shape: one day)")
    ] = "60s",
    users: Annotated[int, typer.Option(min=1, max=10_000, help="Locust users (with --shape: the peak)")] = 20,
    locust_processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Locust processes: above 1, a master and that many workers on this machine",
        ),
    ] = 1,
    spawn_rate: Annotated[
        float | None, typer.Option(min=0.1, max=10_000, help="Users started per second [default: users/5]")
    ] = None,
    shape: Annotated[
        bool, typer.Option(help="Replay the 24-hour DayShape of loadtests/locustfile.py over --duration")
    ] = False,
    database_url: Annotated[
        str,
        typer.Option(
            help="PostgreSQL database to drop and create for the run (and <name>_ibps)"
            f" [default: fpslink_loadtest on {EMBEDDED}]"
        ),
    ] = "",
    port: Annotated[int, typer.Option(min=1, max=65_535, help="Gateway port on 127.0.0.1")] = 18720,
    ibps_port: Annotated[int, typer.Option(min=1, max=65_535, help="mock_ibps port on 127.0.0.1")] = 18721,
    keep_databases: Annotated[bool, typer.Option(help="Keep the run's databases for inspection")] = False,
    output: Annotated[
        Path | None, typer.Option(help="Directory for every result [default: ./loadtest-<timestamp>]")
    ] = None,
) -> None:
    """Load test on PostgreSQL: locust against a fresh stack, then invariants and reconciliation."""
    from rich.console import Console
    from rich.markup import escape

    from fpslink_tools import loadtest as load

    if load.locust_missing():
        print(load.install_hint())
        raise typer.Exit(COULD_NOT_RUN)
    try:
        duration_s = load.parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--duration") from None
    console = Console(log_path=False)
    try:
        with database(database_url, "fpslink_loadtest", create=False) as url:
            cfg = load.LoadtestConfig(
                workers=workers,
                duration_s=duration_s,
                users=users,
                spawn_rate=spawn_rate,
                shape=shape,
                database_url=url,
                port=port,
                ibps_port=ibps_port,
                keep_databases=keep_databases,
                output=output or Path(f"loadtest-{datetime.now():%Y%m%d-%H%M%S}"),
                locust_processes=locust_processes,
            )
            report = asyncio.run(load.run_until_terminated(cfg, say=lambda line: console.log(line)))
    except load.LoadtestError as exc:
        console.print(f"[red]fpslink loadtest:[/red] {exc}")
        raise typer.Exit(COULD_NOT_RUN) from None
    except load.Terminated as exc:
        console.print(f"[red]fpslink loadtest:[/red] {exc}")
        raise typer.Exit(143) from None
    console.print(load.summary_table(report))
    for failure in report.failure_kinds[:10]:
        console.print(f"[red]FAILURE[/red] {escape(load.failure_line(failure))}")
    for line in report.invariant_violations[:20]:
        console.print(f"[red]VIOLATION[/red] {escape(line)}")
    console.print(f"results in {cfg.output}/ (summary.json, locust.html, recon-*.html)")
    console.print(
        "[green]OK: no failures, no violations, no breaks[/green]"
        if report.ok
        else f"[red]FAILED[/red]: {'; '.join(report.problems)}"
    )
    raise typer.Exit(0 if report.ok else 1)


def main() -> None:
    debug = DEBUG_FLAG in sys.argv[1:]
    if debug:
        sys.argv.remove(DEBUG_FLAG)
    try:
        app()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
        print("fpslink: invalid settings (FPSLINK_* environment variables):", *lines, sep="\n")
        raise SystemExit(COULD_NOT_RUN) from None
    except WeakSecrets as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(COULD_NOT_RUN) from None
    except Exception as exc:
        if debug:
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"fpslink: could not run: {type(exc).__name__}{': ' + reason if reason else ''} "
            f"(run again with {DEBUG_FLAG} for the traceback)",
            file=sys.stderr,
        )
        raise SystemExit(COULD_NOT_RUN) from None


if __name__ == "__main__":
    main()
