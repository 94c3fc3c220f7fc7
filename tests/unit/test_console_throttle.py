"""The console's log-in throttle, decided in pure code: buckets, windows and the wait."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fpslink.config import Settings
from fpslink.console import throttle

LIMITS = throttle.Limits(window_s=300, per_address=10, per_key_prefix=30)


@pytest.mark.parametrize(
    ("api_key", "prefix"),
    [
        ("fpsl_demohk1_AbC-dEf_ghi", "fpsl_demohk1_"),
        ("fpsl_operator_x_y", "fpsl_operator_"),
        ("fpsl_demo_hk_secret", "fpsl_demo_"),  # a bank id with "_" gets a coarser prefix, never the secret
        ("fpsl__x", "fpsl__x"[:8]),
        ("test-operator-key-0123456789", "test-ope"),
        ("short", "short"),
    ],
)
def test_the_key_prefix_names_no_secret(api_key: str, prefix: str) -> None:
    assert throttle.key_prefix(api_key) == prefix


def test_buckets_hold_no_key_material() -> None:
    key = "fpsl_demohk1_Secret-Part"
    names = [b.name for b in throttle.buckets(LIMITS, host="192.0.2.1", api_key=key)]
    assert names[0] == "addr:192.0.2.1"
    assert names[1].startswith("key:") and "demohk1" not in names[1] and "Secret" not in names[1]
    same_bank = throttle.buckets(LIMITS, host="192.0.2.2", api_key="fpsl_demohk1_other")[1].name
    assert same_bank == names[1]
    assert [b.name for b in throttle.buckets(LIMITS, host="192.0.2.1", api_key="")] == ["addr:192.0.2.1"]


def test_an_ipv6_client_counts_by_its_64() -> None:
    one = throttle.address_bucket("2001:db8:1:2:aaaa::1")
    assert one == throttle.address_bucket("2001:db8:1:2:ffff::9") == "addr:2001:db8:1:2::/64"
    assert throttle.address_bucket("2001:db8:1:3::1") != one
    assert throttle.address_bucket("::ffff:192.0.2.9") == "addr:192.0.2.9"
    assert throttle.address_bucket(None) == "addr:-"


def test_the_wait_runs_to_the_end_of_the_window() -> None:
    now = datetime(2026, 6, 22, 4, 1, 40, 500_000, tzinfo=UTC)
    assert throttle.window_start(now, 300) == datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
    over = throttle.buckets(LIMITS, host="192.0.2.1", api_key="fpsl_bank_x")
    at_limit = {over[0].name: 10, over[1].name: 30}
    assert throttle.retry_after_s(at_limit, over, now=now, window_s=300) is None
    past = {over[0].name: 11, over[1].name: 1}
    assert throttle.retry_after_s(past, over, now=now, window_s=300) == 200
    assert throttle.retry_after_s({over[1].name: 31}, over, now=now, window_s=300) == 200


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings(trusted_proxies=" 10.0.0.5, 192.168.0.0/24 ,::1").trusted_proxy_list == [
        "10.0.0.5",
        "192.168.0.0/24",
        "::1",
    ]
    assert Settings().trusted_proxy_list == []
    for bad in ("proxy.example", "10.0.0.300", "*"):
        with pytest.raises(ValueError, match="FPSLINK_TRUSTED_PROXIES"):
            Settings(trusted_proxies=bad)
