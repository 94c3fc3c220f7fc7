"""Probes: the extra deliveries a certification run sends its bank's receiver to see what it does.

Pure. A probe is a copy of one of the bank's real deliveries of a payment's event, delivered once:

    DUPLICATE        the same event again: same event id, body and a valid signature (answer 2xx)
    BAD_SIGNATURE    a new event id, the same payment, a signature made with another secret (refuse)
    STALE_TIMESTAMP  a new event id, a valid signature over a `t` twice the tolerance old (refuse)

Its delivery id is the real one's with a suffix (within the column's 80 characters: the real one is
73). A duplicate is sent under the real delivery's event id; the others under their own.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from fpslink.webhooks import signing


class Probe(StrEnum):
    DUPLICATE = "DUPLICATE"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    STALE_TIMESTAMP = "STALE_TIMESTAMP"


SUFFIX: Final = {Probe.DUPLICATE: ":dup", Probe.BAD_SIGNATURE: ":sig", Probe.STALE_TIMESTAMP: ":old"}
STALE_BY_S: Final = 2 * signing.TOLERANCE_S


def event_id(delivery_id: str, probe: Probe | None) -> str:
    """The event id a delivery is sent under: a duplicate's is its original's."""
    if probe is Probe.DUPLICATE:
        return delivery_id.removesuffix(SUFFIX[Probe.DUPLICATE])
    return delivery_id


def signature(probe: Probe | None, secret: str, timestamp: int, body: bytes) -> str:
    """The `Fpslink-Signature` a delivery carries: the real one, or the probe's wrong one."""
    if probe is Probe.BAD_SIGNATURE:
        return signing.sign("not-" + secret, timestamp, body)
    if probe is Probe.STALE_TIMESTAMP:
        return signing.sign(secret, timestamp - STALE_BY_S, body)
    return signing.sign(secret, timestamp, body)
