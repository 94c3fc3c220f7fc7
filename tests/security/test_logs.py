"""Logs mask what they must (numbers however written, secrets in query strings) and nothing else:
never an id. A handled outage is one line, not a traceback.

Before: at INFO a +86 number logged percent-encoded (`%2B86...`, as in a proxy look-up's path)
appeared in full, `?token=` values appeared verbatim, the phone mask rewrote the digit-only middle
groups of about 0.6% of payment ids (`4a715f9e-1427-4284-8403-...` became `4a715f9e-142742**8403-...`,
an id that then matched nothing), and every 503 DATABASE_UNAVAILABLE left the app as an unhandled
exception, which the server logs with its traceback.
"""

from __future__ import annotations

import io
import logging
import random
import uuid
from collections.abc import Iterator

import httpx
import pytest
from gw_support import OPERATOR_KEY, unreachable_database_settings
from hypothesis import given
from hypothesis import strategies as st

from fpslink import logs
from fpslink.app import create_app

UUIDS = 100_000
CONTEXTS = (
    "{}",
    "payment {} settled",
    "GET /v1/payments/{} HTTP/1.1",
    '{{"payment_id": "{}"}}',
    "delivery {}:6f1d2c0e-8a4b-4f57-9c3e-2b1a0d9e8f7c",
    "call 91234567 re {}",
)


def test_no_uuid_is_altered_by_the_masks() -> None:
    """100,000 random payment ids (UUID v4, as the gateway makes them), alone and in log lines.
    About 600 of them have digit-only middle groups that the old phone mask rewrote."""
    rng = random.Random(20260622)
    altered = []
    for _ in range(UUIDS):
        pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for context in CONTEXTS:
            line = context.format(pid)
            if pid not in logs.mask_text(line):
                altered.append(line)
    assert not altered, f"{len(altered)} lines lost their id, e.g. {altered[:3]}"


@given(st.uuids())
def test_no_uuid_of_any_version_or_case_is_altered(value: uuid.UUID) -> None:
    for text in (str(value), str(value).upper(), f"id={value}&x=1"):
        assert logs.mask_text(text) == text


@given(st.from_regex(r"[a-z]{1,8}-[0-9]{9,15}(-[0-9a-z]{1,8})?", fullmatch=True))
def test_digits_inside_a_hyphenated_key_are_not_a_phone_number(key: str) -> None:
    """Idempotency keys and references such as `order-123456789` stay as they are."""
    assert logs.mask_text(f"key {key} bound") == f"key {key} bound"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("+8613800138000", "+86138****8000"),
        ("+86 138 0013 8000", "+86138****8000"),
        ("%2B8613800138000", "%2B86138****8000"),
        ("%2b85291234567", "%2b85291**4567"),
        ("%2B86%20138%200013%208000", "%2B86138****8000"),
    ],
)
def test_phone_numbers_are_masked_however_written(written: str, masked: str) -> None:
    line = f"GET /v1/proxies/MOBILE/{written} HTTP/1.1"
    assert logs.mask_text(line) == f"GET /v1/proxies/MOBILE/{masked} HTTP/1.1"
    assert "13800138000" not in logs.mask_text(f"lookup of {written} failed")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook?token=s3cr3t-value&x=1",
        "http://127.0.0.1:9000/hook?x=1&api_key=s3cr3t-value",
        "/v1/things?access_token=s3cr3t-value",
        "/cb?X-Amz-Signature=s3cr3t-value#frag",
        "/cb?client_secret=s3cr3t-value;password=s3cr3t-value",
    ],
)
def test_secrets_in_query_strings_are_masked(url: str) -> None:
    masked = logs.mask_text(f"delivering to {url}")
    assert "s3cr3t" not in masked
    assert "=***" in masked


def test_bearer_tokens_are_masked() -> None:
    assert logs.mask_text("Authorization: Bearer fpsl_demohk1_abc.DEF") == "Authorization: Bearer ***"


@pytest.fixture
def gateway_handler() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """The gateway's own log handler (its filters and formatter), writing to a string."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = logs.configure("text", "INFO")
    handler.setStream(stream)
    try:
        yield handler, stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_an_access_line_is_masked_and_keeps_its_ids(
    gateway_handler: tuple[logging.Handler, io.StringIO],
) -> None:
    """uvicorn's access line for a proxy look-up, as the handler formats it (a record made here, so
    whatever level an earlier server left on uvicorn's loggers does not matter)."""
    handler, stream = gateway_handler
    pid = "4a715f9e-1427-4284-8403-2d2b4e6b1c0a"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        0,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:50000",
            "GET",
            f"/v1/proxies/MOBILE/%2B8613800138000?token=s3cr3t&payment={pid}",
            "1.1",
            200,
        ),
        None,
    )
    handler.handle(record)
    line = stream.getvalue()
    assert "%2B86138****8000" in line and "13800138000" not in line
    assert "s3cr3t" not in line
    assert pid in line


async def test_a_handled_503_is_one_line_not_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Each 503 DATABASE_UNAVAILABLE is answered inside the app (the server has nothing to log)
    and logged once, in one line, without a traceback."""
    app = create_app(unreachable_database_settings())
    auth = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    caplog.set_level(logging.DEBUG)
    async with app.router.lifespan_context(app):
        caplog.clear()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            listing = await http.get("/v1/payments", headers=auth)
            account = await http.get("/v1/accounts/HKNOWHERE", headers=auth)
    for answer in (listing, account):
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "DATABASE_UNAVAILABLE"
    answered = [r for r in caplog.records if r.name == "fpslink.api"]
    assert len(answered) == 2, [r.getMessage() for r in answered]
    assert all(r.levelno == logging.WARNING and "\n" not in r.getMessage() for r in answered)
    with_traceback = [r for r in caplog.records if r.exc_info or r.exc_text]
    assert not with_traceback, [r.getMessage() for r in with_traceback]
