"""Northbound only: HK banks (FPS) look up, quote and pay mainland mobile numbers.

The world still has mainland banks, as the payees; nobody sends from them. LOADTEST_SHAPE=day
replays the 24-hour day here too. Run: locust -f loadtests/scenarios/northbound.py ...
"""

from __future__ import annotations

import sys
from pathlib import Path

# Locust puts scenarios/ on sys.path, not loadtests/ where the fpsload package lives
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from fpsload.day import DayShape
from fpsload.personas import HongKongBank

__all__ = ["DayShape", "HongKongBank"]
