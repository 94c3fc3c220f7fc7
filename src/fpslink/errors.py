"""One error tree for the gateway; the API maps every member to RFC 9457 problem+json.

    FpslinkError                 code, HTTP status, detail, the ids involved
    ├── InvalidRequest           422: a value that passed parsing but breaks a rule
    ├── Unauthorized             401: no or unknown API key
    ├── Forbidden                403: the key's role may not call this
    ├── NotFound                 404: unknown, or another bank's (never tell which)
    ├── Conflict                 409: the resource's state forbids the request
    ├── TooManyRequests          429: the bank has spent its quota for now
    └── UpstreamUnavailable      503: mock_ibps did not answer in time

Business rejections of a payment are not errors: they are REJECTED payments with a reason code.

    LedgerStateError             not a member: a bug, never the client's doing; the catch-all
                                 handler logs it and answers 500 INTERNAL_ERROR
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://fpslink.dev/problems/"


class FpslinkError(Exception):
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    default_code: ClassVar[str] = "BAD_REQUEST"

    def __init__(self, detail: str, *, code: str | None = None, **ids: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.ids = {k: v for k, v in ids.items() if v is not None}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code.lower().replace("_", "-"),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update({k: str(v) for k, v in self.ids.items()})
        return body


class InvalidRequest(FpslinkError):
    status = 422
    title = "Invalid request"
    default_code = "VALIDATION_ERROR"


class Unauthorized(FpslinkError):
    status = 401
    title = "Unauthorized"
    default_code = "UNAUTHORIZED"


class Forbidden(FpslinkError):
    status = 403
    title = "Forbidden"
    default_code = "FORBIDDEN"


class NotFound(FpslinkError):
    status = 404
    title = "Not found"
    default_code = "NOT_FOUND"


class Conflict(FpslinkError):
    status = 409
    title = "Conflict"
    default_code = "CONFLICT"


class TooManyRequests(FpslinkError):
    status = 429
    title = "Too many requests"
    default_code = "RATE_LIMITED"

    def __init__(self, detail: str, *, policy: str, code: str | None = None, **ids: Any) -> None:
        super().__init__(detail, code=code, **ids)
        self.policy = policy
        """The RateLimit policy it breaks, named in the problem (`violated-policies`) as in the
        RateLimit fields (draft-ietf-httpapi-ratelimit-headers)."""

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().problem(instance)
        body["violated-policies"] = [self.policy]
        return body


class UpstreamUnavailable(FpslinkError):
    status = 503
    title = "IBPS unavailable"
    default_code = "IBPS_UNAVAILABLE"


class LedgerStateError(RuntimeError):
    """The FPS ledger is not as the gateway's own writes leave it: a balance update that missed an
    account it names, say. The statement or transaction it happens in fails, so nothing is half done.

    Outside `FpslinkError` on purpose: no request can cause it, so it has no problem code of its own.
    """
