from sqlalchemy import Column, Integer, String, Table

from fpslink.db import UtcDateTime, metadata

console_sessions_ended = Table(
    "console_sessions_ended",
    metadata,
    Column("nonce", String(32), primary_key=True),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
)
"""Console sessions ended by logging out, by their nonce, until they would have expired: a signed
cookie stays valid to the signature check, so the server keeps the list of those it no longer
honours. Kept in the database so that every worker refuses the cookie at once."""

console_login_attempts = Table(
    "console_login_attempts",
    metadata,
    Column("bucket", String(80), primary_key=True),
    Column("window_start", UtcDateTime(), primary_key=True, index=True),
    Column("attempts", Integer(), nullable=False),
)
"""Console log-in attempts that have not logged in (failed, or still being checked), counted per
client address and per key prefix (`console/throttle.py`) in fixed windows and shared by every
worker; a window's rows go once it is over."""
