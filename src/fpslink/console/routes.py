"""The sandbox web console under /console: server-rendered pages over the gateway's own services.

Log in with an API key (a bank's or the operator's); the session is a signed HttpOnly cookie
(see `session.py`). Every POST form carries a CSRF token bound to the session and must come from
this origin. Pages send a strict Content-Security-Policy: scripts and styles only from
/console/static, nothing from the network.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from fpslink import circuit, paging
from fpslink.api import schemas as s
from fpslink.api.faults_routes import FaultCreate
from fpslink.api.page_security import report_csp, secure_headers
from fpslink.certification import render as certification_render
from fpslink.clock.policy import MAX_STEP
from fpslink.console import service as console
from fpslink.console import session as sessions
from fpslink.context import Gateway, Principal
from fpslink.errors import Forbidden, FpslinkError, InvalidRequest, NotFound, UpstreamUnavailable
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable
from fpslink.limits.policy import HK_TZ, business_date
from fpslink.participants import service as participants_service
from fpslink.participants.keys import key_prefix
from fpslink.reconciliation import render as recon_render
from fpslink.vocabulary import Direction, Status, System
from ibps_wire.enums import FaultCall, FaultKind
from ibps_wire.schemas import FaultIn, FaultsOut

T = TypeVar("T")

HERE = Path(__file__).parent
MAX_FORM_BYTES: Final = 64 * 1024
PAGE_SIZE: Final = 50
RUNS_SHOWN: Final = 50
ACCOUNTS_SHOWN: Final = 500
STATIC: Final = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

router = APIRouter(prefix="/console", include_in_schema=False)

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _hkt(value: datetime | None) -> str:
    """A UTC instant as Hong Kong time, to the millisecond."""
    if value is None:
        return ""
    return value.astimezone(HK_TZ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " HKT"


def _hkt_minute(value: datetime) -> str:
    """A UTC instant as Hong Kong time, to the minute: the layout's clock."""
    return value.astimezone(HK_TZ).strftime("%Y-%m-%d %H:%M") + " HKT"


def _hkt_second(value: str) -> str:
    """An ISO 8601 instant (the dashboard's `as_of`) as Hong Kong time, to the second."""
    return datetime.fromisoformat(value).astimezone(HK_TZ).strftime("%Y-%m-%d %H:%M:%S") + " HKT"


_env.filters["hkt"] = _hkt
_env.filters["hkt_minute"] = _hkt_minute
_env.filters["hkt_second"] = _hkt_second


@dataclass(frozen=True, slots=True)
class Ctx:
    """One signed-in request: the runtime, who is calling, and this session's CSRF token."""

    request: Request
    gw: Gateway
    principal: Principal
    session: sessions.Session
    csrf: str

    @property
    def who(self) -> str:
        return "operator" if self.principal.is_operator else str(self.principal.participant_id)


Form = dict[str, str]
Page = Callable[[Ctx], Awaitable[Response]]
FormPage = Callable[[Ctx, Form], Awaitable[Response]]


