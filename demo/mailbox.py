"""The clients' inbox: the mails the dev SMTP sink keeps as `.eml` files, read as they arrive
(and the vendors' mails, which the sink keeps too: counted, their portal links left alone)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from dealflow.mailer import read_mail
from dealflow.messages import EmailKind
from demo.http import DemoStepFailed

#: A portal link as the mails carry it: `<public url>/portal/<deal id>?token=<signed token>`.
_PORTAL_LINK = re.compile(r"https?://[^\s\"'<>]+/portal/([a-z0-9][a-z0-9-]*)\?token=[A-Za-z0-9_.%-]+")


class MailBox:
    """The clients' inbox: the sink's directory, read as files arrive (only mails newer than the
    demo). Knows the latest portal link of each deal and how many mails each deal sent."""

    def __init__(self, directory: Path, *, interval: float = 0.25) -> None:
        self.directory = directory
        self.interval = interval
        self._seen: set[str] = set()
        self._links: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[MailBox]:
        self._seen = {path.name for path in self.directory.glob("*.eml")}
        task = asyncio.create_task(self._scan_forever())
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.wait([task])

    async def _scan_forever(self) -> None:
        """Read each new file once its size held still for one interval: the sink writes a mail
        with a plain write, so a file seen mid-write would lose its end."""
        sizes: dict[str, int] = {}
        while True:
            complete = []
            for path in self.directory.glob("*.eml"):
                if path.name in self._seen:
                    continue
                size = path.stat().st_size
                if sizes.get(path.name) == size:
                    complete.append(path)
                sizes[path.name] = size
            for path in sorted(complete):
                self._seen.add(path.name)
                del sizes[path.name]
                self._read(path)
            if complete:
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(self.interval)

    def _read(self, path: Path) -> None:
        message = read_mail(path.read_bytes())
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""  # type: ignore[union-attr]
        deals = set()
        for match in _PORTAL_LINK.finditer(text):
            # A vendor's own link (to countersign) is not the client's: only count the mail.
            if message["X-Dealflow-Kind"] != EmailKind.VENDOR_SIGN_REQUEST:
                self._links[match.group(1)] = match.group(0)
            deals.add(match.group(1))
        for deal_id in deals:
            self.counts[deal_id] = self.counts.get(deal_id, 0) + 1

    def latest_link(self, deal_id: str) -> str | None:
        return self._links.get(deal_id)

    async def portal_link(self, deal_id: str, timeout: float) -> str:
        """The newest portal link mailed for `deal_id` (waiting for the first one to arrive)."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: deal_id in self._links), timeout)
            except TimeoutError as error:
                raise DemoStepFailed(f"no mail with a portal link for {deal_id} within {timeout:.0f}s") from error
        return self._links[deal_id]
