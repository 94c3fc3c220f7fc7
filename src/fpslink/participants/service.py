"""Participants, API keys and accounts. IBPS accounts are opened in mock_ibps; the gateway keeps a
directory row for every account so it can authorise without asking IBPS."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from fpslink.config import Settings
from fpslink.db import Clock
from fpslink.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    UpstreamUnavailable,
)
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable
from fpslink.money import Currency, format_minor, to_minor
from fpslink.participants.keys import (
    ApiKeyRecord,
    Caller,
    KeyCache,
    KeyStatus,
    hash_key,
    key_prefix,
    new_api_key,
)
from fpslink.participants.repository import AccountRecord, ParticipantRecord, VisibleAccount
from fpslink.principal import OPERATOR, Principal
from fpslink.ratelimit.policy import Quota
from fpslink.uow import UnitsOfWork
from fpslink.vocabulary import System
from ibps_wire.schemas import AccountOut, ParticipantOut

__all__ = ["hash_key", "new_api_key"]
"""Re-exported from `participants.keys`, where they live now: the sandbox's seed imports them here."""

ACCOUNT_PREFIX = {System.FPS: "HK", System.IBPS: "CN"}
OPERATOR_CALLER = Caller(OPERATOR, quota=None)
NEW_KEY_ATTEMPTS = 3
"""A new key whose prefix another key of the bank already has is drawn again (48 random bits: never
seen in practice, but the unique prefix is what revocation names)."""


def new_account_id(system: System) -> str:
    """Ids are unique across both systems and tell the system by their prefix (HK / CN)."""
    return ACCOUNT_PREFIX[system] + uuid.uuid4().hex[:16].upper()


def system_of_account_id(account_id: str) -> System | None:
    for system, prefix in ACCOUNT_PREFIX.items():
        if account_id.startswith(prefix):
            return system
    return None


def require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("only the scheme operator may call this", code="OPERATOR_ONLY")


def require_participant(principal: Principal) -> str:
    if principal.participant_id is None:
        raise Forbidden(
            "the operator administers the sandbox but makes no payments or quotes; use a bank's key",
            code="PARTICIPANT_ONLY",
        )
    return principal.participant_id


@dataclass(frozen=True, slots=True)
class CreatedParticipant:
    participant: ParticipantRecord
    api_key: str


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: ApiKeyRecord
    api_key: str
    """The key itself: shown once, in the answer that creates it; only its hash is stored."""


@dataclass(frozen=True, slots=True)
class RateLimitView:
    participant_id: str
    quota: Quota
    own: bool
    """Whether the operator set this bank's quota (else it is the settings' default)."""


@dataclass(frozen=True, slots=True)
class AccountView:
    record: AccountRecord
    balance: str
    available_balance: str
    held: str


class IbpsAccounts(Protocol):
    """What this service asks of IBPS: its banks and accounts live there, not here."""

    async def create_participant(self, *, participant_id: str, name: str) -> ParticipantOut: ...

    async def open_account(
        self, *, account_id: str, participant_id: str, holder_name: str, opening_balance_minor: int
    ) -> AccountOut: ...

    async def get_account(self, account_id: str) -> AccountOut | None: ...


