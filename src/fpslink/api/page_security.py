"""The headers of every HTML page the gateway serves: the console, the reconciliation report (in the
console and over the API) and the API docs.

Each page names what may run on it in a Content-Security-Policy: files from this server, and inline
blocks only by their SHA-256, so an injected script or style has nowhere to run and nothing loads
from the network. No page is sniffed into another type, framed by another site, or cached.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from starlette.responses import Response

CONSOLE_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The console's pages: scripts and styles only from /console/static, nothing inline."""

_INLINE = {
    "style": re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL | re.IGNORECASE),
    "script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE),
}


def secure_headers(response: Response, csp: str = CONSOLE_CSP) -> Response:
    """Set the page headers on `response` (and return it)."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def inline_sources(html: str, tag: str) -> str:
    """The CSP source list that allows exactly the page's inline <style> or <script> blocks, by
    hash; 'none' when it has none."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
        for block in _INLINE[tag].findall(html)
    ]
    return " ".join(hashes) or "'none'"


def report_csp(html: str) -> str:
    """A reconciliation report's policy: its own inline styles, no script, nothing from the network.
    The console may frame it (same origin); no other site may."""
    return (
        f"default-src 'none'; style-src {inline_sources(html, 'style')}; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )
