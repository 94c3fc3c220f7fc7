"""Every error leaves as RFC 9457 problem+json with a stable `code`; nothing leaks a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fpslink.errors import PROBLEM_BASE, FpslinkError

log = logging.getLogger("fpslink.api")
PROBLEM_JSON = "application/problem+json"

HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def problem_response(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


UNAVAILABLE_CAUSES = {
    "TooManyConnectionsError",
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "InterfaceError",
}
"""Driver errors that mean the database is out of reach or out of connections, not a bad query."""


def database_unavailable(exc: BaseException) -> bool:
    """The database could not serve the request now (down, restarting, out of connections, locked)."""
    if isinstance(exc, (OperationalError, InterfaceError, ConnectionError)):
        return True  # the driver's connect errors can arrive unwrapped (asyncpg: ConnectionRefusedError)
    if not isinstance(exc, DBAPIError):
        return False
    seen: list[BaseException] = []
    current: BaseException | None = exc.orig
    while current is not None and len(seen) < 5:
        seen.append(current)
        current = current.__cause__
    return any(isinstance(e, ConnectionError) or type(e).__name__ in UNAVAILABLE_CAUSES for e in seen)


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _error(error: Mapping[str, Any]) -> dict[str, str]:
    """One validation error as a field and a message. A body that is not JSON at all gets a message
    that says so and where, rather than pydantic's "1: JSON decode error" (1 being the offset)."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        offset = loc[-1] if loc and isinstance(loc[-1], int) else None
        reason = (error.get("ctx") or {}).get("error", "")
        where = f" at character {offset}" if offset is not None else ""
        return {"field": "body", "message": f"not valid JSON{where}: {reason}".rstrip(": ")}
    return {"field": _where(loc), "message": str(error.get("msg", ""))}


def install(app: FastAPI) -> None:
    @app.exception_handler(FpslinkError)
    async def _domain(request: Request, exc: FpslinkError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = JSONResponse(
            exc.problem(instance=request.url.path),
            status_code=exc.status,
            media_type=PROBLEM_JSON,
            headers=headers,
        )
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_error(e) for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return problem_response(
            422,
            "VALIDATION_ERROR",
            "Invalid request",
            f"{first['field']}: {first['message']}",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        return problem_response(exc.status_code, code, code.replace("_", " ").capitalize(), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            # nothing half-done: every step is one transaction, and recovery finishes a payment
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            response = problem_response(
                503,
                "DATABASE_UNAVAILABLE",
                "Database unavailable",
                "the sandbox's database could not serve the request now; retry with the same "
                "Idempotency-Key in a moment",
            )
            response.headers["Retry-After"] = "1"
            return response
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "INTERNAL_ERROR",
            "Internal error",
            "the sandbox failed unexpectedly; the request may be retried with the same Idempotency-Key",
        )
