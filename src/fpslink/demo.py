"""The demo world: the sandbox seeds it and GET /v1/sandbox/fixtures shows it, so it is the gateway's.

It is deterministic: fixed bank codes, account ids and proxies, and API keys derived from the
operator key, so a restarted sandbox prints the same keys and the copy-paste curl keeps working.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal

from fpslink.money import Currency
from fpslink.vocabulary import System


@dataclass(frozen=True, slots=True)
class DemoBank:
    participant_id: str
    name: str
    system: System
    bic: str
    """A test BIC (location code ending in 0), by which ISO 20022 headers name the bank."""


@dataclass(frozen=True, slots=True)
class DemoAccount:
    account_id: str
    participant_id: str
    holder_name: str
    currency: Currency
    opening_balance: Decimal
    proxy: str | None


DEMO_BANKS = (
    DemoBank("HARBOURHK", "Harbour Bank (demo)", System.FPS, "HRBRHKH0XXX"),
    DemoBank("VICTORIAHK", "Victoria Bank (demo)", System.FPS, "VCTRHKH0XXX"),
    DemoBank("PEARLCN", "Pearl River Bank (demo)", System.IBPS, "PRLRCNS0XXX"),
    DemoBank("YANGTZECN", "Yangtze Bank (demo)", System.IBPS, "YNGZCNS0XXX"),
)
DEMO_ACCOUNTS = (
    DemoAccount(
        "HKDEMO0001", "HARBOURHK", "CHAN Tai Man", Currency.HKD, Decimal("100000.00"), "+85291234567"
    ),
    DemoAccount("HKDEMO0002", "HARBOURHK", "CHAN Tai Man", Currency.CNY, Decimal("50000.00"), None),
    DemoAccount(
        "HKDEMO0003", "VICTORIAHK", "WONG Siu Ming", Currency.HKD, Decimal("100000.00"), "+85261234567"
    ),
    DemoAccount("CNDEMO0001", "PEARLCN", "张小明", Currency.CNY, Decimal("100000.00"), "+8613800138000"),
    DemoAccount("CNDEMO0002", "YANGTZECN", "李华", Currency.CNY, Decimal("100000.00"), "+8613900139000"),
)


def demo_key(operator_key: str, participant_id: str) -> str:
    """A bank's demo key, derived from the operator key so that it survives a restart."""
    digest = hmac.new(operator_key.encode(), participant_id.encode(), hashlib.sha256).hexdigest()
    return f"fpsl_{participant_id.lower()}_{digest[:32]}"