def _gw(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _key(gw: Gateway) -> bytes:
    return sessions.signing_key(gw.settings.operator_key)


def ahead(offset: timedelta) -> str:
    """How far the test clock has moved the sandbox, in words: `1 d 2 h 30 min`."""
    minutes = int(offset.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p) or "under a minute"


_env.filters["ahead"] = ahead


def render(
    request: Request, template: str, *, status_code: int = 200, ctx: Ctx | None = None, **values: Any
) -> Response:
    """A page from templates/, escaped by Jinja2, with the console's security headers. Every page
    shows the sandbox's time, and how far the test clock has moved it."""
    gw: Gateway | None = getattr(request.app.state, "gateway", None)
    offset = gw.sandbox_offset.value if gw is not None else timedelta(0)
    html = _env.get_template(template).render(
        ctx=ctx,
        who=ctx.who if ctx else None,
        is_operator=bool(ctx and ctx.principal.is_operator),
        csrf=ctx.csrf if ctx else "",
        path=request.url.path,
        sandbox_now=gw.now() if gw is not None else None,
        sandbox_ahead=ahead(offset) if offset > timedelta(0) else None,
        **values,
    )
    return secure_headers(HTMLResponse(html, status_code=status_code))


def _error(request: Request, ctx: Ctx | None, exc: FpslinkError) -> Response:
    return render(request, "error.html.j2", status_code=exc.status, ctx=ctx, error=exc)


def _same_origin(request: Request) -> bool:
    """A browser's POST names its origin; it must be this server (a missing header is a non-browser)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    expected = f"{request.url.scheme}://{request.url.netloc}"
    return origin == expected


async def _form(request: Request) -> Form:
    """An application/x-www-form-urlencoded body, bounded in size (no multipart here)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequest("the form is too large")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if media != "application/x-www-form-urlencoded":
        raise InvalidRequest("send the form as application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("the form could not be read") from exc
    return dict(pairs)


async def _context(request: Request) -> Ctx | None:
    gw = _gw(request)
    key = _key(gw)
    found = sessions.verify(key, request.cookies.get(sessions.COOKIE), now=gw.wall_now())
    if found is None:
        return None
    principal = await console.principal_of(gw, found)
    if principal is None:
        return None
    circuit.act_for(principal.participant_id)  # this request's IBPS reads count towards its bank
    return Ctx(request, gw, principal, found, sessions.csrf_token(key, found))


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(target, safe='')}", status_code=303)


async def _guard(request: Request, page: Page, *, operator: bool = False) -> Response:
    """Run a page for a signed-in caller; errors become an error page with their status."""
    ctx = await _context(request)
    if ctx is None:
        return _to_login(request)
    try:
        if operator:
            participants_service.require_operator(ctx.principal)
        return await page(ctx)
    except FpslinkError as exc:
        return _error(request, ctx, exc)


async def _guard_post(request: Request, page: FormPage, *, operator: bool = False) -> Response:
    """As `_guard`, for a form POST: same origin and a valid CSRF token, or 403 and nothing done."""
    ctx = await _context(request)
    if ctx is None:
        return _to_login(request)
    try:
        form = await _form(request)
        if not _same_origin(request) or not sessions.csrf_ok(
            _key(ctx.gw), ctx.session, form.get("csrf_token")
        ):
            raise Forbidden("the form's CSRF token is missing or stale, or it came from another site")
        if operator:
            participants_service.require_operator(ctx.principal)
        return await page(ctx, form)
    except FpslinkError as exc:
        return _error(request, ctx, exc)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return "/console/payments"


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors(include_url=False)
    )


# login ---------------------------------------------------------------------------------------


@router.get("")
async def home(request: Request) -> Response:
    return RedirectResponse("/console/payments", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html.j2", next=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    gw = _gw(request)
    try:
        form = await _form(request)
    except FpslinkError as exc:
        return _error(request, None, exc)
    target = _safe_next(form.get("next"))
    if not _same_origin(request):
        return _error(request, None, Forbidden("log in from this console's own page"))
    api_key = form.get("api_key", "").strip()
    attempt = await console.count_login(
        gw, host=request.client.host if request.client else None, api_key=api_key
    )
    if attempt.retry_after_s is not None:
        refused = render(
            request, "login.html.j2", status_code=429, next=target, throttled=attempt.retry_after_s
        )
        refused.headers["Retry-After"] = str(attempt.retry_after_s)
        return refused
    try:
        principal = await gw.participants.authenticate(api_key or None)
    except FpslinkError:
        return render(request, "login.html.j2", status_code=401, next=target, failed=True)
    await console.logged_in(gw, attempt)
    prefix = "" if principal.is_operator else key_prefix(api_key, principal.scope)
    token, _ = sessions.issue(_key(gw), scope=principal.scope, key_prefix=prefix, now=gw.wall_now())
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=sessions.SESSION_TTL_S,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_https(request),
    )
    return secure_headers(response)


def _https(request: Request) -> bool:
    """Whether the browser reached us over https: the request's own scheme, or X-Forwarded-Proto
    from a trusted proxy (FPSLINK_TRUSTED_PROXIES; applied by the app before any route runs)."""
    return request.url.scheme == "https"


@router.post("/logout")
async def logout(request: Request) -> Response:
    async def page(ctx: Ctx, form: Form) -> Response:
        await console.end_session(ctx.gw, ctx.session)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(
            sessions.COOKIE, path="/console", httponly=True, samesite="strict", secure=_https(request)
        )
        return secure_headers(response)

    return await _guard_post(request, page)


# payments ------------------------------------------------------------------------------------


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        return paging.decode_cursor(cursor)
    except InvalidRequest as exc:
        raise InvalidRequest("that page link is not one this console made") from exc


@router.get("/payments")
async def payments_page(
    request: Request,
    q: str = "",
    status: str = "",
    direction: str = "",
    cursor: str = "",
) -> Response:
    async def page(ctx: Ctx) -> Response:
        if q.strip():
            found = await console.search(ctx.gw, ctx.principal, q)
            return render(
                request,
                "payments.html.j2",
                ctx=ctx,
                q=found.query,
                matched=found.matched,
                payments=found.payments,
                status="",
                direction="",
                next_cursor=None,
            )
        status_filter = Status(status) if status in Status.__members__ else None
        direction_filter = Direction(direction) if direction in Direction.__members__ else None
        rows = await ctx.gw.payments.list_payments(
            ctx.principal,
            status=status_filter,
            direction=direction_filter,
            created_from=None,
            created_to=None,
            after=_decode_cursor(cursor[:200]) if cursor else None,
            limit=PAGE_SIZE + 1,
        )
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        return render(
            request,
            "payments.html.j2",
            ctx=ctx,
            q="",
            matched=None,
            payments=[console.payment_summary(r) for r in rows],
            status=status_filter.value if status_filter else "",
            direction=direction_filter.value if direction_filter else "",
            next_cursor=paging.encode_cursor(rows[-1].created_at, rows[-1].payment_id) if more else None,
        )

    return await _guard(request, page)


@router.get("/payments/{payment_id}")
async def payment_page(request: Request, payment_id: str) -> Response:
    async def page(ctx: Ctx) -> Response:
        payment = await console.payment_page(ctx.gw, ctx.principal, payment_id)
        return render(request, "payment.html.j2", ctx=ctx, p=payment)

    return await _guard(request, page)


# accounts ------------------------------------------------------------------------------------


@router.get("/accounts")
async def accounts_page(request: Request) -> Response:
    async def page(ctx: Ctx) -> Response:
        rows = await console.accounts(ctx.gw, ctx.principal, limit=ACCOUNTS_SHOWN)
        return render(request, "accounts.html.j2", ctx=ctx, accounts=rows, shown=ACCOUNTS_SHOWN)

    return await _guard(request, page)


@router.get("/accounts/{account_id}")
async def account_page(request: Request, account_id: str) -> Response:
    async def page(ctx: Ctx) -> Response:
        view = await ctx.gw.participants.account_view(ctx.principal, account_id[:40])
        limits = await ctx.gw.limits.account_limits(ctx.principal, view.record.account_id)
        payments = await console.account_payments(ctx.gw, ctx.principal, view.record.account_id)
        return render(request, "account.html.j2", ctx=ctx, view=view, limits=limits, payments=payments)

    return await _guard(request, page)


# dashboard -----------------------------------------------------------------------------------


@router.get("/dashboard")
async def dashboard_page(request: Request) -> Response:
    async def page(ctx: Ctx) -> Response:
        data = await console.dashboard(ctx.gw, ctx.principal, window_s=60)
        return render(request, "dashboard.html.j2", ctx=ctx, d=data, windows=console.DASHBOARD_WINDOWS_S)

    return await _guard(request, page)


@router.get("/api/dashboard")
async def dashboard_data(request: Request, window: int = 60) -> Response:
    """The dashboard's numbers as JSON; the page polls it and updates in place."""
    ctx = await _context(request)
    if ctx is None:
        return JSONResponse({"error": "log in again"}, status_code=401, headers={"Cache-Control": "no-store"})
    data = await console.dashboard(ctx.gw, ctx.principal, window_s=max(1, min(window, 3600)))
    return JSONResponse(console.as_json(data), headers={"Cache-Control": "no-store"})


# reconciliation ------------------------------------------------------------------------------


@router.get("/reconciliations")
async def runs_page(request: Request) -> Response:
    async def page(ctx: Ctx) -> Response:
        rows = await ctx.gw.reconciliation.runs(limit=RUNS_SHOWN)
        today = business_date(ctx.gw.now()).isoformat()
        return render(request, "reconciliations.html.j2", ctx=ctx, runs=rows, today=today)

    return await _guard(request, page, operator=True)


@router.post("/reconciliations")
async def start_run(request: Request) -> Response:
    async def page(ctx: Ctx, form: Form) -> Response:
        try:
            day = date.fromisoformat(form.get("business_date", "").strip())
        except ValueError as exc:
            raise InvalidRequest("business_date must be a date, YYYY-MM-DD") from exc
        run_id = await ctx.gw.reconciliation.reconcile(business_date=day)
        return RedirectResponse(f"/console/reconciliations/{run_id}", status_code=303)

    return await _guard_post(request, page, operator=True)


@router.get("/reconciliations/{run_id}")
async def run_page(request: Request, run_id: str) -> Response:
    async def page(ctx: Ctx) -> Response:
        run = await ctx.gw.reconciliation.get_run(run_id[:36])
        return render(request, "reconciliation.html.j2", ctx=ctx, run=run, summary=run.as_json())

    return await _guard(request, page, operator=True)


@router.get("/reconciliations/{run_id}/report")
async def run_report(request: Request, run_id: str) -> Response:
    async def page(ctx: Ctx) -> Response:
        run = await ctx.gw.reconciliation.get_run(run_id[:36])
        breaks = ctx.gw.reconciliation.iter_breaks(run.run_id, limit=recon_render.HTML_MAX_BREAKS)
        html = await recon_render.html(run, breaks)
        return secure_headers(HTMLResponse(html), csp=report_csp(html))

    return await _guard(request, page, operator=True)


# certification -------------------------------------------------------------------------------


@router.get("/certifications")
async def certifications_page(request: Request) -> Response:
    """A bank's certification runs (the operator: every bank's), newest first."""

    async def page(ctx: Ctx) -> Response:
        runs = await ctx.gw.certification.list_runs(ctx.principal, limit=RUNS_SHOWN)
        return render(request, "certifications.html.j2", ctx=ctx, runs=runs)

    return await _guard(request, page)


@router.get("/certifications/{certification_id}/certificate")
async def certification_certificate(request: Request, certification_id: str) -> Response:
    """The run's certificate, with the policy the API serves it with (its own inline styles only)."""

    async def page(ctx: Ctx) -> Response:
        view = await ctx.gw.certification.certificate(ctx.principal, certification_id[:36])
        html = certification_render.certificate(view)
        return secure_headers(HTMLResponse(html), csp=report_csp(html))

    return await _guard(request, page)


# sandbox controls (operator) -----------------------------------------------------------------


async def _ibps(call: Awaitable[T]) -> T:
    try:
        return await call
    except IbpsUnavailable as exc:
        raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
    except IbpsRefused as exc:
        raise InvalidRequest(f"mock_ibps refused: {exc.detail}") from exc


async def _sandbox(ctx: Ctx, *, status: int = 200, **values: Any) -> Response:
    try:
        faults = await _ibps(ctx.gw.ibps.list_faults())
        faults_error = None
    except FpslinkError as exc:
        faults, faults_error = FaultsOut(rules=[], injected={}), exc.detail
    banks = await ctx.gw.participants.list_participants()
    return render(
        ctx.request,
        "sandbox.html.j2",
        status_code=status,
        ctx=ctx,
        clock=await ctx.gw.sandbox_clock.status(),
        faults=faults,
        faults_error=faults_error,
        banks=banks,
        systems=[x.value for x in System],
        calls=[c.value for c in FaultCall],
        kinds=[k.value for k in FaultKind],
        **values,
    )


@router.get("/sandbox")
async def sandbox_page(request: Request) -> Response:
    async def page(ctx: Ctx) -> Response:
        return await _sandbox(ctx)

    return await _guard(request, page, operator=True)


def _fields(form: Form, *names: str) -> dict[str, str]:
    return {n: form[n].strip() for n in names if form.get(n, "").strip() != ""}


async def _sandbox_action(
    ctx: Ctx, action: Callable[[], Awaitable[str]], shown: dict[str, Any] | None = None
) -> Response:
    """Run one control; show the page again with what happened (and `shown`), or why it was refused."""
    try:
        notice = await action()
    except ValidationError as exc:
        return await _sandbox(ctx, status=422, failure=_validation_text(exc))
    except FpslinkError as exc:
        return await _sandbox(ctx, status=exc.status, failure=f"{exc.code}: {exc.detail}")
    return await _sandbox(ctx, notice=notice, **(shown or {}))


