"""Shared parts of the fpslink load tests; the scenario files that Locust runs import them.

Importing any of them imports locust first, because locust monkey-patches the standard library
(ssl, socket) with gevent on import, and `requests` must see the patched modules.

* config: the LOADTEST_* settings, read and checked once, at import;
* day: the simulated 24-hour day (DayShape) and the southbound service window;
* clock: the gateway's test clock, moved to each simulated hour (needs only requests);
* world: the banks, accounts and mobile numbers each process sets up with the operator key;
* checks: how an answer is judged (problem codes, the sandbox's magic amount);
* report: the payment outcomes table, the set-up on test start and the last CSV rows;
* users: BankUser, the tasks both personas share;
* personas: HongKongBank (FPS, northbound) and MainlandBank (IBPS, southbound).
"""

import locust  # noqa: F401  (first: it monkey-patches ssl and socket before requests imports them)
