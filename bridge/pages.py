"""Rendering the portal's HTML: Jinja2 with autoescaping, plus the headers every page carries.

Pages are never cached, never framed and never leak their URL (which holds the client's link
token) through the Referer header to the pay page or to artifact links: the referrer policy is
`same-origin`, so only our own form posts carry it (and with it a real Origin header).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from bridge.errors import ApiError
from dealflow.messages import DealStatus
from dealflow.models import DealSpec
from dealflow.money import format_money
from dealflow.terms import describe_late_fee
from dealflow.versions import due_text

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_HEADINGS = {
    400: "Something is wrong with this request",
    403: "This link does not open anything",
    404: "Deal not found",
    409: "Not done",
    413: "Too much to send",
    422: "Please check the form",
    429: "Too many requests",
    503: "Please try again in a moment",
}


def _label(value: str) -> str:
    return str(value).replace("_", " ")


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _late_fee_terms(spec: DealSpec, status: DealStatus, milestone_key: str) -> str:
    """A milestone's late fee under the terms in force (a change order may have added it), as
    the client reads it, or "" when it has none."""
    in_force = next(
        (v.milestones for v in status.sow_versions if v.number == status.sow_version),
        spec.milestones,
    )
    milestone = next((m for m in in_force if m.key == milestone_key), None)
    fee = spec.late_fee_of(milestone) if milestone else None
    return describe_late_fee(fee, milestone.amount, spec.currency) if fee and milestone else ""


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bridge", "templates"),
        auto_reload=False,  # they ship with the code: no stat() of the file at every page
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = format_money
    env.filters["label"] = _label
    env.filters["when"] = _when
    env.filters["due"] = due_text
    env.globals["late_fee_terms"] = _late_fee_terms
    return env


class Pages:
    def __init__(self) -> None:
        self.env = _environment()

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    def message(
        self,
        *,
        status_code: int,
        heading: str,
        message: str,
        field: str | None = None,
        back_url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        response = self.render(
            "message.html",
            status_code=status_code,
            heading=heading,
            message=message,
            field=field,
            back_url=back_url,
            tone="ok" if status_code < 400 else "error",
        )
        response.headers.update(headers or {})
        return response

    def error(self, _request: Request, error: ApiError) -> HTMLResponse:
        """The page for an error raised before a route could vouch for the link (no back link)."""
        return self.message(
            status_code=error.status,
            heading=_HEADINGS.get(error.status, "Something went wrong"),
            message=error.message,
            field=error.field,
            headers=error.headers,
        )
