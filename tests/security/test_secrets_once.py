"""A secret is shown once: a replay of the request that created it answers without it, and the
idempotency store never holds it.

`POST /v1/participants` (a bank's API key) and `POST /v1/webhooks` (a webhook's signing secret)
honour an Idempotency-Key. Their replays keep the status, the ids and every other field, and say
in `notice` that the secret was shown at creation and how to get a new one.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pgtest
import pytest
from gateway_stack import Stack
from gw_support import Harness, bank_code

from fpslink import migrate

SCRATCH = f"fpslink_t_sec_secrets_{pgtest.RUN}"


async def _stored_responses(stack: Stack, scope: str, key: str) -> list[str]:
    """Every text the idempotency store keeps for the key: its fingerprint and stored response."""
    conn = await asyncpg.connect(stack.gateway_db.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await conn.fetchrow(
            "SELECT * FROM idempotency_keys WHERE participant_id = $1 AND key = $2", scope, key
        )
    finally:
        await conn.close()
    assert row is not None, "the key was not stored"
    return [str(value) for value in row.values() if value is not None]


async def test_a_participant_replay_does_not_repeat_the_api_key(harness: Harness, stack: Stack) -> None:
    h = harness
    code = bank_code("HK")
    body = {"participant_id": code, "name": f"Replay {code}", "system": "FPS"}
    key = str(uuid.uuid4())
    headers = {**h.operator, "Idempotency-Key": key}

    first = await h.http.post("/v1/participants", json=body, headers=headers)
    assert first.status_code == 201, first.text
    api_key = first.json()["api_key"]
    assert api_key and api_key.startswith("fpsl_")
    assert first.json().get("notice") is None

    again = await h.http.post("/v1/participants", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    replay = again.json()
    assert api_key not in again.text
    assert replay["api_key"] is None
    assert {k: replay[k] for k in ("participant_id", "name", "system")} == {
        "participant_id": code,
        "name": f"Replay {code}",
        "system": "FPS",
    }
    assert "shown once" in replay["notice"]

    stored = await _stored_responses(stack, "~operator", key)
    assert not any(api_key in text for text in stored), stored
    assert not any(api_key.rsplit("_", 1)[-1] in text for text in stored), "not even the random part"

    # the key shown once still works
    me = await h.http.get("/v1/webhooks", headers={"Authorization": f"Bearer {api_key}"})
    assert me.status_code == 200, me.text


@pytest.mark.settings(webhook_allow="127.0.0.1:9")
async def test_a_webhook_replay_does_not_repeat_the_signing_secret(harness: Harness, stack: Stack) -> None:
    h = harness
    bank = await h.bank("IBPS")
    key = str(uuid.uuid4())
    headers = {**bank.headers, "Idempotency-Key": key}
    body = {"url": "http://127.0.0.1:9/fpslink-events"}

    first = await h.http.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    assert secret and secret.startswith("whsec_")

    again = await h.http.post("/v1/webhooks", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert secret not in again.text
    replay = again.json()
    assert replay["secret"] is None
    assert replay["webhook_id"] == first.json()["webhook_id"]
    assert replay["url"] == first.json()["url"]
    assert replay["created_at"] == first.json()["created_at"]
    assert "shown once" in replay["notice"]

    stored = await _stored_responses(stack, bank.participant_id, key)
    assert not any(secret in text for text in stored), stored
    assert not any(secret.removeprefix("whsec_") in text for text in stored)

    listed = (await h.http.get("/v1/webhooks", headers=bank.headers)).json()["items"]
    assert [w["webhook_id"] for w in listed] == [first.json()["webhook_id"]], "created once"
    removed = await h.http.delete(f"/v1/webhooks/{first.json()['webhook_id']}", headers=bank.headers)
    assert removed.status_code == 204


async def test_the_upgrade_redacts_secrets_stored_before_it() -> None:
    """Responses stored by the code before migration 0009 held the secret; 0009 blanks it, as a
    replay now answers, and leaves the other endpoints' responses alone."""
    url = await pgtest.recreate(SCRATCH)
    try:
        await asyncio.to_thread(migrate.upgrade, url, "0008_ledger_constraints")
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            stored = {
                "bank": (
                    "POST /v1/participants",
                    {"participant_id": "HKOLD", "api_key": "fpsl_hkold_s3cret"},
                ),
                "hook": ("POST /v1/webhooks", {"webhook_id": "w-1", "secret": "whsec_s3cret"}),
                "acct": ("POST /v1/accounts", {"account_id": "HK1", "balance": "10.00"}),
            }
            for key, (endpoint, body) in stored.items():
                await conn.execute(
                    "INSERT INTO idempotency_keys (participant_id, key, endpoint, fingerprint,"
                    " response_status, response_body, created_at, lease_until, completed_at, expires_at)"
                    " VALUES ('~operator', $1, $2, 'f', 201, $3, now(), now(), now(),"
                    " now() + interval '1 day')",
                    key,
                    endpoint,
                    json.dumps(body),
                )
            await asyncio.to_thread(migrate.upgrade, url)
            rows = {
                r["key"]: json.loads(r["response_body"])
                for r in await conn.fetch("SELECT key, response_body FROM idempotency_keys")
            }
        finally:
            await conn.close()
    finally:
        await pgtest.drop(SCRATCH)
    assert "s3cret" not in json.dumps(rows)
    assert rows["bank"]["participant_id"] == "HKOLD" and rows["bank"]["api_key"] is None
    assert "shown once" in rows["bank"]["notice"]
    assert rows["hook"]["webhook_id"] == "w-1" and rows["hook"]["secret"] is None
    assert "shown once" in rows["hook"]["notice"]
    assert rows["acct"] == {"account_id": "HK1", "balance": "10.00"}
