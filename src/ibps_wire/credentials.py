"""The rule both services apply, before they listen, to the secrets that guard them.

The gateway's operator key administers every bank, and mock_ibps's token is the gateway's identity
towards IBPS: whoever holds it can prepare and commit a credit to any mainland account with no FPS
payment behind it, or open an account with any opening balance. A value that was ever printed in
fpslink's repository (a default, an example, a test's value) or that is short enough to guess would
hand either to anyone who reaches the service, so a serving process refuses it and says how to make
a good one. Someone who wants a throwaway server on their own machine asks for the insecure local
mode explicitly; it accepts any value, warns, and listens on loopback addresses only.

Only the standard library: both services import this module, and so may their command lines.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

MIN_LENGTH = 32
"""Characters. `secrets.token_urlsafe(24)` is 32 of them (192 bits), 32 hex digits are 128 bits; a
shorter value is either guessable or typed by hand, and neither should guard a shared sandbox."""
MIN_DISTINCT = 8
"""Different characters: refuses "aaaa..." and other long but trivial values."""
GENERATED_BYTES = 32
"""Random bytes in a generated secret: 43 URL-safe characters, 256 bits."""

PUBLISHED: frozenset[str] = frozenset(
    {
        # defaults and examples that fpslink's files have shown
        "ibps-sandbox-token",
        "fpsl_operator_compose_sandbox_key",
        "sandbox-operator-key-0001",
        # fixed values of its tests and benchmarks
        "test-ibps-token",
        "test-token",
        "test-operator-key-0123456789",
        "operator-key-for-unit-tests",
        "bench-ibps-token",
        "bench-operator-key-0123456789",
    }
)
"""Values anyone can read in this repository, compared without regard to case. Most are also too
short; they are named so that the refusal says why, and so that a long one cannot slip through
(tests/security keeps this set in step with the repository's documents)."""

INSECURE_LOCAL_IBPS_TOKEN = "ibps-sandbox-token"
"""The IBPS token both services use in the insecure local mode when none is set. Published, so
it is accepted there only, on loopback addresses."""

PYTHON_ONE_LINER = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def weakness(value: str | None) -> str | None:
    """Why `value` cannot guard a shared service, or None when it can."""
    if value is None or not value.strip():
        return "is not set"
    if value != value.strip():
        return "starts or ends with white space (a copy-paste slip?)"
    if value.lower() in PUBLISHED:
        return "is a value published in fpslink's repository, known to anyone"
    if len(value) < MIN_LENGTH:
        return f"is {len(value)} characters long; at least {MIN_LENGTH} are needed"
    if len(set(value)) < MIN_DISTINCT:
        return f"uses {len(set(value))} different characters; at least {MIN_DISTINCT} are needed"
    return None


def new_secret(prefix: str = "") -> str:
    """A fresh secret that `weakness` accepts: `prefix` (to tell keys apart) and 256 random bits."""
    return prefix + secrets.token_urlsafe(GENERATED_BYTES)


def is_loopback(host: str) -> bool:
    """Whether a server bound to `host` is reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class WeakSecrets(Exception):
    """A service was about to serve with secrets it must not serve with; the message says which,
    why, and how to set good ones. Command lines print it and exit with code 2."""


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """One secret a service serves with: the variable that sets it and how it relates to others."""

    variable: str
    value: str | None
    note: str = ""
    """Printed after its example, e.g. that the other service must hold the same value."""


def check(
    service: str,
    specs: list[SecretSpec],
    *,
    insecure_local: bool,
    insecure_switch: str,
    hosts: Mapping[str, str] | None = None,
) -> list[str]:
    """Refuse (WeakSecrets) weak secrets unless in the insecure local mode; there, refuse any
    address in `hosts` (what -> address) that is not loopback, and return the warnings to print."""
    weak = [(spec, reason) for spec in specs if (reason := weakness(spec.value)) is not None]
    wide = {what: host for what, host in (hosts or {}).items() if not is_loopback(host)}
    if insecure_local:
        if wide:
            listed = " and ".join(f"{what} would listen on {host}" for what, host in wide.items())
            raise WeakSecrets(
                f"{service}: the insecure local mode serves on loopback addresses only, and {listed}. "
                "Bind 127.0.0.1, or leave the insecure mode and set real secrets:\n"
                + _how_to([spec for spec, _ in weak] or specs)
            )
        return [
            f"{service}: INSECURE local mode ({insecure_switch}): {spec.variable} {reason}; "
            "anyone on this machine can use it"
            for spec, reason in weak
        ]
    if not weak:
        return []
    lines = [f"{service}: refusing to serve with a missing or weak secret:"]
    lines += [f"  {spec.variable} {reason}" for spec, reason in weak]
    lines.append(_how_to([spec for spec, _ in weak]))
    lines.append(
        f"For a throwaway server on a loopback address only, ask for the insecure local mode "
        f"explicitly: {insecure_switch}."
    )
    raise WeakSecrets("\n".join(lines))


def _how_to(specs: list[SecretSpec]) -> str:
    lines = [f"Set each to a secret of your own ({PYTHON_ONE_LINER} makes one); freshly generated:"]
    for spec in specs:
        lines.append(f"  export {spec.variable}={new_secret()}" + (f"   # {spec.note}" if spec.note else ""))
    return "\n".join(lines)
