"""A bank's webhooks on fake units of work: registered within the allow-list and the cap, removed once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fpslink.config import Settings
from fpslink.errors import Conflict, Forbidden, InvalidRequest, NotFound
from fpslink.principal import OPERATOR, Principal
from fpslink.webhooks.service import WebhooksService
from unit.fakes import FakeDatabase

NOW = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
BANK = Principal("HKBANK")


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


async def resolve(host: str, port: int) -> list[str]:
    """A fake resolver (no DNS in unit tests): hooks.example.com has one public address."""
    if host == "hooks.example.com":
        return ["93.184.215.14"]
    raise OSError(f"{host}: no such name")


@pytest.fixture
def webhooks(db: FakeDatabase) -> WebhooksService:
    settings = Settings(webhook_allow_hosts="hooks.example.com", webhooks_per_participant=2)
    return WebhooksService(db.uow, clock=lambda: NOW, settings=settings, resolve=resolve)


async def test_a_webhook_is_registered_with_a_secret_of_its_own(
    webhooks: WebhooksService, db: FakeDatabase
) -> None:
    made = await webhooks.register(BANK, url="https://hooks.example.com/a")
    assert made.secret.startswith("whsec_") and made.created_at == NOW
    assert db.rows.webhooks[made.webhook_id]["participant_id"] == "HKBANK"
    listed = await webhooks.list_webhooks(BANK)
    assert [w["webhook_id"] for w in listed] == [made.webhook_id]
    assert await webhooks.list_webhooks(Principal("HKOTHER")) == []


async def test_a_url_outside_the_allow_list_is_refused(webhooks: WebhooksService, db: FakeDatabase) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await webhooks.register(BANK, url="https://elsewhere.example.org/a")
    assert refused.value.code == "WEBHOOK_URL_NOT_ALLOWED"
    assert db.opened == 0


async def test_a_host_that_resolves_to_a_private_address_is_refused_before_any_work(db: FakeDatabase) -> None:
    async def private(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]

    settings = Settings(webhook_allow_hosts="hooks.example.com")
    service = WebhooksService(db.uow, clock=lambda: NOW, settings=settings, resolve=private)
    with pytest.raises(InvalidRequest) as refused:
        await service.register(BANK, url="https://hooks.example.com/a")
    assert refused.value.code == "WEBHOOK_URL_NOT_ALLOWED"
    assert "resolves to a loopback or private address" in str(refused.value)
    with pytest.raises(InvalidRequest) as unknown:
        await webhooks_of(db).register(BANK, url="https://hooks.example.com.invalid/a")
    assert unknown.value.code == "WEBHOOK_URL_NOT_ALLOWED"
    assert db.opened == 0


def webhooks_of(db: FakeDatabase) -> WebhooksService:
    settings = Settings(webhook_allow_hosts="hooks.example.com.invalid")
    return WebhooksService(db.uow, clock=lambda: NOW, settings=settings, resolve=resolve)


async def test_a_bank_registers_up_to_its_cap(webhooks: WebhooksService, db: FakeDatabase) -> None:
    for n in range(2):
        await webhooks.register(BANK, url=f"https://hooks.example.com/{n}")
    with pytest.raises(Conflict) as full:
        await webhooks.register(BANK, url="https://hooks.example.com/2")
    assert full.value.code == "WEBHOOK_LIMIT_REACHED"
    assert len(db.rows.webhooks) == 2


async def test_a_webhook_is_removed_once_and_only_by_its_bank(webhooks: WebhooksService) -> None:
    made = await webhooks.register(BANK, url="https://hooks.example.com/a")
    with pytest.raises(NotFound):
        await webhooks.remove(Principal("HKOTHER"), made.webhook_id)
    await webhooks.remove(BANK, made.webhook_id)
    with pytest.raises(NotFound):
        await webhooks.remove(BANK, made.webhook_id)
    assert await webhooks.list_webhooks(BANK) == []


async def test_the_operator_has_no_webhooks(webhooks: WebhooksService) -> None:
    with pytest.raises(Forbidden):
        await webhooks.list_webhooks(OPERATOR)
