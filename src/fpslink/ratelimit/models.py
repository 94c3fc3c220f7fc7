from sqlalchemy import Column, Float, Integer, String, Table

from fpslink.db import metadata

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("participant_id", String(40), primary_key=True),
    Column("tokens", Float(), nullable=False),
    Column("at", Float(), nullable=False),
    Column("granted", Integer(), nullable=False),
)
"""Each bank's shared token bucket (`ratelimit.policy.Quota`): its tokens at `at` (seconds since the
epoch, by the clock of the worker that last leased from it) and the tokens the last lease took.
Workers lease tokens from it a batch at a time, so it is written once per lease, not per request."""
