"""The clients' mail, read from the SMTP sink of this process as it arrives: the portal link a
client opens and the payment links they pay, by deal (each mail names its deal and kind in
`X-Dealflow-Deal` / `X-Dealflow-Kind`). In memory, so a hundred deals waiting for mail cost no
directory scans and no delay beyond one short interval."""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from email.message import EmailMessage
from urllib.parse import urlsplit

from demo.http import DemoStepFailed
from devstack.mailsink import MailSink

_PORTAL_LINK = re.compile(r"https?://[^\s\"'<>]+/portal/[^\s\"'<>?]+\?token=[A-Za-z0-9_.%-]+")
_CHECKOUT_LINK = re.compile(r"https?://[^\s\"'<>]+/c/pay/[A-Za-z0-9_]+")
PAYMENT_LINK = "payment_link"


class MailIndex:
    """What the sink received, by deal: the latest portal link, the payment links in order, the
    count of each kind of mail. `portal_link` is what `demo.actors.DemoClient` asks its mailbox."""

    def __init__(self, sink: MailSink, *, interval: float = 0.01) -> None:
        self.sink = sink
        self.interval = interval
        self._read_up_to = len(sink.messages)
        self._portal: dict[str, str] = {}
        self._checkouts: dict[str, list[str]] = defaultdict(list)
        self.kinds: dict[str, Counter[str]] = defaultdict(Counter)
        self._changed = asyncio.Condition()

    async def read_forever(self) -> None:
        """Read the sink's new mails every interval (run it `beside` the work)."""
        while True:
            arrived = self.sink.messages[self._read_up_to :]
            if arrived:
                self._read_up_to += len(arrived)
                for message in arrived:
                    self.read(message)
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(self.interval)

    def read(self, message: EmailMessage) -> None:
        deal_id, kind = message["X-Dealflow-Deal"], message["X-Dealflow-Kind"]
        if deal_id is None:
            return
        self.kinds[deal_id][kind] += 1
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        if portal := _PORTAL_LINK.findall(text):
            self._portal[deal_id] = portal[-1]
        if kind == PAYMENT_LINK and (checkout := _CHECKOUT_LINK.search(text)):
            self._checkouts[deal_id].append(checkout.group(0))

    async def _wait(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout)
            except TimeoutError as error:
                raise DemoStepFailed(f"no mail with {what} within {timeout:.0f}s") from error

    async def received(self, deal_id: str, kind: str, count: int, timeout: float) -> bool:
        """Whether `count` mails of `kind` came for the deal (waiting up to `timeout`)."""
        try:
            await self._wait(f"{kind} {count}", lambda: self.kinds[deal_id][kind] >= count, timeout)
        except DemoStepFailed:
            return False
        return True

    async def portal_link(self, deal_id: str, timeout: float) -> str:
        """The newest portal link mailed for the deal (waiting for the first)."""
        await self._wait(f"a portal link for {deal_id}", lambda: deal_id in self._portal, timeout)
        return self._portal[deal_id]

    async def checkout_session(self, deal_id: str, number: int, timeout: float) -> str:
        """The Checkout Session id of the deal's `number`-th payment link mail (0: the first)."""
        await self._wait(
            f"payment link {number + 1} for {deal_id}",
            lambda: len(self._checkouts[deal_id]) > number,
            timeout,
        )
        return urlsplit(self._checkouts[deal_id][number]).path.rsplit("/", 1)[-1]
