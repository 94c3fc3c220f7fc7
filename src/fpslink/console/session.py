"""Console sessions: a signed, expiring token in an HttpOnly cookie, and CSRF tokens bound to it.

The cookie names the principal (a bank's id, or the operator) and the public prefix of the key that
logged in, never a key itself: revoking that key, or its expiry, ends the session (the console
checks the key on every request). It is signed with HMAC-SHA256 under a key derived from the
operator key, so changing the operator key logs everybody out. Each session carries a random
nonce; a form's CSRF token is an HMAC of that nonce, so a token stolen from one session is
worthless in another. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

COOKIE: Final = "fpslink_console"
OPERATOR_SCOPE: Final = "~operator"
SESSION_TTL_S: Final = 8 * 3600
MAX_TOKEN_CHARS: Final = 512
_PROCESS_SECRET: Final = secrets.token_bytes(32)
"""Signs sessions when no operator key is set: such sessions last as long as this process."""


@dataclass(frozen=True, slots=True)
class Session:
    scope: str
    """A participant id, or OPERATOR_SCOPE."""
    expires_at_s: int
    nonce: str
    key_prefix: str = ""
    """The prefix of the bank's key that logged in ("" for the operator): the session lasts while
    that key is neither revoked nor expired."""

    @property
    def is_operator(self) -> bool:
        return self.scope == OPERATOR_SCOPE


def signing_key(operator_key: str | None) -> bytes:
    """The console's own key, derived so that the operator key itself never signs anything."""
    if not operator_key:
        return _PROCESS_SECRET
    return hmac.new(operator_key.encode(), b"fpslink-console-session-v1", hashlib.sha256).digest()


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def issue(
    key: bytes, *, scope: str, now: datetime, key_prefix: str = "", ttl_s: int = SESSION_TTL_S
) -> tuple[str, Session]:
    """A new session token for `scope`, logged in with the key of `key_prefix`, valid `ttl_s`
    seconds from `now`."""
    session = Session(
        scope=scope,
        expires_at_s=int(now.timestamp()) + ttl_s,
        nonce=secrets.token_hex(16),
        key_prefix=key_prefix,
    )
    payload = f"v2|{session.scope}|{session.expires_at_s}|{session.nonce}|{session.key_prefix}"
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{encoded}.{_mac(key, payload)}", session


def verify(key: bytes, token: str | None, *, now: datetime) -> Session | None:
    """The session a token stands for, or None when it is forged, malformed or expired."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        return None
    encoded, mac = token.split(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    # the prefix goes last: a key chosen by its bank may hold any character, "|" included
    parts = payload.split("|", 4)
    if len(parts) != 5 or parts[0] != "v2" or not parts[2].isdigit():
        return None  # forged, or a session of the format before the key was named: log in again
    session = Session(scope=parts[1], expires_at_s=int(parts[2]), nonce=parts[3], key_prefix=parts[4])
    if session.expires_at_s <= now.timestamp():
        return None
    return session


def csrf_token(key: bytes, session: Session) -> str:
    """The token every POST form of this session must carry."""
    return _mac(key, f"csrf|{session.nonce}")


def csrf_ok(key: bytes, session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(str(sent), csrf_token(key, session))
