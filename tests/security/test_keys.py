"""A bank's API keys have a lifecycle: a second key, a list, revocation, expiry; the operator key rotates.

Before: a bank had one key for life, nothing listed or revoked it, and each worker trusted a key it
had looked up once until it restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pgtest
import pytest
from alembic import command
from gateway_stack import Stack, settings_for
from gw_support import OPERATOR_KEY, Bank, FakeClock, Harness, problem

from fpslink import migrate
from fpslink.app import create_app
from fpslink.participants.service import hash_key

SCRATCH = f"fpslink_t_sec_keys_{pgtest.RUN}"


async def add_key(h: Harness, bank: Bank, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await h.http.post(f"/v1/participants/{bank.participant_id}/keys", json=body, headers=auth)


async def keys_of(h: Harness, bank: Bank, auth: dict[str, str]) -> list[dict[str, Any]]:
    listed = await h.http.get(f"/v1/participants/{bank.participant_id}/keys", headers=auth)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def works(h: Harness, key: str) -> int:
    """The status a bank's read answers with this key."""
    return (await h.http.get("/v1/payments", headers={"Authorization": f"Bearer {key}"})).status_code


async def test_a_bank_adds_a_second_key_lists_its_keys_and_revokes_one(harness: Harness) -> None:
    h = harness
    bank = await h.bank("FPS")
    created = await add_key(h, bank, bank.headers)
    assert created.status_code == 201, created.text
    second = created.json()
    new_key = second["api_key"]
    assert new_key != bank.api_key and new_key.startswith(f"fpsl_{bank.participant_id.lower()}_")
    assert second["prefix"] == new_key[: len(f"fpsl_{bank.participant_id.lower()}_") + 8]
    assert second["status"] == "ACTIVE" and second["expires_at"] is None and second["revoked_at"] is None
    assert await works(h, new_key) == 200
    assert await works(h, bank.api_key) == 200

    listed = await keys_of(h, bank, bank.headers)
    old_prefix = bank.api_key[: len(second["prefix"])]
    assert sorted(k["prefix"] for k in listed) == sorted([old_prefix, second["prefix"]])
    for item in listed:
        assert set(item) == {
            "participant_id",
            "prefix",
            "status",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        }
        assert item["status"] == "ACTIVE" and item["last_used_at"] is not None  # both were just used
    assert new_key not in str(listed) and bank.api_key not in str(listed)

    revoked = await h.http.delete(
        f"/v1/participants/{bank.participant_id}/keys/{old_prefix}",
        headers={"Authorization": f"Bearer {new_key}"},
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "REVOKED" and revoked.json()["revoked_at"]
    # the worker that revoked it refuses it at once (every other within FPSLINK_KEY_CACHE_TTL_S)
    problem(await h.http.get("/v1/payments", headers=bank.headers), 401, "UNAUTHORIZED")
    assert await works(h, new_key) == 200
    again = await h.http.delete(
        f"/v1/participants/{bank.participant_id}/keys/{old_prefix}",
        headers={"Authorization": f"Bearer {new_key}"},
    )
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]

    # a bank cannot lock itself out; the operator can revoke any key
    last = await h.http.delete(
        f"/v1/participants/{bank.participant_id}/keys/{second['prefix']}",
        headers={"Authorization": f"Bearer {new_key}"},
    )
    problem(last, 409, "KEY_IS_LAST")
    by_operator = await h.http.delete(
        f"/v1/participants/{bank.participant_id}/keys/{second['prefix']}", headers=h.operator
    )
    assert by_operator.status_code == 200 and by_operator.json()["status"] == "REVOKED"
    assert await works(h, new_key) == 401
    statuses = {k["prefix"]: k["status"] for k in await keys_of(h, bank, h.operator)}
    assert statuses == {old_prefix: "REVOKED", second["prefix"]: "REVOKED"}


async def test_another_banks_keys_are_as_unknown_as_a_missing_bank(harness: Harness) -> None:
    h = harness
    mine, theirs = await h.bank("FPS"), await h.bank("IBPS")
    theirs_path = f"/v1/participants/{theirs.participant_id}/keys"
    prefix = theirs.api_key[: len(f"fpsl_{theirs.participant_id.lower()}_") + 8]
    problem(await h.http.get(theirs_path, headers=mine.headers), 404, "PARTICIPANT_NOT_FOUND")
    problem(await h.http.post(theirs_path, json={}, headers=mine.headers), 404, "PARTICIPANT_NOT_FOUND")
    problem(
        await h.http.delete(f"{theirs_path}/{prefix}", headers=mine.headers), 404, "PARTICIPANT_NOT_FOUND"
    )
    assert await works(h, theirs.api_key) == 200
    problem(
        await h.http.get("/v1/participants/NOBANKHERE/keys", headers=h.operator), 404, "PARTICIPANT_NOT_FOUND"
    )
    problem(
        await h.http.delete(f"/v1/participants/{mine.participant_id}/keys/fpsl_nope", headers=mine.headers),
        404,
        "KEY_NOT_FOUND",
    )
    problem(await h.http.get(theirs_path), 401, "UNAUTHORIZED")


