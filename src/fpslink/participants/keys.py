"""API keys: their text, hash and public prefix, their status, and the process's cache of look-ups.

Pure but for the cache's use of a monotonic ticker (injected). Only a key's SHA-256 is stored; the
prefix, which a bank sees in its key list and names a key by to revoke it, is the key's first
characters: for a key the gateway made, `fpsl_<bank>_` and eight random characters of the 32 that
follow; for one given to it (the sandbox's demo keys), its first eight characters. A key stored
before prefixes existed is named `sha256:` and the first twelve hex digits of its hash
(`printf %s "$KEY" | sha256sum | cut -c1-12`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fpslink.principal import Principal
from fpslink.ratelimit.policy import Quota

PREFIX_CHARS = 8
"""Random characters a prefix shows: 48 bits, so two keys of one bank never share one in practice
(the database refuses it if they would), and 144 of the 192 bits stay secret."""


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key(participant_id: str) -> str:
    return f"fpsl_{participant_id.lower()}_{secrets.token_urlsafe(24)}"


def key_prefix(api_key: str, participant_id: str) -> str:
    """The part of a key that names it in lists and in DELETE .../keys/{prefix}."""
    ours = f"fpsl_{participant_id.lower()}_"
    if api_key.startswith(ours) and len(api_key) > len(ours) + PREFIX_CHARS:
        return api_key[: len(ours) + PREFIX_CHARS]
    return api_key[:PREFIX_CHARS]


class KeyStatus(StrEnum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored key, without its secret."""

    participant_id: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    """When a worker last looked the key up: accurate to FPSLINK_KEY_CACHE_TTL_S, since a worker
    records a use when it looks a key up, not at every request it serves from its cache."""
    revoked_at: datetime | None

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Caller:
    """What a valid key makes its holder: who they are, and the quota they spend (None: none, the
    operator; a bank with no quota of its own gets the default from the settings)."""

    principal: Principal
    quota: Quota | None
    expires_at: datetime | None = None


class KeyCache:
    """Key hash -> `Caller`, each entry trusted for `ttl_s` of the ticker, then looked up again.

    An entry past half its TTL is still served, and says it is due: the service looks the key up
    again in the background, so a key in steady use never waits for the database and is refused
    within the TTL of its revocation. Only valid keys are kept, so it holds at most the keys in use;
    a key found revoked, expired or unknown on its next look-up leaves it.
    """

    __slots__ = ("_entries", "_ticker", "_ttl_s", "generation")

    def __init__(self, ttl_s: float, ticker: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._ticker = ticker
        self._entries: dict[str, tuple[Caller, float]] = {}
        self.generation = 0
        """Moves on when entries are dropped on purpose: a look-up begun before keeps nothing."""

    def get(self, key_hash: str, now: datetime) -> tuple[Caller, bool] | None:
        """The cached caller, if its entry is fresh and the key has not expired since, and whether
        it is due to be looked up again."""
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        caller, fresh_until = entry
        left = fresh_until - self._ticker()
        if left <= 0 or (caller.expires_at is not None and caller.expires_at <= now):
            return None
        return caller, left <= self._ttl_s / 2

    def put(self, key_hash: str, caller: Caller, generation: int) -> None:
        """Keep a look-up's answer, unless entries were dropped since it began (`generation`)."""
        if generation == self.generation:
            self._entries[key_hash] = (caller, self._ticker() + self._ttl_s)

    def forget(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)

    def forget_participant(self, participant_id: str) -> None:
        """Drop a bank's entries on this worker at once (its key revoked, its quota changed here)."""
        stale = [h for h, (c, _) in self._entries.items() if c.principal.participant_id == participant_id]
        for key_hash in stale:
            del self._entries[key_hash]
        self.generation += 1
