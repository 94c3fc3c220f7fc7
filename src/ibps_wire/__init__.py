"""What the gateway and mock_ibps share: the IBPS wire contract and the PostgreSQL plumbing.

Both services import this package and nothing of each other's (mock_ibps imports nothing from
`fpslink`), so the two sides of the HTTP API cannot drift apart:

- `enums`: operations, transfer kinds and statuses, prepare outcomes, reason codes, fault calls;
- `amounts`: the one codec between integer minor units and the wire's decimal strings;
- `schemas`: the pydantic request and response models of `/ibps/v1`, which mock_ibps validates
  and serialises and the gateway's client sends and parses;
- `pg`: the raw asyncpg lane under a SQLAlchemy transaction (docs/decisions/0003-raw-asyncpg-lane.md);
- `migrate`: Alembic's upgrade, run on a worker thread when called from an event loop;
- `credentials`: the rule both services apply to the secrets they serve with (operator key, IBPS
  token) before they listen;
- `asgi`: the helpers of both services' fast paths, which serve their hot requests in front of
  FastAPI's router and hand the rest to it untouched;
- `sandbox_clock`: the test clock's offset from the wall clock, kept in each service's database
  and followed by LISTEN/NOTIFY (docs/architecture.md#the-test-clock).

This package imports neither service; `enums`, `amounts` and `credentials` import nothing beyond
the standard library.
"""
