from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpslink.errors import InvalidRequest
from fpslink.idempotency.service import fingerprint, in_progress, parse_key, reused

VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("abc", "abc"),
        ("a", "a"),
        ("550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
        ('"abc"', "abc"),
        ('"a"', "a"),
        ("k" * 255, "k" * 255),
        ('"' + "k" * 255 + '"', "k" * 255),
        ("!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
        ('abc"', 'abc"'),  # an unbalanced quote is part of the key
        ('"abc', '"abc'),
        ('"', '"'),
    ],
)
@pytest.mark.parametrize("required", [True, False])
def test_parse_key_accepts(raw: str, key: str, required: bool) -> None:
    assert parse_key(raw, required=required) == key


@pytest.mark.parametrize("raw", [None, ""])
def test_parse_key_missing(raw: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_key(raw, required=True)
    assert info.value.code == "IDEMPOTENCY_KEY_MISSING"
    assert info.value.status == 422
    assert parse_key(raw, required=False) is None


@pytest.mark.parametrize(
    "raw",
    [
        "k" * 256,
        '"' + "k" * 256 + '"',
        '""',
        "a b",
        " abc",
        "abc ",
        "a\tb",
        "a\x00b",
        "a\x1fb",
        "a\x7fb",
        "\x7f",
        "ключ",
        "clé",
        "键",
        "a\u00a0b",
        '" abc"',
        "a\nb",
        "a\r\nb",
    ],
)
@pytest.mark.parametrize("required", [True, False])
def test_parse_key_invalid(raw: str, required: bool) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_key(raw, required=required)
    assert info.value.code == "IDEMPOTENCY_KEY_INVALID"
    assert info.value.status == 422


@pytest.mark.parametrize(
    "raw", ["abc\n", "k" * 255 + "\n", '"abc"\n'], ids=["abc-LF", "255-chars-LF", "quoted-abc-LF"]
)
def test_parse_key_rejects_trailing_newline(raw: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_key(raw, required=True)
    assert info.value.code == "IDEMPOTENCY_KEY_INVALID"


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(alphabet=VISIBLE, min_size=1, max_size=255))
def test_any_visible_ascii_key_is_accepted(key: str) -> None:
    expected = key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key
    if expected == "":
        with pytest.raises(InvalidRequest):
            parse_key(key, required=True)
    else:
        assert parse_key(key, required=True) == expected


BODY = {
    "debtor_account_id": "HKDEMO0001",
    "creditor": {"proxy_type": "MOBILE", "proxy_value": "+8613800138000"},
    "amount": "1000.00",
    "currency": "HKD",
    "purpose": "FAMILY_SUPPORT",
}


def test_fingerprint_is_a_sha256_hex() -> None:
    fp = fingerprint("POST", "/v1/payments", BODY)
    assert len(fp) == 64
    assert all(c in "0123456789abcdef" for c in fp)
    assert fp == fingerprint("POST", "/v1/payments", dict(BODY))


def test_fingerprint_ignores_key_order() -> None:
    reordered = {k: BODY[k] for k in reversed(list(BODY))}
    reordered["creditor"] = {"proxy_value": "+8613800138000", "proxy_type": "MOBILE"}
    assert list(reordered) != list(BODY)
    assert fingerprint("POST", "/v1/payments", reordered) == fingerprint("POST", "/v1/payments", BODY)


def test_fingerprint_method_case_does_not_matter() -> None:
    assert fingerprint("post", "/v1/payments", BODY) == fingerprint("POST", "/v1/payments", BODY)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v1/payments", BODY),
        ("POST", "/v1/quotes", BODY),
        ("POST", "/v1/payments/", BODY),
        ("POST", "/v1/payments", {**BODY, "amount": "1000.01"}),
        ("POST", "/v1/payments", {**BODY, "currency": "CNY"}),
        (
            "POST",
            "/v1/payments",
            {**BODY, "creditor": {"proxy_type": "MOBILE", "proxy_value": "+85291234567"}},
        ),
        ("POST", "/v1/payments", {**BODY, "remittance_info": "gift"}),
        ("POST", "/v1/payments", {k: v for k, v in BODY.items() if k != "purpose"}),
        ("POST", "/v1/payments", {**BODY, "remittance_info": None}),
    ],
)
def test_fingerprint_differs_for_another_request(method: str, path: str, body: dict[str, object]) -> None:
    assert fingerprint(method, path, body) != fingerprint("POST", "/v1/payments", BODY)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none()),
        max_size=6,
    )
)
def test_fingerprint_stable_under_any_key_order(body: dict[str, object]) -> None:
    reversed_body = dict(reversed(list(body.items())))
    assert fingerprint("POST", "/x", reversed_body) == fingerprint("POST", "/x", body)


def test_reused_and_in_progress_errors() -> None:
    err = reused()
    assert err.code == "IDEMPOTENCY_KEY_REUSED"
    assert err.status == 422
    conflict = in_progress()
    assert conflict.code == "IDEMPOTENCY_IN_PROGRESS"
    assert conflict.status == 409
