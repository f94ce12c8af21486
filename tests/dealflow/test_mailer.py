"""The Mailer against a real SMTP server (aiosmtpd): mails go over kept connections, a
connection the server dropped is replaced without losing the mail, and headers outside ASCII
arrive as they were written."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.exceptions import ApplicationError

from dealflow.mailer import PERMANENT_SMTP_ERROR, Attachment, Mailer, OutgoingMail, read_mail
from devstack.mailsink import MailSink


class CountingSink(MailSink):
    """The dev sink, counting the SMTP sessions opened to it (one EHLO each)."""

    sessions = 0
    connections: list[SMTP]

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        self.connections = [*getattr(self, "connections", []), server]
        session.host_name = hostname
        return responses

    def drop_connections(self) -> None:
        """What a server does to a connection idle too long: close it from its side."""
        for server in self.connections:
            if server.transport is not None:
                server.transport.close()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[CountingSink]:
    sink = CountingSink(tmp_path / "mail")
    await sink.start()
    yield sink
    await sink.stop()


def mail(n: int, **fields: object) -> OutgoingMail:
    values: dict[str, object] = {
        "deal_id": "deal-mailer",
        "kind": "payment_link",
        "to": "client@example.com",
        "subject": f"Mail {n}",
        "message_key": f"payment_link:{n}",
        "text": f"Text {n}",
        "html": f"<p>HTML {n}</p>",
    } | fields
    return OutgoingMail(**values)  # type: ignore[arg-type]


async def test_mails_in_a_row_share_one_connection(sink: CountingSink) -> None:
    mailer = Mailer(smtp_url=sink.url, mail_from="deals@dealflow.test")
    ids = [await mailer.send(mail(n)) for n in range(5)]
    await mailer.close()
    assert [m["Message-ID"] for m in sink.messages] == ids
    assert sink.sessions == 1


async def test_concurrent_mails_use_at_most_the_connections_allowed(sink: CountingSink) -> None:
    mailer = Mailer(smtp_url=sink.url, mail_from="deals@dealflow.test", connections=3)
    await asyncio.gather(*(mailer.send(mail(n)) for n in range(30)))
    await mailer.close()
    assert sorted(m["Subject"] for m in sink.messages) == sorted(f"Mail {n}" for n in range(30))
    assert sink.sessions <= 3


async def test_a_connection_the_server_dropped_is_replaced(sink: CountingSink) -> None:
    mailer = Mailer(smtp_url=sink.url, mail_from="deals@dealflow.test")
    await mailer.send(mail(1))
    sink.drop_connections()
    await asyncio.sleep(0.05)
    await mailer.send(mail(2))
    await mailer.close()
    assert [m["Subject"] for m in sink.messages] == ["Mail 1", "Mail 2"]
    assert sink.sessions == 2


async def test_headers_outside_ascii_arrive_as_written(sink: CountingSink) -> None:
    mailer = Mailer(smtp_url=sink.url, mail_from="Zoë's Deals <deals@dealflow.test>")
    subject = "Ihr Auftrag: Überarbeitung der Website für Café Ångström " * 2
    await mailer.send(
        mail(
            1,
            to="Søren Kierkegaard <soren@example.com>",
            subject=subject,
            text="Grüße",
            html="<p>Grüße</p>",
            attachments=(Attachment("Quittung-№1.pdf", "application/pdf", b"%PDF-1.4 bytes"),),
        )
    )
    await mailer.close()
    [received] = sink.messages
    assert received["Subject"] == subject
    assert received["From"].addresses[0].display_name == "Zoë's Deals"
    assert received["To"].addresses[0].display_name == "Søren Kierkegaard"
    assert received.get_body(("plain",)).get_content().strip() == "Grüße"
    assert received.get_body(("html",)).get_content().strip() == "<p>Grüße</p>"
    [attached] = received.iter_attachments()
    assert attached.get_filename() == "Quittung-№1.pdf"
    assert attached.get_content() == b"%PDF-1.4 bytes"


async def test_a_line_break_in_a_header_is_refused_for_good(sink: CountingSink) -> None:
    mailer = Mailer(smtp_url=sink.url, mail_from="deals@dealflow.test")
    with pytest.raises(ApplicationError, match="Subject may not contain a line break") as raised:
        await mailer.send(mail(1, subject="Hello\r\nBcc: everyone@example.com"))
    assert raised.value.type == PERMANENT_SMTP_ERROR and raised.value.non_retryable
    assert sink.messages == []


async def test_a_mail_reads_as_the_modern_parser_reads_it(sink: CountingSink) -> None:
    """`read_mail` parses fast (compat32) but must give what `policy.default` gives."""
    mailer = Mailer(smtp_url=sink.url, mail_from="Zoë's Deals <deals@dealflow.test>")
    await mailer.send(
        mail(
            1,
            to="Søren Kierkegaard <soren@example.com>",
            subject="Überarbeitung der Website, ein langer Betreff, der gefaltet wird " * 3,
            attachments=(Attachment("Quittung-№1.pdf", "application/pdf", b"%PDF-1.4 \x00bytes"),),
        )
    )
    await mailer.close()
    [name] = [path.name for path in sink.directory.iterdir()]
    data = (sink.directory / name).read_bytes()
    fast, modern = read_mail(data), email.message_from_bytes(data, policy=email.policy.default)
    assert fast.as_bytes() == modern.as_bytes()
    for header in ("From", "To", "Subject", "Message-ID", "X-Dealflow-Deal"):
        assert fast[header] == modern[header]
    assert fast["To"].addresses == modern["To"].addresses
    for kind in ("plain", "html"):
        assert fast.get_body((kind,)).get_content() == modern.get_body((kind,)).get_content()
    [fast_file], [modern_file] = fast.iter_attachments(), modern.iter_attachments()
    assert fast_file.get_filename() == modern_file.get_filename() == "Quittung-№1.pdf"
    assert fast_file.get_content() == modern_file.get_content() == b"%PDF-1.4 \x00bytes"
