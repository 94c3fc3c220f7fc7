"""Who is calling: the one notion of identity every service and route shares.

Kept apart from the runtime (`fpslink.context`), which builds the services: a service that checks
who may do what imports this module, not the composition root that imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpslink.vocabulary import System


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: one bank, or the scheme operator (participant_id None)."""

    participant_id: str | None
    system: System | None = None
    bic: str | None = None
    """The bank's BIC, when it has one: ISO 20022 headers name the bank by it."""

    @property
    def is_operator(self) -> bool:
        return self.participant_id is None

    @property
    def scope(self) -> str:
        """The namespace of this caller's idempotency keys."""
        return self.participant_id or "~operator"


OPERATOR = Principal(participant_id=None)
