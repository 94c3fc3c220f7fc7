from __future__ import annotations

import hashlib
import re

import pytest

from fpslink.demo import DEMO_ACCOUNTS, DEMO_BANKS, demo_key
from fpslink.errors import (
    PROBLEM_BASE,
    Conflict,
    Forbidden,
    FpslinkError,
    InvalidRequest,
    NotFound,
    Unauthorized,
    UpstreamUnavailable,
)
from fpslink.participants.service import (
    ACCOUNT_PREFIX,
    hash_key,
    new_account_id,
    new_api_key,
    system_of_account_id,
)
from fpslink.vocabulary import System
from fpslink_tools.pgadmin import ibps_database_url

# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (FpslinkError, 400, "BAD_REQUEST"),
        (InvalidRequest, 422, "VALIDATION_ERROR"),
        (Unauthorized, 401, "UNAUTHORIZED"),
        (Forbidden, 403, "FORBIDDEN"),
        (NotFound, 404, "NOT_FOUND"),
        (Conflict, 409, "CONFLICT"),
        (UpstreamUnavailable, 503, "IBPS_UNAVAILABLE"),
    ],
)
def test_problem_defaults(cls: type[FpslinkError], status: int, code: str) -> None:
    err = cls("something is wrong")
    body = err.problem()
    assert set(body) == {"type", "title", "status", "detail", "code"}
    assert body["status"] == status == err.status
    assert body["code"] == code == err.code
    assert body["detail"] == "something is wrong" == str(err)
    assert body["title"] == cls.title and body["title"]
    assert body["type"] == PROBLEM_BASE + code.lower().replace("_", "-")
    assert issubclass(cls, FpslinkError)


def test_problem_with_code_ids_and_instance() -> None:
    err = NotFound(
        "account HK1 not found",
        code="ACCOUNT_NOT_FOUND",
        account_id="HK1",
        payment_id=None,
        attempt=3,
    )
    body = err.problem("/v1/accounts/HK1")
    assert body == {
        "type": "https://fpslink.dev/problems/account-not-found",
        "title": "Not found",
        "status": 404,
        "detail": "account HK1 not found",
        "code": "ACCOUNT_NOT_FOUND",
        "instance": "/v1/accounts/HK1",
        "account_id": "HK1",
        "attempt": "3",  # ids are rendered as strings
    }
    assert "payment_id" not in body  # None ids are dropped
    assert err.ids == {"account_id": "HK1", "attempt": 3}


def test_problem_without_instance_omits_it() -> None:
    assert "instance" not in InvalidRequest("bad", code="AM02").problem()
    assert "instance" not in InvalidRequest("bad", code="AM02").problem("")
    assert InvalidRequest("bad", code="AM02").problem()["type"].endswith("/am02")


# --- participants helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(("system", "prefix"), [(System.FPS, "HK"), (System.IBPS, "CN")])
def test_new_account_id_prefix_and_shape(system: System, prefix: str) -> None:
    account_id = new_account_id(system)
    assert ACCOUNT_PREFIX[system] == prefix
    assert re.fullmatch(prefix + r"[0-9A-F]{16}", account_id)
    assert system_of_account_id(account_id) is system


@pytest.mark.parametrize("system", list(System))
def test_new_account_ids_are_unique(system: System) -> None:
    ids = {new_account_id(system) for _ in range(1000)}
    assert len(ids) == 1000


@pytest.mark.parametrize(
    ("account_id", "system"),
    [
        ("HKDEMO0001", System.FPS),
        ("CNDEMO0001", System.IBPS),
        ("HK", System.FPS),
        ("CN0123456789ABCDEF", System.IBPS),
        ("US0001", None),
        ("hkdemo0001", None),
        ("", None),
        ("XHK1", None),
    ],
)
def test_system_of_account_id(account_id: str, system: System | None) -> None:
    assert system_of_account_id(account_id) is system


def test_demo_account_ids_tell_their_system() -> None:
    systems = {bank.participant_id: bank.system for bank in DEMO_BANKS}
    for account in DEMO_ACCOUNTS:
        assert system_of_account_id(account.account_id) is systems[account.participant_id]


def test_hash_key() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_key("fpsl_x") == hashlib.sha256(b"fpsl_x").hexdigest()
    assert hash_key("a") != hash_key("b")
    assert hash_key("a") == hash_key("a")


def test_new_api_key() -> None:
    key = new_api_key("HARBOURHK")
    assert key.startswith("fpsl_harbourhk_")
    secret = key.removeprefix("fpsl_harbourhk_")
    assert len(secret) >= 32
    assert re.fullmatch(r"[A-Za-z0-9_-]+", secret)
    keys = {new_api_key("HARBOURHK") for _ in range(100)}
    assert len(keys) == 100


# --- sandbox helpers --------------------------------------------------------------------------------


def test_demo_key_is_deterministic() -> None:
    op = "operator-key-0123456789"
    key = demo_key(op, "HARBOURHK")
    assert key == demo_key(op, "HARBOURHK")
    assert re.fullmatch(r"fpsl_harbourhk_[0-9a-f]{32}", key)


def test_demo_key_differs_across_participants_and_operator_keys() -> None:
    ops = ["operator-key-0123456789", "operator-key-9876543210"]
    keys = [demo_key(op, bank.participant_id) for op in ops for bank in DEMO_BANKS]
    assert len(set(keys)) == len(keys) == 2 * len(DEMO_BANKS)


def test_demo_key_known_value() -> None:
    import hmac

    digest = hmac.new(b"op-key-0123456789", b"PEARLCN", hashlib.sha256).hexdigest()
    assert demo_key("op-key-0123456789", "PEARLCN") == f"fpsl_pearlcn_{digest[:32]}"


@pytest.mark.parametrize(
    ("gateway_url", "ibps_url"),
    [
        (
            "postgresql+asyncpg://postgres@/fpslink?host=/srv/.fpslink/pg/socket&port=5432",
            "postgresql+asyncpg://postgres@/fpslink_ibps?host=%2Fsrv%2F.fpslink%2Fpg%2Fsocket&port=5432",
        ),
        ("postgresql+asyncpg://user:pw@db:5432/fpslink", "postgresql+asyncpg://user:pw@db:5432/fpslink_ibps"),
        ("postgresql://postgres@127.0.0.1/gw", "postgresql://postgres@127.0.0.1/gw_ibps"),
        (
            "postgresql+asyncpg://user:p%40ss@db/fpslink",
            "postgresql+asyncpg://user:p%40ss@db/fpslink_ibps",
        ),
    ],
)
def test_ibps_database_url(gateway_url: str, ibps_url: str) -> None:
    assert ibps_database_url(gateway_url) == ibps_url


def test_ibps_database_url_prefers_explicit() -> None:
    gateway = "postgresql+asyncpg://u@h/gw"
    assert ibps_database_url(gateway, "postgresql+asyncpg://u@elsewhere/ibps") == (
        "postgresql+asyncpg://u@elsewhere/ibps"
    )
    assert ibps_database_url(gateway, "") == "postgresql+asyncpg://u@h/gw_ibps"


def test_ibps_database_url_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """chaos and loadtest drop the database it names: MOCK_IBPS_DATABASE_URL must not redirect them."""
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", "postgresql+asyncpg://u@elsewhere/precious")
    assert ibps_database_url("postgresql+asyncpg://u@h/gw") == "postgresql+asyncpg://u@h/gw_ibps"
