"""An SMTP sink for development and tests: accepts every mail, keeps each as an `.eml` file.

Runs inside the caller's event loop (aiosmtpd's SMTP protocol on `loop.create_server`), so the
dev stack and the tests use the same code a person reads their mail through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from dealflow.mailer import read_mail
from dealflow.private_files import private_directory, write_private

log = logging.getLogger("dealflow.mailsink")


class MailSink:
    """Start with `await sink.start()`; mails land in `directory` and in `messages`."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.messages: list[EmailMessage] = []
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def start(self) -> None:
        private_directory(self.directory)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self, hostname="dealflow-sink"), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else raw.encode()
        message = read_mail(data)
        name = f"{time.time_ns()}-{len(self.messages):05d}.eml"
        write_private(self.directory / name, data)  # portal links: the client's keys
        log.info("mail to %s: %s (%s)", ", ".join(envelope.rcpt_tos), message["Subject"], name)
        async with self._arrived:
            self.messages.append(message)  # type: ignore[arg-type]
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    async def wait_for(self, predicate: Callable[[EmailMessage], bool], timeout: float = 30) -> EmailMessage:
        """The first mail (already received or arriving within `timeout`) that matches."""
        async def match() -> EmailMessage:
            async with self._arrived:
                while True:
                    for message in self.messages:
                        if predicate(message):
                            return message
                    await self._arrived.wait()

        return await asyncio.wait_for(match(), timeout)

