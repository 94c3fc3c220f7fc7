"""The certificate: one self-contained HTML page (inline CSS, no script, every value escaped by
Jinja2), like the reconciliation report."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from fpslink.certification.service import RunView

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def certificate(view: RunView) -> str:
    return _env.get_template("certificate.html.j2").render(
        run=view.run, scenarios=view.scenarios, passed=view.passed, failed=view.failed
    )
