"""Outgoing mail over SMTP: where SMTP_URL points, one stable Message-ID per logical mail, and
SMTP errors sorted into permanent ones (the workflow must handle them) and transient ones
(Temporal retries the activity).

SMTP has no idempotency keys. Instead the Message-ID derives from (deal id, message key), so a
mail re-sent by a retry after the server had accepted it carries the same Message-ID, and
receivers and audits can see (and drop) the duplicate.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import socket
from dataclasses import dataclass
from email.encoders import encode_base64
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr
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


def read_mail(data: bytes) -> EmailMessage:
    """A received mail, with the modern API (`get_body`, `get_content`, parsed headers).

    Parsed with the compat32 policy, then given the modern one part by part: both keep header
    lines alike, but the modern parser builds a parsed header object every time it looks at a
    part's Content-Type, which made reading a mail eight times slower (3.3 against 0.4 ms)."""
    message = email.message_from_bytes(data, _class=EmailMessage, policy=email.policy.compat32)
    for part in message.walk():
        part.policy = email.policy.default
    return message


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
    """Composes and sends OutgoingMail through one SMTP server, over connections it keeps open
    (a connection costs the server and us more than the mail it carries)."""

    def __init__(self, *, smtp_url: str, mail_from: str, connections: int = 8) -> None:
        self._endpoint = SmtpEndpoint.parse(smtp_url)
        name, address = parseaddr(mail_from)
        if "@" not in address:
            raise ConfigError(
                f"DEALFLOW_MAIL_FROM must contain an address like deals@example.com, got {mail_from!r}"
            )
        self._mail_from = formataddr((name, address), charset="utf-8")
        self._sender = address
        self._domain = address.rsplit("@", 1)[1]
        self._connections = SmtpConnections(self._endpoint, size=connections)

    def message_id(self, deal_id: str, message_key: str) -> str:
        """The same (deal, key) always gives the same Message-ID."""
        digest = hashlib.sha256(f"{deal_id}\x00{message_key}".encode()).hexdigest()[:32]
        return f"<dealflow.{digest}@{self._domain}>"

    def compose(self, mail: OutgoingMail) -> Message:
        """The MIME message: text and HTML alternatives, then the attachments. Built with the
        compat32 classes, which take headers as given (the modern policy parses every header
        again, a millisecond or two a mail), so header rules are checked here."""
        body = MIMEMultipart("alternative")
        body.attach(MIMEText(mail.text, "plain", "utf-8"))
        body.attach(MIMEText(mail.html, "html", "utf-8"))
        if mail.attachments:
            message: Message = MIMEMultipart("mixed")
            message.attach(body)
            for attachment in mail.attachments:
                message.attach(_attachment_part(attachment))
        else:
            message = body
        given = {"To": mail.to, "Subject": mail.subject, "X-Dealflow-Deal": mail.deal_id}
        for name, value in given.items():
            if "\r" in value or "\n" in value:
                raise ApplicationError(
                    f"mail header {name} may not contain a line break: {value!r}",
                    type=PERMANENT_SMTP_ERROR,
                    non_retryable=True,
                )
        message["From"] = self._mail_from
        message["To"] = _address_header(mail.to)
        message["Subject"] = _text_header(mail.subject)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = self.message_id(mail.deal_id, mail.message_key)
        message["X-Dealflow-Deal"] = mail.deal_id
        message["X-Dealflow-Kind"] = mail.kind
        return message

    async def send(self, mail: OutgoingMail) -> str:
        """Send; return the Message-ID. 5xx answers raise a non-retryable PermanentSmtpError;
        connection errors and 4xx answers propagate so the activity is retried."""
        message = self.compose(mail)
        try:
            await self._connections.send(
                message, sender=self._sender, recipients=[parseaddr(mail.to)[1]]
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

    async def close(self) -> None:
        await self._connections.close()


class SmtpConnections:
    """Up to `size` open SMTP connections, each carrying one mail at a time; a mail waits for a
    free one (a local server takes a mail in a millisecond or two, so a few serve a busy worker).

    A connection the server dropped while it sat idle (servers close them after a few minutes)
    fails at its first command; that mail goes again once on a new connection. Any other error
    closes the connection it happened on and propagates.
    """

    def __init__(self, endpoint: SmtpEndpoint, *, size: int) -> None:
        self._endpoint = endpoint
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(size)
        self._local_hostname: str | None = None

    async def send(self, message: Message, *, sender: str, recipients: list[str]) -> None:
        async with self._slots:
            reused = self._idle.pop() if self._idle else None
            if reused is not None:
                try:
                    await self._send_on(reused, message, sender, recipients)
                    return
                except aiosmtplib.SMTPServerDisconnected:
                    pass  # dropped while idle: once more on a new connection
            await self._send_on(await self._connect(), message, sender, recipients)

    async def _send_on(
        self, smtp: aiosmtplib.SMTP, message: Message, sender: str, recipients: list[str]
    ) -> None:
        try:
            await smtp.send_message(message, sender=sender, recipients=recipients)
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException):
            # The server answered: the connection is fine once the transaction is reset.
            await self._keep_after_reset(smtp)
            raise
        except BaseException:
            smtp.close()
            raise
        self._keep(smtp)

    async def _keep_after_reset(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.rset()
        except aiosmtplib.SMTPException:
            smtp.close()
            return
        self._keep(smtp)

    def _keep(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected:
            self._idle.append(smtp)

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._local_hostname is None:
            # aiosmtplib would ask the resolver for our name on every connection.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        endpoint = self._endpoint
        smtp = aiosmtplib.SMTP(
            hostname=endpoint.hostname,
            port=endpoint.port,
            username=endpoint.username,
            password=endpoint.password,
            use_tls=endpoint.use_tls,
            start_tls=endpoint.start_tls,
            timeout=MAIL.command_timeout,
            local_hostname=self._local_hostname,
        )
        await smtp.connect()
        return smtp

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):  # the server went first
                smtp.close()


def _text_header(value: str) -> str | Header:
    """A header of free text, encoded (RFC 2047) only when it is not plain ASCII."""
    return value if value.isascii() else Header(value, "utf-8")


def _address_header(value: str) -> str:
    """An address header: a display name outside ASCII is encoded, the address never is."""
    if value.isascii():
        return value
    return formataddr(parseaddr(value), charset="utf-8")


def _attachment_part(attachment: Attachment) -> MIMEBase:
    maintype, _, subtype = attachment.content_type.partition("/")
    part = MIMEBase(maintype, subtype or "octet-stream")
    part.set_payload(attachment.data)
    encode_base64(part)
    part.add_header(
        "Content-Disposition", "attachment", filename=("utf-8", "", attachment.filename)
    )
    return part
