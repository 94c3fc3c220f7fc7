"""The compose profile `observe`'s files as the tests read them: the PromQL expressions of the
Grafana dashboard and of Prometheus's rules, and the metric names and label matchers in them.

No PromQL parser is at hand offline, so this reads what a typo would break: every `fpslink_*`
name an expression uses (a name is a word that starts with `fpslink_`; recording rules' names have
colons, and PromQL's functions, keywords and labels are not prefixed), and the labels each
selector matches on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "docker" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
PROMETHEUS_RULES = PROMETHEUS_DIR / "rules.yml"
GRAFANA_DIR = ROOT / "docker" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "fpslink.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "fpslink.yml"

_SELECTOR = re.compile(r"\b(fpslink_[a-z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"[^\"]*\"")


@dataclass(frozen=True)
class Expression:
    where: str
    """A panel's title and query (`panel "Throughput" A`) or a rule's name."""
    text: str


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PROMETHEUS_RULES.read_text(encoding="utf-8"))
    return loaded


def expressions() -> list[Expression]:
    """Every PromQL expression the dashboard's panels and Prometheus's rules evaluate."""
    found = [
        Expression(f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]
    for group in rules()["groups"]:
        for rule in group["rules"]:
            found.append(Expression(f"rule {rule.get('alert') or rule.get('record')}", str(rule["expr"])))
    return found


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) of each `fpslink_*` selector in `expr`."""
    return [
        (name, {label for label, _ in _MATCHER.findall(braces or "")})
        for name, braces in _SELECTOR.findall(expr)
    ]


def balanced(expr: str) -> bool:
    """Brackets of every kind open and close in order, outside strings."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"[^"]*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack
