"""Every error leaves as RFC 9457 problem+json with a stable `code`; nothing leaks a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fpslink.db import database_unavailable, invalid_text, one_line
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
    414: "URI_TOO_LONG",
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


def error_response(
    exc: FpslinkError, instance: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The answer to a domain error, with `headers` added: sent by the app's handler for a route's,
    and by the layers that answer before any route (the rate limits' 429, certification's answers)."""
    fields = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    return JSONResponse(
        exc.problem(instance=instance),
        status_code=exc.status,
        media_type=PROBLEM_JSON,
        headers={**fields, **(headers or {})},
    )


DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ConnectionError,
)
"""What the database and its driver raise: answered here, in the app's exception layer, so that a
handled outage is one log line, not a traceback that the server logs again as unhandled."""


def database_problem(request: Request, exc: Exception) -> JSONResponse:
    """503 when the database is out of reach (retry), 422 for text it cannot store, else 500."""
    if database_unavailable(exc):
        # nothing half-done: every step is one transaction, and recovery finishes a payment
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, one_line(exc))
        response = problem_response(
            503,
            "DATABASE_UNAVAILABLE",
            "Database unavailable",
            "the sandbox's database could not serve the request now; retry with the same "
            "Idempotency-Key in a moment",
        )
        response.headers["Retry-After"] = "1"
        return response
    if invalid_text(exc):
        return problem_response(
            422,
            "INVALID_CHARACTERS",
            "Invalid request",
            "the request carries a character that cannot be stored (NUL)",
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return internal_error()


def internal_error() -> JSONResponse:
    return problem_response(
        500,
        "INTERNAL_ERROR",
        "Internal error",
        "the sandbox failed unexpectedly; the request may be retried with the same Idempotency-Key",
    )


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type"}
"""pydantic's types for a body that is not a JSON object (a form, a list, a string)."""


def _error(error: Mapping[str, Any], *, json_body: bool) -> dict[str, str]:
    """One validation error as a field and a message in plain words.

    A body that is not JSON at all says so and where, rather than pydantic's "1: JSON decode error"
    (1 being the offset); a form or a body sent without a JSON content type says to send JSON with
    it. A check that needs two fields (an amount and its currency) names its own field through
    `ctx.field`; pydantic's "Value error, " prefix is dropped.
    """
    loc = tuple(error.get("loc", ()))
    kind = error.get("type")
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":
        offset = loc[-1] if loc and isinstance(loc[-1], int) else None
        where = f" at character {offset}" if offset is not None else ""
        return {"field": "body", "message": f"not valid JSON{where}: {ctx.get('error', '')}".rstrip(": ")}
    if kind in NOT_AN_OBJECT and _where(loc) == "body":
        if not json_body:
            return {"field": "body", "message": "send the body as JSON, with Content-Type: application/json"}
        return {"field": "body", "message": "the body must be a JSON object ({...})"}
    if isinstance(ctx.get("field"), str):
        loc = (*loc, ctx["field"])
    message = str(ctx["error"]) if kind == "value_error" and "error" in ctx else str(error.get("msg", ""))
    return {"field": _where(loc), "message": message}


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses the body as JSON: no content type, or application/json or a +json type."""
    if not content_type:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def install(app: FastAPI) -> None:
    @app.exception_handler(FpslinkError)
    async def _domain(request: Request, exc: FpslinkError) -> JSONResponse:
        return error_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        json_body = _is_json(request.headers.get("content-type"))
        errors = [_error(e, json_body=json_body) for e in exc.errors()]
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
        response = problem_response(
            exc.status_code, code, code.replace("_", " ").capitalize(), str(exc.detail)
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        return database_problem(request, exc)

    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # anything else; a database error that arrives here wrapped (in a group, say) is still one
        if database_unavailable(exc) or invalid_text(exc):
            return database_problem(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error()
