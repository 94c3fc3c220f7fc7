"""What a run reports beside locust's statistics: each process's table of payment outcomes.

The users count outcomes (direction, status, reason code; deliberate traffic by kind) in OUTCOMES;
the table is logged when the test stops.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from fpsload.world import WORLD

log = logging.getLogger("fpslink.loadtest")


class Outcomes:
    """Counts of what the gateway answered, and the warnings already given."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.warned: set[str] = set()

    def count(self, what: str) -> None:
        """One more of `what` in the outcomes table."""
        self.counts[what] += 1

    def warn_once(self, what: str, message: str) -> None:
        """Log `message` the first time `what` happens: worth knowing, not worth a line each time."""
        if what not in self.warned:
            self.warned.add(what)
            log.warning(message)


OUTCOMES = Outcomes()


@events.quitting.add_listener
def _last_csv_rows(environment: Any, **_: Any) -> None:
    """Give locust's --csv writer one more turn before it closes the files.

    It rewrites them once a second and closes them without a last write, so they would miss the
    final second of the run; the users have stopped by now, so one more turn writes the final numbers.
    """
    options = environment.parsed_options
    if getattr(options, "csv_prefix", None) and not isinstance(environment.runner, WorkerRunner):
        gevent.sleep(1.5)


@events.test_stop.add_listener
def _report(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner) or not OUTCOMES.counts:
        return
    lines = [f"  {what:<48}{n:>8}" for what, n in sorted(OUTCOMES.counts.items())]
    log.info("payment outcomes (world %s):\n%s", WORLD.tag, "\n".join(lines))