class ParticipantsService:
    """Banks, their keys and their accounts; built once per process (`fpslink.context.Gateway`).

    It keeps the process's cache of API keys (`KeyCache`): each key is looked up about once per half
    FPSLINK_KEY_CACHE_TTL_S per worker while in use, in the background, not per request, so a
    revoked key, an expired one or a new quota takes effect in every worker within the TTL. Only a
    key not seen for a TTL waits for its look-up; concurrent requests with it share one.
    """

    def __init__(
        self,
        uow: UnitsOfWork,
        ibps: IbpsAccounts,
        *,
        clock: Clock,
        settings: Settings,
        ticker: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = uow
        self._ibps = ibps
        self._clock = clock
        self._settings = settings
        self._operator_keys = tuple(
            key.encode() for key in (settings.operator_key or "", *settings.previous_operator_keys) if key
        )
        """The current operator key, then those still accepted during a rotation."""
        self._default_quota = Quota(settings.rate_limit_quota, settings.rate_limit_window_s)
        self._keys = KeyCache(settings.key_cache_ttl_s, ticker)
        self._looking_up: dict[str, asyncio.Future[Caller | None]] = {}

    async def authenticate(self, api_key: str | None) -> Principal:
        return (await self.identify(api_key)).principal

    async def identify(self, api_key: str | None) -> Caller:
        """Who holds this key and the quota they spend; 401 for no key, or an unknown, revoked or
        expired one."""
        if not api_key:
            raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
        sent = api_key.encode()
        # every operator key is compared, so the time taken does not tell which one matched
        if sum(hmac.compare_digest(sent, key) for key in self._operator_keys):
            return OPERATOR_CALLER
        key_hash = hash_key(api_key)
        cached = self._keys.get(key_hash, self._clock())
        if cached is None:
            caller = await asyncio.shield(self._look_up(key_hash))
        else:
            caller, due = cached
            if due:
                self._look_up(key_hash)  # in the background: this request goes on with the entry
        if caller is None:
            raise Unauthorized(
                "unknown API key: use a bank key the sandbox printed when it started, or create a "
                "bank with POST /v1/participants and the operator key (a revoked or expired key is "
                "unknown too)"
            )
        return caller

    def _look_up(self, key_hash: str) -> asyncio.Future[Caller | None]:
        """The key's look-up in flight, or a new one: one per key at a time in this process, which
        the requests that need it wait for."""
        pending = self._looking_up.get(key_hash)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key_hash))
            self._looking_up[key_hash] = pending

            def done(finished: asyncio.Future[Caller | None]) -> None:
                self._looking_up.pop(key_hash, None)
                if not finished.cancelled():
                    finished.exception()  # a request waiting for it raises it; a refresh drops it

            pending.add_done_callback(done)
        return pending

    async def _fetch(self, key_hash: str) -> Caller | None:
        generation = self._keys.generation
        async with self._uow() as tx:
            found = await tx.participants.use_key(key_hash, now=self._clock())
            await tx.commit()
        if found is None:
            self._keys.forget(key_hash)
            return None
        bank = found.participant
        caller = Caller(
            Principal(participant_id=bank.participant_id, system=bank.system, bic=bank.bic),
            quota=bank.quota or self._default_quota,
            expires_at=found.expires_at,
        )
        self._keys.put(key_hash, caller, generation)
        return caller

    async def create_participant(
        self,
        *,
        participant_id: str,
        name: str,
        system: System,
        api_key: str | None = None,
        bic: str | None = None,
    ) -> CreatedParticipant:
        api_key = api_key or new_api_key(participant_id)
        exists = Conflict(
            f"participant {participant_id} exists", code="PARTICIPANT_EXISTS", participant_id=participant_id
        )
        async with self._uow() as tx:
            if await tx.participants.participant(participant_id) is not None:
                raise exists
            if bic is not None and await tx.participants.participant_by_bic(bic) is not None:
                raise Conflict(f"BIC {bic} belongs to another participant", code="BIC_IN_USE")
        if system is System.IBPS:
            try:
                await self._ibps.create_participant(participant_id=participant_id, name=name)
            except IbpsUnavailable as exc:
                raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
            except IbpsRefused as exc:
                if exc.status == 409:
                    raise Conflict(
                        f"participant {participant_id} exists at IBPS with other details",
                        code="PARTICIPANT_EXISTS",
                        participant_id=participant_id,
                    ) from exc
                raise InvalidRequest(
                    f"mock_ibps refused the participant: {exc.detail}", code=exc.code
                ) from exc
        try:
            async with self._uow() as tx:
                now = self._clock()
                await tx.participants.insert_participant(
                    participant_id=participant_id, name=name, system=system, now=now, bic=bic
                )
                await tx.participants.insert_key(
                    participant_id=participant_id,
                    key_hash=hash_key(api_key),
                    prefix=key_prefix(api_key, participant_id),
                    now=now,
                    expires_at=None,
                )
                await tx.commit()
        except IntegrityError as exc:
            raise exists from exc
        return CreatedParticipant(ParticipantRecord(participant_id, name, system, bic), api_key)

    # keys and quotas ------------------------------------------------------------------------------

    def _own(self, principal: Principal, participant_id: str) -> None:
        """A bank manages its own keys; the operator any bank's. Another bank's is as unknown as a
        missing one (404 alike)."""
        if not (principal.is_operator or principal.participant_id == participant_id):
            raise self._no_participant(participant_id)

    @staticmethod
    def _no_participant(participant_id: str) -> NotFound:
        return NotFound(
            f"participant {participant_id} does not exist",
            code="PARTICIPANT_NOT_FOUND",
            participant_id=participant_id,
        )

    async def create_key(
        self, principal: Principal, participant_id: str, *, expires_at: datetime | None
    ) -> CreatedKey:
        """Another key for the bank, up to FPSLINK_KEYS_PER_PARTICIPANT active ones."""
        self._own(principal, participant_id)
        now = self._clock()
        if expires_at is not None and expires_at <= now:
            raise InvalidRequest("expires_at must be in the future", code="VALIDATION_ERROR")
        cap = self._settings.keys_per_participant
        for attempt in range(NEW_KEY_ATTEMPTS):
            api_key = new_api_key(participant_id)
            try:
                async with self._uow() as tx:
                    if await tx.participants.participant(participant_id, lock=True) is None:
                        raise self._no_participant(participant_id)
                    if await tx.participants.active_keys(participant_id, now=now) >= cap:
                        raise Conflict(
                            f"{participant_id} holds {cap} active keys, the most a bank may: revoke "
                            "one first (DELETE /v1/participants/{id}/keys/{prefix})",
                            code="KEY_LIMIT_REACHED",
                            participant_id=participant_id,
                        )
                    record = await tx.participants.insert_key(
                        participant_id=participant_id,
                        key_hash=hash_key(api_key),
                        prefix=key_prefix(api_key, participant_id),
                        now=now,
                        expires_at=expires_at,
                    )
                    await tx.commit()
            except IntegrityError:
                if attempt + 1 == NEW_KEY_ATTEMPTS:
                    raise
                continue
            return CreatedKey(record, api_key)
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_keys(self, principal: Principal, participant_id: str) -> list[ApiKeyRecord]:
        self._own(principal, participant_id)
        async with self._uow() as tx:
            if await tx.participants.participant(participant_id) is None:
                raise self._no_participant(participant_id)
            return await tx.participants.keys(participant_id)

    async def revoke_key(self, principal: Principal, participant_id: str, prefix: str) -> ApiKeyRecord:
        """Revoke a key: at once in this worker, within FPSLINK_KEY_CACHE_TTL_S in every other.
        Revoking a revoked key answers it unchanged. A bank may not revoke its last active key (it
        would lock itself out); the operator may."""
        self._own(principal, participant_id)
        now = self._clock()
        async with self._uow() as tx:
            if await tx.participants.participant(participant_id, lock=True) is None:
                raise self._no_participant(participant_id)
            keys = {k.prefix: k for k in await tx.participants.keys(participant_id)}
            key = keys.get(prefix)
            if key is None:
                raise NotFound(
                    f"{participant_id} has no key with prefix {prefix}",
                    code="KEY_NOT_FOUND",
                    participant_id=participant_id,
                )
            if key.status(now) is KeyStatus.REVOKED:
                return key
            others = [k for k in keys.values() if k.prefix != prefix and k.status(now) is KeyStatus.ACTIVE]
            if not principal.is_operator and key.status(now) is KeyStatus.ACTIVE and not others:
                raise Conflict(
                    f"this is {participant_id}'s last active key: create another first "
                    "(POST /v1/participants/{id}/keys)",
                    code="KEY_IS_LAST",
                    participant_id=participant_id,
                )
            revoked = await tx.participants.revoke_key(participant_id=participant_id, prefix=prefix, now=now)
            await tx.commit()
        self._keys.forget_participant(participant_id)
        assert revoked is not None  # the row is locked through its participant's
        return revoked

    async def rate_limit(self, principal: Principal, participant_id: str) -> RateLimitView:
        self._own(principal, participant_id)
        async with self._uow() as tx:
            bank = await tx.participants.participant(participant_id)
        if bank is None:
            raise self._no_participant(participant_id)
        return RateLimitView(participant_id, bank.quota or self._default_quota, own=bank.quota is not None)

    async def set_rate_limit(self, participant_id: str, quota: Quota | None) -> RateLimitView:
        """The operator's: a bank's own quota (a load tester's, say), or the default back (None).
        Every worker applies it within FPSLINK_KEY_CACHE_TTL_S."""
        async with self._uow() as tx:
            if not await tx.participants.set_quota(participant_id, quota):
                raise self._no_participant(participant_id)
            await tx.commit()
        self._keys.forget_participant(participant_id)
        return RateLimitView(participant_id, quota or self._default_quota, own=quota is not None)

    async def open_account(
        self,
        *,
        participant_id: str,
        holder_name: str,
        currency: Currency,
        opening_balance: Decimal,
        account_id: str | None = None,
    ) -> AccountView:
        """An IBPS account opens at IBPS first and is kept here only once IBPS has it; an FPS account
        and its opening balance are written together."""
        async with self._uow() as tx:
            owner = await tx.participants.participant(participant_id)
        if owner is None:
            raise NotFound(
                f"participant {participant_id} does not exist",
                code="PARTICIPANT_NOT_FOUND",
                participant_id=participant_id,
            )
        if owner.system is System.IBPS and currency is not Currency.CNY:
            raise InvalidRequest("IBPS accounts hold CNY only", code="CURRENCY_NOT_SUPPORTED")
        record = AccountRecord(
            account_id=account_id or new_account_id(owner.system),
            participant_id=participant_id,
            system=owner.system,
            currency=currency,
            holder_name=holder_name,
        )
        opening_minor = to_minor(opening_balance, currency)
        now = self._clock()
        if owner.system is System.IBPS:
            try:
                await self._ibps.open_account(
                    account_id=record.account_id,
                    participant_id=participant_id,
                    holder_name=holder_name,
                    opening_balance_minor=opening_minor,
                )
            except IbpsUnavailable as exc:
                raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
            except IbpsRefused as exc:
                raise InvalidRequest(f"mock_ibps refused the account: {exc.detail}", code=exc.code) from exc
            async with self._uow() as tx:
                await tx.participants.insert_account(record, now=now)
                await tx.commit()
        else:
            async with self._uow() as tx:
                await tx.participants.insert_account(record, now=now)
                await tx.ledger.open_account(
                    account_id=record.account_id, currency=currency, opening_minor=opening_minor, now=now
                )
                await tx.commit()
        text = format_minor(opening_minor, currency)
        return AccountView(record, balance=text, available_balance=text, held=format_minor(0, currency))

    async def owned_account(self, principal: Principal, account_id: str) -> AccountRecord:
        """The account if the caller may see it; 404 alike for unknown and for another bank's."""
        return (await self._visible_account(principal, account_id)).record

    async def _visible_account(self, principal: Principal, account_id: str) -> VisibleAccount:
        # one statement checks the caller and reads, so both 404s are the same answer in the same time
        async with self._uow() as tx:
            found = await tx.participants.visible_account(account_id, viewer=principal.participant_id)
        if found is None:
            raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
        return found

    async def account_view(self, principal: Principal, account_id: str) -> AccountView:
        found = await self._visible_account(principal, account_id)
        record, cur = found.record, found.record.currency
        if record.system is System.FPS:
            balance, held = found.balances if found.balances is not None else (0, 0)
            return AccountView(
                record,
                balance=format_minor(balance, cur),
                available_balance=format_minor(balance - held, cur),
                held=format_minor(held, cur),
            )
        try:
            remote = await self._ibps.get_account(account_id)
        except IbpsUnavailable as exc:
            raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
        if remote is None:
            raise NotFound(f"account {account_id} not found at IBPS", code="ACCOUNT_NOT_FOUND")
        return AccountView(
            record,
            balance=format_minor(remote.balance_minor, cur),
            available_balance=format_minor(remote.available_minor, cur),
            held=format_minor(remote.held_minor, cur),
        )

    async def list_participants(self) -> list[ParticipantRecord]:
        async with self._uow() as tx:
            return await tx.participants.list_participants()

    async def present(
        self, *, key_hashes: Iterable[str], account_ids: Iterable[str]
    ) -> tuple[set[str], set[str]]:
        """Which of these API key hashes and account ids the directory holds (the sandbox's demo world)."""
        async with self._uow() as tx:
            keys = {h for h in key_hashes if await tx.participants.participant_by_key_hash(h) is not None}
            found = {a for a in account_ids if await tx.participants.account(a) is not None}
        return keys, found