@router.post("/sandbox/faults")
async def add_fault(request: Request) -> Response:
    async def page(ctx: Ctx, form: Form) -> Response:
        async def action() -> str:
            rule = FaultCreate.model_validate(
                _fields(form, "call", "kind", "probability", "seed", "latency_ms", "hang_ms", "only_attempts")
            )
            added = await _ibps(ctx.gw.ibps.add_fault(FaultIn.model_validate(rule.model_dump())))
            return f"fault rule {added.rule_id} added: {rule.call} {rule.kind} p={rule.probability}"

        return await _sandbox_action(ctx, action)

    return await _guard_post(request, page, operator=True)


@router.post("/sandbox/faults/clear")
async def clear_faults(request: Request) -> Response:
    async def page(ctx: Ctx, form: Form) -> Response:
        async def action() -> str:
            await _ibps(ctx.gw.ibps.clear_faults())
            return "every fault rule removed"

        return await _sandbox_action(ctx, action)

    return await _guard_post(request, page, operator=True)


@router.post("/sandbox/clock")
async def advance_clock(request: Request) -> Response:
    async def page(ctx: Ctx, form: Form) -> Response:
        async def action() -> str:
            try:
                days = int(form.get("days", "0").strip() or 0)
                hours = int(form.get("hours", "0").strip() or 0)
            except ValueError as exc:
                raise InvalidRequest("days and hours must be whole numbers") from exc
            if not (0 <= days <= MAX_STEP.days and 0 <= hours <= 24 * MAX_STEP.days):
                raise InvalidRequest(f"advance by 0-{MAX_STEP.days} days and whole hours")
            moved = await ctx.gw.sandbox_clock.advance(ctx.principal, by=timedelta(days=days, hours=hours))
            return f"the sandbox's time is now {_hkt(moved.now)}, {ahead(moved.offset)} ahead of real time"

        return await _sandbox_action(ctx, action)

    return await _guard_post(request, page, operator=True)


@router.post("/sandbox/participants")
async def create_participant(request: Request) -> Response:
    async def page(ctx: Ctx, form: Form) -> Response:
        shown: dict[str, Any] = {}

        async def action() -> str:
            body = s.ParticipantCreate.model_validate(_fields(form, "participant_id", "name", "system"))
            made = await ctx.gw.participants.create_participant(
                participant_id=body.participant_id, name=body.name, system=body.system
            )
            shown["created"] = {"participant_id": made.participant.participant_id, "api_key": made.api_key}
            return f"bank {made.participant.participant_id} created in {made.participant.system.value}"

        return await _sandbox_action(ctx, action, shown)

    return await _guard_post(request, page, operator=True)


@router.post("/sandbox/accounts")
async def open_account(request: Request) -> Response:
    async def page(ctx: Ctx, form: Form) -> Response:
        async def action() -> str:
            body = s.AccountCreate.model_validate(
                _fields(form, "participant_id", "holder_name", "currency", "opening_balance")
            )
            view = await ctx.gw.participants.open_account(
                participant_id=body.participant_id,
                holder_name=body.holder_name,
                currency=body.currency,
                opening_balance=body.opening,
            )
            return (
                f"account {view.record.account_id} opened for {view.record.participant_id} ({view.balance})"
            )

        return await _sandbox_action(ctx, action)

    return await _guard_post(request, page, operator=True)


@router.post("/sandbox/proxies")
async def register_proxy(request: Request) -> Response:
    async def page(ctx: Ctx, form: Form) -> Response:
        async def action() -> str:
            body = s.ProxyCreate.model_validate(
                {"proxy_type": "MOBILE", **_fields(form, "proxy_value", "account_id")}
            )
            found = await ctx.gw.directory.register(
                ctx.principal,
                proxy_type=body.proxy_type,
                proxy_value=body.proxy_value,
                account_id=body.account_id,
            )
            return f"{found.proxy_value} now points to {found.account_id}"

        return await _sandbox_action(ctx, action)

    return await _guard_post(request, page, operator=True)


# static files --------------------------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The console's own CSS, JS and icon; a fixed list, so no path ever leaves the package."""
    media = STATIC.get(name)
    if media is None:
        raise NotFound(f"no console file {name}")
    response = FileResponse(HERE / "static" / name, media_type=media)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