async def test_creating_a_key_is_idempotent(harness: Harness) -> None:
    h = harness
    bank = await h.bank("FPS")
    headers = {**bank.headers, "Idempotency-Key": str(uuid.uuid4())}
    first = await add_key(h, bank, headers)
    replay = await add_key(h, bank, headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["prefix"] == first.json()["prefix"]
    assert first.json()["api_key"] and first.json()["notice"] is None
    # shown once: the replay, and what the idempotency store keeps, hold no key
    assert replay.json()["api_key"] is None and "shown once" in replay.json()["notice"]
    async with h.gw.uow() as tx:
        stored = await (await tx.raw()).fetch("SELECT response_body FROM idempotency_keys")
    assert all(first.json()["api_key"] not in (row[0] or "") for row in stored)
    assert len(await keys_of(h, bank, bank.headers)) == 2
    other = await add_key(h, bank, headers, expires_at="2030-01-01T00:00:00+08:00")
    problem(other, 422, "IDEMPOTENCY_KEY_REUSED")


async def test_a_key_stops_working_when_it_expires(harness: Harness) -> None:
    h = harness
    bank = await h.bank("IBPS")
    until = h.clock.now + timedelta(hours=1)
    created = await add_key(h, bank, bank.headers, expires_at=until.isoformat())
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    assert await works(h, key) == 200  # now cached by this worker
    h.clock.advance(3600)
    problem(await h.http.get("/v1/payments", headers={"Authorization": f"Bearer {key}"}), 401, "UNAUTHORIZED")
    statuses = {k["prefix"]: k["status"] for k in await keys_of(h, bank, bank.headers)}
    assert statuses == {
        bank.api_key[: len(created.json()["prefix"])]: "ACTIVE",
        created.json()["prefix"]: "EXPIRED",
    }
    # the first key was never given an expiry
    assert await works(h, bank.api_key) == 200


@pytest.mark.parametrize("expires_at", ["2026-06-22T03:00:00+00:00", "2030-01-01T00:00:00", "soon"])
async def test_an_expiry_in_the_past_or_without_a_time_zone_is_refused(
    harness: Harness, expires_at: str
) -> None:
    bank = await harness.bank("FPS")
    problem(await add_key(harness, bank, bank.headers, expires_at=expires_at), 422, "VALIDATION_ERROR")
    assert len(await keys_of(harness, bank, bank.headers)) == 1


@pytest.mark.settings(keys_per_participant=2)
async def test_a_bank_holds_a_bounded_number_of_active_keys(harness: Harness) -> None:
    h = harness
    bank = await h.bank("FPS")
    second = await add_key(h, bank, bank.headers)
    assert second.status_code == 201
    problem(await add_key(h, bank, bank.headers), 409, "KEY_LIMIT_REACHED")
    revoked = await h.http.delete(
        f"/v1/participants/{bank.participant_id}/keys/{second.json()['prefix']}", headers=bank.headers
    )
    assert revoked.status_code == 200
    assert (await add_key(h, bank, h.operator)).status_code == 201  # the operator may add one too


@contextlib.asynccontextmanager
async def gateway(stack: Stack, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(stack, **overrides), clock=FakeClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            yield http


async def test_the_operator_key_rotates_while_the_gateway_keeps_serving(stack: Stack) -> None:
    """A rolling restart: gateways with the old key and gateways with the new one (accepting the old
    as previous) serve side by side; clients move to the new key; then the old one is dropped."""
    old, new = OPERATOR_KEY, "rotated-operator-key-" + uuid.uuid4().hex
    as_old, as_new = ({"Authorization": f"Bearer {k}"} for k in (old, new))
    async with (
        gateway(stack, operator_key=old) as before,
        gateway(stack, operator_key=new, operator_key_previous=old) as during,
        gateway(stack, operator_key=new) as after,
    ):
        for http in (before, during):
            assert (await http.get("/v1/payments?limit=1", headers=as_old)).status_code == 200
        for http in (during, after):
            assert (await http.get("/v1/payments?limit=1", headers=as_new)).status_code == 200
        problem(await after.get("/v1/payments?limit=1", headers=as_old), 401, "UNAUTHORIZED")
        problem(await before.get("/v1/payments?limit=1", headers=as_new), 401, "UNAUTHORIZED")
        problem(
            await during.get("/v1/payments?limit=1", headers={"Authorization": f"Bearer {old}x"}),
            401,
            "UNAUTHORIZED",
        )


async def test_keys_issued_before_the_key_table_keep_working(stack: Stack) -> None:
    """A bank created at revision 0011 (its key's hash a column of participants) keeps its key through
    the upgrade, listed by the start of its hash, and back through a downgrade."""
    key = "fpsl_oldbank_" + uuid.uuid4().hex
    url = await pgtest.recreate(SCRATCH)
    try:
        await migrate_to(url, "0011_sandbox_clock")
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(
                "INSERT INTO participants (participant_id, name, system, api_key_hash, created_at)"
                " VALUES ('OLDBANK', 'Old Bank', 'FPS', $1, now())",
                hash_key(key),
            )
        finally:
            await conn.close()
        await migrate_to(url, "heads")
        async with gateway(stack, database_url=url) as http:
            auth = {"Authorization": f"Bearer {key}"}
            assert (await http.get("/v1/payments", headers=auth)).status_code == 200
            listed = await http.get("/v1/participants/OLDBANK/keys", headers=auth)
            assert listed.status_code == 200, listed.text
            (only,) = listed.json()["items"]
            assert only["prefix"] == "sha256:" + hash_key(key)[:12] and only["status"] == "ACTIVE"
        await migrate_to(url, "0011_sandbox_clock", down=True)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            kept = await conn.fetchval(
                "SELECT api_key_hash FROM participants WHERE participant_id = 'OLDBANK'"
            )
        finally:
            await conn.close()
        assert kept == hash_key(key)
    finally:
        await pgtest.drop(SCRATCH)


async def migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    if down:
        await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), revision)
    else:
        await asyncio.to_thread(migrate.upgrade, url, revision)
