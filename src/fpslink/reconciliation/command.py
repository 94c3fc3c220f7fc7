"""`fpslink recon`: run a reconciliation from the command line, with a progress bar, into a file."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fpslink.config import Settings
from fpslink.context import Gateway
from fpslink.db import create_engine
from fpslink.ibps_client import client_from_settings
from fpslink.reconciliation import render
from fpslink.reconciliation.service import ReconciliationService

Format = Literal["json", "csv", "html"]


async def write_report(recon: ReconciliationService, run_id: str, fmt: Format, output: Path) -> None:
    """Render a stored run into `output`, streaming JSON and CSV so a large run stays small in memory."""
    run = await recon.get_run(run_id)
    with output.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "html":
            breaks = recon.iter_breaks(run_id, limit=render.HTML_MAX_BREAKS)
            handle.write(await render.html(run, breaks))
            return
        chunks = render.csv_chunks if fmt == "csv" else render.json_chunks
        async for chunk in chunks(run, recon.iter_breaks(run_id)):
            handle.write(chunk)


async def run_command(settings: Settings, *, business_date: date, fmt: Format, output: Path) -> int:
    """Reconcile, write the report, print the headline; exit status 1 when there are breaks."""
    console = Console(stderr=True)
    engine = create_engine(settings.database_url, pool_size=2)
    ibps = client_from_settings(settings)
    gw = Gateway(settings=settings, engine=engine, ibps=ibps)
    try:
        await gw.read_sandbox_offset()  # a date has begun, and a payment is stuck, by the sandbox's time
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            loading = bar.add_task("IBPS statement", total=None)
            matching = bar.add_task("matching", total=3, visible=False)

            def progress(phase: str, done: int, total: int | None) -> None:
                if phase == "statement":
                    bar.update(loading, completed=done, total=total)
                else:
                    if bar.tasks[loading].total is None:
                        bar.update(loading, total=bar.tasks[loading].completed)
                    bar.update(matching, completed=done, total=total, visible=True)

            run_id = await gw.reconciliation.reconcile(business_date=business_date, progress=progress)
        await write_report(gw.reconciliation, run_id, fmt, output)
        run = await gw.reconciliation.get_run(run_id)
    finally:
        await ibps.aclose()
        await engine.dispose()
    breaks = run.summary.get("breaks_by_type", {})
    listed = ", ".join(f"{kind} {n}" for kind, n in breaks.items() if n) or "none"
    timing = run.summary.get("timing_differences", {}).get("count", 0)
    console.print(
        f"reconciliation {run_id} of {business_date.isoformat()}: {run.break_count} breaks ({listed}); "
        f"{timing} timing differences across midnight (not breaks); "
        f"{run.summary.get('statement_entries', 0)} IBPS entries; report written to {output}"
    )
    return 1 if run.break_count else 0
