"""Southbound only: mainland banks (IBPS) look up and pay Hong Kong mobile numbers or accounts.

The world still has HK banks, as the payees; nobody sends from them. With LOADTEST_SHAPE=day the
users send nothing while the simulated hour is outside FPSLINK_SOUTHBOUND_HOURS and only look up,
poll and read limits. Run: locust -f loadtests/scenarios/southbound.py ...
"""

from __future__ import annotations

import sys
from pathlib import Path

# Locust puts scenarios/ on sys.path, not loadtests/ where the fpsload package lives
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from fpsload.day import DayShape
from fpsload.personas import MainlandBank

__all__ = ["DayShape", "MainlandBank"]
