"""Outgoing mail over SMTP: where SMTP_URL points, one stable Message-ID per logical mail, and
SMTP errors sorted into permanent ones (the workflow must handle them) and transient ones
(Temporal retries the activity).

SMTP has no idempotency keys. Instead the Message-ID derives from (deal id, message key), so a
mail re-sent by a retry after the server had accepted it carries the same Message-ID, and
receivers and audits can see (and drop) the duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlparse

import aiosmtplib
from temporalio.exceptions import ApplicationError

from dealflow.activity_timeouts import MAIL
from dealflow.settings import ConfigError

PERMANENT_SMTP_ERROR = "PermanentSmtpError"

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class SmtpEndpoint:
    """An SMTP server as SMTP_URL names it.

    `smtp://host:port` (plain), `smtp://user:pass@host:587?starttls=true` (upgrade with STARTTLS),
    `smtps://host:465` (TLS from the first byte). User and password are percent-decoded.
    """

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpEndpoint:
        parsed = urlparse(url)
        if parsed.scheme not in _DEFAULT_PORTS:
            raise ConfigError(f"SMTP_URL must start with smtp:// or smtps://, got {url!r}")
        if not parsed.hostname:
            raise ConfigError(f"SMTP_URL has no host: {url!r}")
        query = parse_qs(parsed.query)
        unknown = set(query) - {"starttls"}
        if unknown:
            raise ConfigError(
                f"SMTP_URL has unknown options {sorted(unknown)}; only 'starttls' exists"
            )
        start_tls_text = query.get("starttls", ["false"])[-1].lower()
        if start_tls_text not in _TRUE + _FALSE:
            raise ConfigError(
                f"SMTP_URL option starttls must be true or false, got {start_tls_text!r}"
            )
        start_tls = start_tls_text in _TRUE
        if start_tls and parsed.scheme == "smtps":
            raise ConfigError("SMTP_URL: smtps:// is TLS already; starttls=true needs smtp://")
        try:
            port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
        except ValueError as error:
            raise ConfigError(f"SMTP_URL has an invalid port: {url!r}") from error
        return cls(
            hostname=parsed.hostname,
            port=port,
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            use_tls=parsed.scheme == "smtps",
            start_tls=start_tls,
        )


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OutgoingMail:
    """A rendered mail. `message_key` is unique per logical mail within its deal."""

    deal_id: str
    kind: str
    to: str
    subject: str
    message_key: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()


class Mailer:
    """Composes and sends OutgoingMail through one SMTP server."""

    def __init__(self, *, smtp_url: str, mail_from: str) -> None:
        self._endpoint = SmtpEndpoint.parse(smtp_url)
        _name, address = parseaddr(mail_from)
        if "@" not in address:
            raise ConfigError(
                f"DEALFLOW_MAIL_FROM must contain an address like deals@example.com, got {mail_from!r}"
            )
        self._mail_from = mail_from
        self._sender = address
        self._domain = address.rsplit("@", 1)[1]

    def message_id(self, deal_id: str, message_key: str) -> str:
        """The same (deal, key) always gives the same Message-ID."""
        digest = hashlib.sha256(f"{deal_id}\x00{message_key}".encode()).hexdigest()[:32]
        return f"<dealflow.{digest}@{self._domain}>"

    def compose(self, mail: OutgoingMail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = self.message_id(mail.deal_id, mail.message_key)
        message["X-Dealflow-Deal"] = mail.deal_id
        message["X-Dealflow-Kind"] = mail.kind
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        for attachment in mail.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            message.add_attachment(
                attachment.data,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment.filename,
            )
        return message

    async def send(self, mail: OutgoingMail) -> str:
        """Send; return the Message-ID. 5xx answers raise a non-retryable PermanentSmtpError;
        connection errors and 4xx answers propagate so the activity is retried."""
        message = self.compose(mail)
        try:
            await aiosmtplib.send(
                message,
                sender=self._sender,
                recipients=[mail.to],
                hostname=self._endpoint.hostname,
                port=self._endpoint.port,
                username=self._endpoint.username,
                password=self._endpoint.password,
                use_tls=self._endpoint.use_tls,
                start_tls=self._endpoint.start_tls,
                timeout=MAIL.command_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            refusals = error.recipients
            if all(refusal.code >= 500 for refusal in refusals):
                details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refusals)
                raise ApplicationError(
                    f"mail server refused the recipient ({details})",
                    type=PERMANENT_SMTP_ERROR,
                    non_retryable=True,
                ) from error
            raise
        except aiosmtplib.SMTPResponseException as error:
            if error.code >= 500:
                raise ApplicationError(
                    f"mail server refused the message: {error.code} {error.message}",
                    type=PERMANENT_SMTP_ERROR,
                    non_retryable=True,
                ) from error
            raise
        return message["Message-ID"]
