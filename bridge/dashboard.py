"""The admin dashboard (server-rendered, charts as inline SVG) and `GET /api/reports/truth`.

A browser signs in once with an operator's token through a form; the bridge answers with an
HttpOnly, SameSite=Strict session cookie naming the operator, signed with a key derived from both
the secret key and that operator's token, so rotating either (or removing the operator) ends
their sessions. Scripts use `Authorization: Bearer`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bridge import admin
from bridge.auth import require_admin
from bridge.charts import Bar, horizontal_bars, vertical_bars
from bridge.state import Bridge, portal_rate_limit
from dealflow.links import InvalidLink, make_token, verify_token
from dealflow.modes import NOT_REAL_MONEY, MoneyMode
from dealflow.money import format_money
from dealflow.operators import operator_with_token
from dealflow.settings import Settings
from truth.figures import PROJECTED_LABEL, TruthReport
from truth.queries import build_report
from truth.render import MONEY_ROWS, human_duration, money_columns, percent

router = APIRouter(tags=["admin"])

SESSION_COOKIE = "dealflow_admin"
SESSION_LIFETIME = timedelta(hours=12)
#: The session token's subject. Not a valid deal id, so no portal link can pass for a session.
_SESSION_SUBJECT = "@admin-session"


def _session_key(settings: Settings, operator: str, token: str) -> str:
    secret = settings.require("DEALFLOW_SECRET_KEY")
    material = f"admin-session:{operator}:{token}".encode()
    return hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()


def _session_cookie(settings: Settings, operator: str, expires: datetime) -> str:
    """`operator:token`, the token signed for that operator's session."""
    token = settings.operators[operator]
    return f"{operator}:{make_token(_session_key(settings, operator, token), _SESSION_SUBJECT, expires)}"


def signed_in_operator(request: Request, settings: Settings) -> str | None:
    """The operator of a valid session cookie or of the Bearer token the request presents."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        return operator_with_token(settings.operators, presented.strip())
    operator, _, session = request.cookies.get(SESSION_COOKIE, "").partition(":")
    token = settings.operators.get(operator)
    if token is None or not session:
        return None
    try:
        verify_token(_session_key(settings, operator, token), _SESSION_SUBJECT, session)
    except InvalidLink:
        return None
    return operator


def _login_page(request: Request, *, status_code: int, message: str | None = None) -> HTMLResponse:
    return request.app.state.pages.render(
        "dashboard_login.html", status_code=status_code, message=message
    )


@router.post("/dashboard/login", dependencies=[Depends(portal_rate_limit)], include_in_schema=False)
async def login(request: Request, bridge: Bridge, token: Annotated[str, Form()] = "") -> Response:
    """Exchange an operator's token for a session cookie; the token itself never goes in a cookie."""
    operator = operator_with_token(bridge.settings.operators, token.strip()) if token else None
    if operator is None:
        return _login_page(request, status_code=401, message="That is no operator's token.")
    expires = datetime.now(UTC) + SESSION_LIFETIME
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        _session_cookie(bridge.settings, operator, expires),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=bridge.settings.public_url.startswith("https://"),
    )
    return response


@router.post("/dashboard/logout", include_in_schema=False)
async def logout() -> Response:
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _parse_filters(since: str, mode: str) -> tuple[date | None, MoneyMode | None, str | None]:
    """The form's values; empty means 'all'. Returns an error message naming the field instead."""
    try:
        since_date = date.fromisoformat(since) if since else None
    except ValueError:
        return None, None, f"since: '{since}' is not a date (YYYY-MM-DD)"
    if mode and mode not in set(MoneyMode):
        return since_date, None, f"mode: '{mode}' is not one of live, test, sandbox"
    return since_date, MoneyMode(mode) if mode else None, None


def _funnel_chart(report: TruthReport) -> str:
    bars = [
        Bar(
            step.label,
            step.count,
            str(step.count),
            f"({percent(step.conversion)})" if step.conversion is not None else "",
        )
        for step in report.funnel
    ]
    return horizontal_bars("Funnel", bars)


def _month_charts(report: TruthReport) -> list[tuple[str, str | None, str]]:
    """(heading, not-real-money warning, svg) per mode and currency: never one chart for two."""
    charts = []
    for mode, by_currency in sorted(
        report.revenue_by_month.items(), key=lambda item: list(MoneyMode).index(item[0])
    ):
        for currency, months in sorted(by_currency.items()):
            heading = f"Revenue (released) by month - {mode} {currency.upper()}"
            bars = [Bar(m.month, m.released, format_money(m.released, currency)) for m in months]
            charts.append((heading, NOT_REAL_MONEY[mode], vertical_bars(heading, bars)))
    return charts


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(request: Request, bridge: Bridge, since: str = "", mode: str = "") -> Response:
    operator = signed_in_operator(request, bridge.settings)
    if operator is None:
        return _login_page(request, status_code=401)
    since_date, money_mode, error = _parse_filters(since, mode)
    report = await build_report(bridge.pool, since=since_date, mode=money_mode)
    columns = money_columns(report)
    return request.app.state.pages.render(
        "dashboard.html",
        report=report,
        operator=operator,
        error=error,
        since=since_date.isoformat() if since_date else "",
        mode=money_mode.value if money_mode else "",
        modes=list(MoneyMode),
        stripe=await admin.stripe_status(bridge),
        funnel_svg=_funnel_chart(report),
        month_charts=_month_charts(report),
        projected_label=PROJECTED_LABEL,
        money_header=[(m.value, c.upper(), NOT_REAL_MONEY[m]) for m, c in columns],
        money_rows=[
            (
                field,
                label,
                [
                    (f"{m}-{c}", format_money(getattr(report.money[m][c], field), c))
                    for m, c in columns
                ],
            )
            for field, label in MONEY_ROWS
        ],
        durations=[
            (
                label,
                value.count,
                human_duration(value.median_seconds),
                human_duration(value.p90_seconds),
            )
            for label, value in (
                ("SOW sent to signed", report.sow_sent_to_signed),
                ("Funded to released", report.funded_to_released),
            )
        ],
        percent=percent,
    )


@router.get("/api/reports/truth", dependencies=[Depends(require_admin)])
async def truth_report(
    bridge: Bridge,
    since: Annotated[
        date | None, Query(description="only deals started on or after this day (UTC)")
    ] = None,
    mode: Annotated[
        MoneyMode | None, Query(description="only this money: live, test or sandbox")
    ] = None,
) -> TruthReport:
    """Funnel, money by state per mode and currency (integer minor units), revenue by month,
    durations. Revenue is only money Stripe confirmed; the pipeline is labelled PROJECTED."""
    return await build_report(bridge.pool, since=since, mode=mode)
