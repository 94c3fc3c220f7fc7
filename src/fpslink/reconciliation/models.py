"""Stored reconciliation runs and their breaks, and the per-run working tables of the matcher."""

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from fpslink.db import SeqId, UtcDateTime, metadata

recon_runs = Table(
    "recon_runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("business_date", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("as_of", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("break_count", BigInteger(), nullable=True),
    Column("summary", Text(), nullable=True),
    Column("error", String(500), nullable=True),
    Index("ix_recon_runs_business_date", "business_date"),
)
"""One row per run: RUNNING until the match is stored, then COMPLETED (with the summary JSON) or FAILED."""

recon_breaks = Table(
    "recon_breaks",
    metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("break_type", String(20), nullable=False),
    Column("side", String(8), nullable=False),
    Column("payment_id", String(36), nullable=False),
    Column("direction", String(10), nullable=True),
    Column("gateway_state", String(10), nullable=True),
    Column("amount_type", String(8), nullable=True),
    Column("source_minor", BigInteger(), nullable=True),
    Column("source_currency", String(3), nullable=True),
    Column("target_minor", BigInteger(), nullable=True),
    Column("target_currency", String(3), nullable=True),
    Column("rate", String(24), nullable=True),
    Column("fps_status", String(8), nullable=True),
    Column("fps_amount_minor", BigInteger(), nullable=True),
    Column("fps_currency", String(3), nullable=True),
    Column("ibps_status", String(8), nullable=True),
    Column("ibps_amount_minor", BigInteger(), nullable=True),
    Column("ibps_currency", String(3), nullable=True),
    Column("related_payment_id", String(36), nullable=True),
    Column("occurrences", Integer(), nullable=True),
    Column("occurred_at", UtcDateTime(), nullable=True),
    Index("ix_recon_breaks_run_seq", "run_id", "seq"),
)
"""Every break of a run with the raw values of all three sides; the report puts them into words."""

work = MetaData()
"""Temporary tables: one connection's working set during a run, never created by migrations."""

ibps_staging = Table(
    "recon_ibps_staging",
    work,
    Column("seq", BigInteger(), nullable=False),
    Column("payment_id", String(36), nullable=False),
    Column("kind", String(8), nullable=True),
    Column("account_id", String(40), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("amount_minor", BigInteger(), nullable=True),
    Column("status", String(8), nullable=False),
    Column("created_at_us", BigInteger(), nullable=False),
    prefixes=["TEMPORARY"],
)
"""The IBPS statement of the day, bulk-loaded page by page (COPY FROM STDIN on PostgreSQL)."""

match = Table(
    "recon_match",
    work,
    Column("payment_id", String(36), nullable=False),
    Column("in_day", Integer(), nullable=False),
    Column("gateway_state", String(10), nullable=True),
    Column("direction", String(10), nullable=True),
    Column("debtor_account_id", String(40), nullable=True),
    Column("creditor_account_id", String(40), nullable=True),
    Column("end_to_end_id", String(35), nullable=True),
    Column("amount_type", String(8), nullable=True),
    Column("source_minor", BigInteger(), nullable=True),
    Column("source_currency", String(3), nullable=True),
    Column("target_minor", BigInteger(), nullable=True),
    Column("target_currency", String(3), nullable=True),
    Column("rate", String(24), nullable=True),
    Column("mid_rate", String(24), nullable=True),
    Column("created_at", UtcDateTime(), nullable=True),
    Column("settled_at", UtcDateTime(), nullable=True),
    Column("fps_kind", String(8), nullable=True),
    Column("fps_status", String(8), nullable=True),
    Column("fps_amount_minor", BigInteger(), nullable=True),
    Column("fps_currency", String(3), nullable=True),
    Column("fps_created_at", UtcDateTime(), nullable=True),
    Column("ibps_kind", String(8), nullable=True),
    Column("ibps_status", String(8), nullable=True),
    Column("ibps_amount_minor", BigInteger(), nullable=True),
    Column("ibps_currency", String(3), nullable=True),
    Column("ibps_created_at", UtcDateTime(), nullable=True),
    Column("ibps_day_offset", Integer(), nullable=True),
    Column("want_fps_minor", BigInteger(), nullable=True),
    Column("want_fps_currency", String(3), nullable=True),
    Column("want_ibps_minor", BigInteger(), nullable=True),
    Column("want_ibps_currency", String(3), nullable=True),
    Column("rate_micro", BigInteger(), nullable=True),
    prefixes=["TEMPORARY"],
)
"""The payment ids of the day that need a closer look (see `groups`): the payment, its FPS leg and its
IBPS entry side by side, whatever their dates. `ibps_day_offset` is null for an entry of the day's
statement, -1 or +1 for one found by id on a neighbouring day's (a timing difference)."""

groups = Table(
    "recon_groups",
    work,
    Column("in_day", Integer(), nullable=False),
    Column("state", String(10), nullable=True),
    Column("direction", String(10), nullable=True),
    Column("source_currency", String(3), nullable=True),
    Column("target_currency", String(3), nullable=True),
    Column("hour", Integer(), nullable=True),
    Column("bucket", Integer(), nullable=True),
    Column("mid_rate", String(24), nullable=True),
    Column("fps_kind", String(8), nullable=True),
    Column("fps_status", String(8), nullable=True),
    Column("fps_currency", String(3), nullable=True),
    Column("fps_in_day", Integer(), nullable=False),
    Column("ibps_kind", String(8), nullable=True),
    Column("ibps_status", String(8), nullable=True),
    Column("ibps_currency", String(3), nullable=True),
    Column("ibps_day_offset", Integer(), nullable=True),
    Column("odd_id", String(36), nullable=True),
    Column("count", BigInteger(), nullable=False),
    Column("source_minor", BigInteger(), nullable=True),
    Column("target_minor", BigInteger(), nullable=True),
    Column("fps_amount_minor", BigInteger(), nullable=True),
    Column("ibps_amount_minor", BigInteger(), nullable=True),
    prefixes=["TEMPORARY"],
)
"""The day's totals in one GROUP BY of the three-way join; a row that needs a closer look (a
possible break, or a side of another date) is a group of its own, keyed by `odd_id`, and is
counted from `recon_match` instead."""

neighbours = Table(
    "recon_ibps_neighbours",
    work,
    Column("payment_id", String(36), primary_key=True),
    Column("day_offset", Integer(), nullable=False),
    Column("kind", String(8), nullable=True),
    Column("status", String(8), nullable=False),
    Column("amount_minor", BigInteger(), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    prefixes=["TEMPORARY"],
)
"""IBPS entries of the day's payments found by id on the previous or next day's statement: a few,
written into `recon_match` in one statement."""
