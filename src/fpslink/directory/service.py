"""Proxy directory: +852 numbers are FPS's (kept here), +86 numbers are IBPS's (asked over HTTP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from fpslink.db import Clock
from fpslink.directory.masking import mask_name
from fpslink.directory.phones import InvalidProxy, normalize_mobile, region_of
from fpslink.errors import Conflict, InvalidRequest, NotFound, UpstreamUnavailable
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable
from fpslink.money import Currency
from fpslink.participants.service import ParticipantsService
from fpslink.principal import Principal
from fpslink.uow import UnitsOfWork
from fpslink.vocabulary import System
from ibps_wire.schemas import ProxyOut, ProxyRegistered

SYSTEM_OF_REGION = {"HK": System.FPS, "CN": System.IBPS}
MOBILE = "MOBILE"


@dataclass(frozen=True, slots=True)
class ResolvedProxy:
    """What the gateway knows about a proxy; only `masked_name` ever leaves for another bank."""

    proxy_value: str
    account_id: str
    participant_id: str
    system: System
    currency: Currency
    holder_name: str

    @property
    def masked_name(self) -> str:
        return mask_name(self.holder_name)


class ProxyLookupUnavailable(Exception):
    """IBPS did not answer a +86 look-up in time."""


def parse_proxy(value: str) -> str:
    try:
        return normalize_mobile(value)
    except InvalidProxy as exc:
        raise InvalidRequest(str(exc), code="INVALID_PROXY") from exc


class IbpsProxies(Protocol):
    """What the directory asks of IBPS: +86 numbers are registered and resolved there."""

    async def register_proxy(self, *, proxy_value: str, account_id: str) -> ProxyRegistered: ...

    async def lookup_proxy(self, proxy_value: str) -> ProxyOut | None: ...


class DirectoryService:
    """Built once per process (`fpslink.context.Gateway`); the payment path resolves creditors here."""

    def __init__(
        self, uow: UnitsOfWork, ibps: IbpsProxies, *, clock: Clock, participants: ParticipantsService
    ) -> None:
        self._uow = uow
        self._ibps = ibps
        self._clock = clock
        self._participants = participants

    async def register(
        self, principal: Principal, *, proxy_type: str, proxy_value: str, account_id: str
    ) -> ResolvedProxy:
        account = await self._participants.owned_account(principal, account_id)
        e164 = parse_proxy(proxy_value)
        if SYSTEM_OF_REGION[region_of(e164)] is not account.system:
            raise InvalidRequest(
                f"{e164} belongs to the other system: register +852 numbers to FPS accounts "
                "and +86 numbers to IBPS accounts",
                code="PROXY_REGION_MISMATCH",
            )
        taken = Conflict(f"{e164} is already registered", code="PROXY_ALREADY_REGISTERED", proxy_value=e164)
        if account.system is System.IBPS:
            try:
                await self._ibps.register_proxy(proxy_value=e164, account_id=account_id)
            except IbpsUnavailable as exc:
                raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
            except IbpsRefused as exc:
                if exc.status == 409:
                    raise taken from exc
                raise InvalidRequest(f"IBPS refused the proxy: {exc.detail}", code=exc.code) from exc
        else:
            try:
                async with self._uow() as tx:
                    await tx.proxies.insert(
                        proxy_type=proxy_type,
                        proxy_value=e164,
                        account_id=account_id,
                        participant_id=account.participant_id,
                        now=self._clock(),
                    )
                    await tx.commit()
            except IntegrityError as exc:
                raise taken from exc
        return ResolvedProxy(
            proxy_value=e164,
            account_id=account_id,
            participant_id=account.participant_id,
            system=account.system,
            currency=account.currency,
            holder_name=account.holder_name,
        )

    async def resolve(self, e164: str) -> ResolvedProxy | None:
        """Find the account behind a normalised number; raises ProxyLookupUnavailable on IBPS silence."""
        if region_of(e164) == "HK":
            async with self._uow() as tx:
                account_id = await tx.proxies.account_id_of(proxy_type=MOBILE, proxy_value=e164)
                if account_id is None:
                    return None
                account = await tx.participants.account(account_id)
            if account is None:
                return None
            return ResolvedProxy(
                proxy_value=e164,
                account_id=account.account_id,
                participant_id=account.participant_id,
                system=account.system,
                currency=account.currency,
                holder_name=account.holder_name,
            )
        try:
            found = await self._ibps.lookup_proxy(e164)
        except IbpsUnavailable as exc:
            raise ProxyLookupUnavailable(str(exc)) from exc
        if found is None:
            return None
        return ResolvedProxy(
            proxy_value=found.proxy_value,
            account_id=found.account_id,
            participant_id=found.participant_id,
            system=System.IBPS,
            currency=Currency(found.currency),
            holder_name=found.holder_name,
        )

    async def lookup(self, *, proxy_type: str, proxy_value: str) -> ResolvedProxy:
        if proxy_type != MOBILE:
            raise InvalidRequest(
                f"proxy type {proxy_type!r} is not supported; use MOBILE",
                code="PROXY_TYPE_NOT_SUPPORTED",
            )
        e164 = parse_proxy(proxy_value)
        try:
            found = await self.resolve(e164)
        except ProxyLookupUnavailable as exc:
            raise UpstreamUnavailable(f"IBPS did not answer the look-up: {exc}", code="AB06") from exc
        if found is None:
            raise NotFound(f"no account is registered for {e164}", code="BE23", proxy_value=e164)
        return found
