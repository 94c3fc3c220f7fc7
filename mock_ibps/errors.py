"""One error tree, mapped to RFC 9457 problem+json by a single handler.

    IbpsError
    |- Unauthorized      401 UNAUTHORIZED
    |- RequestInvalid    422 VALIDATION_ERROR (CURRENCY_NOT_SUPPORTED, INVALID_PROXY)
    |- NotFound          404 PARTICIPANT_NOT_FOUND, ACCOUNT_NOT_FOUND, BE23, TRANSFER_NOT_FOUND
    |- Conflict          409 PARTICIPANT_EXISTS, ACCOUNT_EXISTS, PROXY_ALREADY_REGISTERED,
    |                        TRANSFER_MISMATCH, TRANSFER_VOIDED, TRANSFER_POSTED, STATEMENT_PURGED
    |- InjectedFault     503 INJECTED_FAULT
    |- InjectedTimeout   504 INJECTED_TIMEOUT
    '- TimedOut          504 TIMEOUT (a batch item whose outcome the caller must treat as unknown)

Business refusals of a prepare (AC01, AM04, ALREADY_ABORTED) are outcomes, not errors: they
answer 200. A batch answers each item's error as that item's result, with the same body
(``error_body``) that the single endpoint's response carries.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:mock-ibps:problem:"

# Pydantic error types raised by our own validators that deserve their own problem code.
_VALIDATION_CODES: dict[str, str] = {
    "currency_not_supported": "CURRENCY_NOT_SUPPORTED",
    "invalid_proxy": "INVALID_PROXY",
}


class IbpsError(Exception):
    """Base of every error the API reports; carries its HTTP status, code and the ids involved."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **ids: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.ids = ids


class Unauthorized(IbpsError):
    status = 401
    code = "UNAUTHORIZED"
    title = "Missing or wrong bearer token"


class RequestInvalid(IbpsError):
    status = 422
    code = "VALIDATION_ERROR"
    title = "Request is not valid"


class NotFound(IbpsError):
    status = 404


class ParticipantNotFound(NotFound):
    code = "PARTICIPANT_NOT_FOUND"
    title = "Participant not found"


class AccountNotFound(NotFound):
    code = "ACCOUNT_NOT_FOUND"
    title = "Account not found"


class ProxyNotFound(NotFound):
    code = "BE23"
    title = "Proxy not registered"


class TransferNotFound(NotFound):
    code = "TRANSFER_NOT_FOUND"
    title = "Transfer not found"


class Conflict(IbpsError):
    status = 409


class InjectedFault(IbpsError):
    """An error the sandbox's fault injection answers on purpose."""

    status = 503
    code = "INJECTED_FAULT"
    title = "Injected fault"


class InjectedTimeout(IbpsError):
    """Sent only after the caller has given up: the call 'never answered'."""

    status = 504
    code = "INJECTED_TIMEOUT"
    title = "Injected time-out"


class TimedOut(IbpsError):
    """A batch item answered as if its call had timed out: applied or not, the caller cannot know."""

    status = 504
    code = "TIMEOUT"
    title = "No answer in time"


class ParticipantExists(Conflict):
    code = "PARTICIPANT_EXISTS"
    title = "Participant exists with different fields"


class AccountExists(Conflict):
    code = "ACCOUNT_EXISTS"
    title = "Account exists with different fields"


class ProxyAlreadyRegistered(Conflict):
    code = "PROXY_ALREADY_REGISTERED"
    title = "Proxy already registered"


class TransferMismatch(Conflict):
    code = "TRANSFER_MISMATCH"
    title = "Payment id already used for a different transfer"


class TransferVoided(Conflict):
    code = "TRANSFER_VOIDED"
    title = "Transfer is voided"


class StatementPurged(Conflict):
    code = "STATEMENT_PURGED"
    title = "The business date was purged by retention"


class TransferPosted(Conflict):
    code = "TRANSFER_POSTED"
    title = "Transfer is posted"


def problem_body(*, status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_PREFIX + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def error_body(exc: IbpsError) -> dict[str, Any]:
    """The problem+json body of an error; the batch endpoint answers it per item."""
    return problem_body(status=exc.status, code=exc.code, title=exc.title, detail=exc.detail, **exc.ids)


def problem(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status=status, code=code, title=title, detail=detail, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _on_ibps_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, IbpsError):  # registered for this class only
        raise exc
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(error_body(exc), status_code=exc.status, media_type=PROBLEM_JSON, headers=headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for this class only
        raise exc
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    code = next(
        (_VALIDATION_CODES[e["type"]] for e in errors if e["type"] in _VALIDATION_CODES),
        RequestInvalid.code,
    )
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return problem(
        status=RequestInvalid.status,
        code=code,
        title=RequestInvalid.title,
        detail=detail,
        errors=errors,
    )


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # registered for this class only
        raise exc
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    code = codes.get(exc.status_code, f"HTTP_{exc.status_code}")
    return problem(
        status=exc.status_code,
        code=code,
        title=code.replace("_", " ").capitalize(),
        detail=str(exc.detail),
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _on_unexpected(_request: Request, _exc: Exception) -> JSONResponse:
    return problem(
        status=500,
        code=IbpsError.code,
        title=IbpsError.title,
        detail="unexpected error; see the service log",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IbpsError, _on_ibps_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
