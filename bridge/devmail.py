"""The dev mailbox: every mail the dev stack's SMTP sink kept, readable in the browser.

Mounted only by the dev stack (which runs the sink), never in production. A mail's HTML is shown
inside a sandboxed iframe (`srcdoc`, no scripts, no same-origin access), so a template mistake
or a hostile subject line cannot run code in the bridge's origin; links open in a new tab.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from dealflow.mailer import read_mail

#: How the sink names its files: `<unix ns>-<counter>.eml`. Anything else is not a mail of ours.
_NAME = re.compile(r"^(\d{1,20})-(\d{1,10})\.eml$")
LIST_LIMIT = 300

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # The srcdoc iframe inherits this policy: no scripts anywhere, inline styles for mail HTML.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}


@dataclass(frozen=True)
class MailSummary:
    name: str
    received: datetime
    to: str
    subject: str


def _received(name: str) -> datetime:
    match = _NAME.match(name)
    assert match is not None
    return datetime.fromtimestamp(int(match.group(1)) / 1e9, UTC)


def _read(path: Path) -> EmailMessage:
    return read_mail(path.read_bytes())


def _mail_path(directory: Path, name: str) -> Path:
    """The file of one mail; any name the sink did not write is a 404, never a path."""
    path = directory / name
    if not _NAME.match(name) or not path.is_file():
        raise HTTPException(status_code=404, detail="no such mail")
    return path


def _with_links_in_new_tab(html: str) -> str:
    return '<base target="_blank">' + html


def create_router(mail_dir: Path) -> APIRouter:
    """Routes under /dev/mail reading the sink's directory."""
    router = APIRouter(prefix="/dev/mail", tags=["dev"], include_in_schema=False)
    templates = Environment(
        loader=PackageLoader("bridge", "templates"),
        autoescape=select_autoescape(default=True),
        auto_reload=False,
    )

    def render(template: str, **context: object) -> HTMLResponse:
        return HTMLResponse(templates.get_template(template).render(**context), headers=HEADERS)

    @router.get("", response_class=HTMLResponse)
    async def mailbox(q: str = "") -> HTMLResponse:
        paths = sorted((p for p in mail_dir.glob("*.eml") if _NAME.match(p.name)), reverse=True)
        mails = []
        for path in paths:
            message = _read(path)
            summary = MailSummary(path.name, _received(path.name), str(message["To"] or ""), str(message["Subject"] or ""))
            if q.lower() in f"{summary.to} {summary.subject}".lower():
                mails.append(summary)
            if len(mails) >= LIST_LIMIT:
                break
        return render("devmail_list.html", mails=mails, total=len(paths), q=q, mail_dir=mail_dir)

    @router.get("/{name}", response_class=HTMLResponse)
    async def mail(name: str) -> HTMLResponse:
        message = _read(_mail_path(mail_dir, name))
        html_part = message.get_body(preferencelist=("html",))
        text_part = message.get_body(preferencelist=("plain",))
        attachments = [
            (index, part.get_filename() or f"attachment-{index}", part.get_content_type())
            for index, part in enumerate(message.iter_attachments())
        ]
        return render(
            "devmail_view.html",
            name=name,
            received=_received(name),
            subject=str(message["Subject"] or ""),
            headers=[(key, str(message[key])) for key in ("From", "To", "Subject", "Date", "Message-ID") if message[key]],
            html=_with_links_in_new_tab(html_part.get_content()) if html_part is not None else None,
            text=text_part.get_content() if text_part is not None else None,
            attachments=attachments,
        )

    @router.get("/{name}/raw")
    async def raw(name: str) -> Response:
        data = _mail_path(mail_dir, name).read_bytes()
        return Response(data, media_type="text/plain; charset=utf-8", headers=HEADERS)

    @router.get("/{name}/attachments/{index}")
    async def attachment(name: str, index: int) -> Response:
        parts = list(_read(_mail_path(mail_dir, name)).iter_attachments())
        if not 0 <= index < len(parts):
            raise HTTPException(status_code=404, detail="no such attachment")
        part = parts[index]
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", part.get_filename() or f"attachment-{index}")
        return Response(
            part.get_payload(decode=True),
            media_type=part.get_content_type(),
            headers={**HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return router
