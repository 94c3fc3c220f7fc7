"""A first realistic load mix for the fpslink gateway: the default scenario, both personas.

Two personas call the public API (v1) with the keys of banks the run creates for itself:

* an HK bank (FPS): looks up +86 mobile numbers, asks for HKD->CNY quotes, sends northbound payments
  by proxy (some with a quote), polls their status and checks its customers' remaining limits;
* a mainland bank (IBPS): looks up +852 numbers, sends southbound payments by proxy or account
  number, polls them and checks limits.

At test start the operator key (FPSLINK_OPERATOR_KEY) creates two banks per system, accounts with
large balances and a mobile number for each. Every set-up request carries an Idempotency-Key derived
from LOADTEST_RUN_ID, so a rerun with the same id finds the same banks, keys and accounts again (for
as long as the gateway keeps idempotency keys); without it each run starts a fresh world.

Each virtual user tracks the daily limit and the funds of its bank's accounts and sends ordinary
payments only where they fit, opening another account when the pool runs dry. An ordinary payment that
is not SETTLED or PENDING is therefore a failure. On top of that a small share of requests is:

* a retry with the same Idempotency-Key and body: 201/202 with `Idempotent-Replayed: true`, same id;
* invalid (bad amount, missing field, key reused with another body, number without +): 422 with the
  expected problem `code`;
* a limit breach: 201 with status REJECTED and reason_code AM02 or AM14.

With LOADTEST_SHAPE=day the user count follows a simulated 24-hour day (DayShape, HOURLY_PEAK_SHARE)
compressed into LOADTEST_DAY_SECONDS, and mainland banks send no southbound payment while the
simulated hour is outside the southbound service window (FPSLINK_SOUTHBOUND_HOURS).

This file only picks what runs; the personas and everything they share live in the fpsload package
beside it, and loadtests/scenarios/ holds mixes of one persona each. Environment: see
loadtests/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Locust puts this file's directory on sys.path while it imports the file; a plain import by path
# does not, so make the fpsload package beside it importable either way.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from fpsload.day import DayShape
from fpsload.personas import HongKongBank, MainlandBank

__all__ = ["DayShape", "HongKongBank", "MainlandBank"]
