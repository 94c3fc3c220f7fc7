"""Every error and rejection code the gateway can answer is in the one table of docs/errors.md."""

from __future__ import annotations

import re
from pathlib import Path

from fpslink.api.problems import HTTP_CODES

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "src" / "fpslink"
PATTERNS = (
    re.compile(r"code=\"([A-Z][A-Z0-9_]+)\""),
    re.compile(r"default_code = \"([A-Z][A-Z0-9_]+)\""),
    re.compile(r"(?:Rejection|Refusal)\(\s*\"([A-Z][A-Z0-9_]+)\""),
    re.compile(r"(?:Reason|refuse)\(\s*\"([A-Z][A-Z0-9_]+)\""),
    re.compile(r"reason_code=\"([A-Z][A-Z0-9_]+)\""),
    re.compile(r"problem_response\(\s*\d{3},\s*\"([A-Z][A-Z0-9_]+)\""),
)


def codes_in_source() -> set[str]:
    found: set[str] = set(HTTP_CODES.values())
    for path in SOURCES.rglob("*.py"):
        text = path.read_text()
        for pattern in PATTERNS:
            found.update(pattern.findall(text))
    return found


def documented() -> set[str]:
    text = (ROOT / "docs" / "errors.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", text, flags=re.MULTILINE))


def test_every_code_in_the_source_is_documented() -> None:
    missing = codes_in_source() - documented()
    assert not missing, f"add these codes to docs/errors.md: {sorted(missing)}"


def test_the_scan_finds_the_codes_it_should() -> None:
    assert {
        "BE23",
        "AM04",
        "NOT_CROSS_BORDER",
        "IDEMPOTENCY_KEY_REUSED",
        "ISO20022_MALFORMED",
        "FF01",
        "AG08",
        "CH20",
    } <= codes_in_source()
