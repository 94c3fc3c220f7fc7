"""The webhook signature against the formula docs/webhooks.md gives receivers, not against itself.

`Fpslink-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the secret>`. A
receiver checks it with the standard library alone, so the expected values here are computed with
`hmac` from that sentence (and one is written out in full): a signing function that drifted from the
documented formula, and a `verify` that shares its mistake, would still agree with each other.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from fpslink.webhooks import signing

SECRET = "whsec_test_5f3c1a"
T = 1_795_787_545
BODY = b'{"event_id":"e1","event":"payment.settled"}'
KNOWN_MAC = "35975b7144a6f57282283ffa7289f839522ccb62d7dc865b2036d8ed2732df95"
"""HMAC-SHA256 of b'1795787545.' + BODY with SECRET, computed once outside the project."""


def documented_mac(secret: str, timestamp: int | str, body: bytes) -> str:
    """docs/webhooks.md, "Verifying the signature": the MAC over "<t>.<raw body>"."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def documented_receiver_accepts(secret: str, header: str, body: bytes, *, now: int) -> bool:
    """The receiver docs/webhooks.md prints, without its HTTP server."""
    fields = dict(p.split("=", 1) for p in header.split(","))
    expected = documented_mac(secret, fields["t"], body)
    fresh = abs(now - int(fields["t"])) <= 300
    return fresh and hmac.compare_digest(expected, fields["v1"])


def test_the_known_answer_is_the_documented_formula() -> None:
    assert documented_mac(SECRET, T, BODY) == KNOWN_MAC


def test_sign_gives_the_known_answer() -> None:
    assert signing.sign(SECRET, T, BODY) == f"t={T},v1={KNOWN_MAC}"


@pytest.mark.parametrize(
    ("secret", "timestamp", "body"),
    [
        ("whsec_a", 0, b""),
        ("whsec_a", 1, b"{}"),
        ("whsec_b", 1_750_000_000, '{"name":"張明"}'.encode()),
        ("whsec_" + "x" * 64, 4_102_444_800, b"\x00\xff" * 1000),
    ],
    ids=["empty-body", "tiny", "utf-8", "long"],
)
def test_sign_follows_the_documented_formula(secret: str, timestamp: int, body: bytes) -> None:
    assert (
        signing.sign(secret, timestamp, body) == f"t={timestamp},v1={documented_mac(secret, timestamp, body)}"
    )


def test_the_documented_receiver_accepts_what_the_gateway_signs() -> None:
    header = signing.sign(SECRET, T, BODY)
    assert documented_receiver_accepts(SECRET, header, BODY, now=T + 10)


def test_the_mac_covers_the_timestamp() -> None:
    """Without the timestamp in the MAC, a captured delivery could be replayed with a fresh `t`."""
    assert documented_mac(SECRET, T, BODY) != hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    mac = signing.sign(SECRET, T, BODY).split("v1=")[1]
    assert signing.sign(SECRET, T + 1, BODY).split("v1=")[1] != mac


@pytest.mark.parametrize("shift", [1, -1, 60, -299])
def test_a_changed_timestamp_fails_verification(shift: int) -> None:
    """A delivery's MAC under another `t`, still inside the 5 minutes: a replay with a fresh timestamp."""
    mac = signing.sign(SECRET, T, BODY).split("v1=")[1]
    replayed = f"t={T + shift},v1={mac}"
    assert signing.verify(SECRET, f"t={T},v1={mac}", BODY, now=T + shift)
    assert not signing.verify(SECRET, replayed, BODY, now=T + shift)
    assert not documented_receiver_accepts(SECRET, replayed, BODY, now=T + shift)


def test_verify_accepts_a_header_made_by_the_documented_formula() -> None:
    header = f"t={T},v1={documented_mac(SECRET, T, BODY)}"
    assert signing.verify(SECRET, header, BODY, now=T)
    body_only = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert not signing.verify(SECRET, f"t={T},v1={body_only}", BODY, now=T)


def test_verify_refuses_another_body_or_secret() -> None:
    header = f"t={T},v1={KNOWN_MAC}"
    assert not signing.verify(SECRET, header, BODY + b" ", now=T)
    assert not signing.verify(SECRET + "x", header, BODY, now=T)


@pytest.mark.parametrize(
    ("now", "fresh"),
    [(T, True), (T + 300, True), (T - 300, True), (T + 301, False), (T - 301, False)],
    ids=["same-second", "5-min-late", "5-min-early", "too-late", "too-early"],
)
def test_five_minutes_either_way_is_fresh(now: int, fresh: bool) -> None:
    assert signing.verify(SECRET, f"t={T},v1={KNOWN_MAC}", BODY, now=now) is fresh


def test_the_tolerance_can_be_narrowed() -> None:
    header = f"t={T},v1={KNOWN_MAC}"
    assert signing.verify(SECRET, header, BODY, now=T + 10, tolerance_s=10)
    assert not signing.verify(SECRET, header, BODY, now=T + 11, tolerance_s=10)


@pytest.mark.parametrize(
    "header",
    [
        "",
        f"v1={KNOWN_MAC}",
        f"t={T}",
        f"t={T},v1=",
        f"t=soon,v1={KNOWN_MAC}",
        f"t={T}=0,v1={KNOWN_MAC}",
        f"t={T},v1={KNOWN_MAC}=",
        f"t={T},v1={KNOWN_MAC},t={T}=0",
        f"t={T},v1={KNOWN_MAC.upper()}",
    ],
    ids=[
        "empty",
        "no-t",
        "no-v1",
        "empty-v1",
        "t-not-a-number",
        "t-with-an-equals-sign",
        "v1-with-an-equals-sign",
        "a-second-malformed-t",
        "upper-case-hex",
    ],
)
def test_a_malformed_header_is_refused_without_an_error(header: str) -> None:
    assert signing.verify(SECRET, header, BODY, now=T) is False


def test_the_fields_may_come_in_any_order() -> None:
    assert signing.verify(SECRET, f"v1={KNOWN_MAC},t={T}", BODY, now=T)
