"""Idempotency: the same key and body answer the same outcome; another body with the key is an error.

Payment keys are bound inside the payment's acceptance transaction and replays answer from the
payment as it is now (docs/architecture.md#rulings, R7). Other POST endpoints store their response
and replay it; a response that carries a secret (a bank's API key, a webhook's signing secret) is
stored redacted, so the secret is shown once and never rests in the key table.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fpslink.config import Settings
from fpslink.db import Clock
from fpslink.errors import Conflict, FpslinkError, InvalidRequest
from fpslink.principal import Principal
from fpslink.uow import UnitsOfWork

KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")


def parse_key(raw: str | None, *, required: bool) -> str | None:
    """The key as sent; a value in double quotes (as the IETF draft writes it) loses them."""
    if raw is None or raw == "":
        if required:
            raise InvalidRequest(
                "the Idempotency-Key header is required: send a unique value (a UUID is ideal) "
                "and reuse it when you retry",
                code="IDEMPOTENCY_KEY_MISSING",
            )
        return None
    key = raw[1:-1] if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"') else raw
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidRequest(
            "Idempotency-Key must be 1-255 visible ASCII characters", code="IDEMPOTENCY_KEY_INVALID"
        )
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    """Hash of the request with amounts and phone numbers already normalised by validation."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def reused() -> InvalidRequest:
    return InvalidRequest(
        "this Idempotency-Key was used with a different request; use a new key for a new request",
        code="IDEMPOTENCY_KEY_REUSED",
    )


def in_progress() -> Conflict:
    return Conflict(
        "a request with this Idempotency-Key is still being processed; retry shortly",
        code="IDEMPOTENCY_IN_PROGRESS",
    )


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: Any
    replayed: bool


Redact = Callable[[Any], Any]
"""The response as it may be stored and replayed: the same, less any secret it shows."""


class IdempotencyService:
    """The stored responses of POST endpoints other than payments; built once per process
    (`fpslink.context.Gateway`). Payments bind their keys in their acceptance batch instead."""

    def __init__(self, uow: UnitsOfWork, *, clock: Clock, settings: Settings) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings

    async def run_idempotent(
        self,
        principal: Principal,
        *,
        key: str | None,
        endpoint: str,
        request_fingerprint: str,
        action: Callable[[], Awaitable[tuple[int, Any]]],
        redact: Redact | None = None,
    ) -> StoredResponse:
        """Run `action` once per key; replay its stored response for the same request.

        With `redact`, the first answer is `action`'s own and what is stored (and replayed) is
        `redact` of it: a secret in the response is shown once.
        """
        if key is None:
            status, body = await action()
            return StoredResponse(status, body, replayed=False)
        scope = principal.scope
        now = self._clock()
        lease_until = now + timedelta(seconds=self._settings.request_lease_s)
        async with self._uow() as tx:
            keys = tx.idempotency
            bound = await keys.bind(
                scope=scope,
                key=key,
                endpoint=endpoint,
                fingerprint=request_fingerprint,
                payment_id=None,
                now=now,
                lease_until=lease_until,
                expires_at=now + timedelta(hours=self._settings.idempotency_ttl_h),
            )
            if not bound:
                existing = await keys.find(scope=scope, key=key, now=now)
                if existing is None:
                    raise in_progress()
                if existing.fingerprint != request_fingerprint or existing.endpoint != endpoint:
                    raise reused()
                if existing.completed_at is not None and existing.response_status is not None:
                    body = json.loads(existing.response_body) if existing.response_body else None
                    return StoredResponse(existing.response_status, body, replayed=True)
                if not await keys.take_over(scope=scope, key=key, now=now, lease_until=lease_until):
                    raise in_progress()
            await tx.commit()
        try:
            status, body = await action()
        except FpslinkError:
            async with self._uow() as tx:
                await tx.idempotency.release(scope=scope, key=key)
                await tx.commit()
            raise
        stored = body if redact is None else redact(body)
        async with self._uow() as tx:
            await tx.idempotency.complete(
                scope=scope, key=key, now=self._clock(), status=status, body=json.dumps(stored, default=str)
            )
            await tx.commit()
        return StoredResponse(status, body, replayed=False)
