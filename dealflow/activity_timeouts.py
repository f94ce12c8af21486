"""How long one attempt of each activity family can take, and the Temporal timeouts that follow.

The activities build their clients from these numbers (Stripe's HTTP timeouts and
`max_network_retries`, the httpx timeouts of vendor calls, the SMTP command timeout, Postgres
statement timeouts), and the workflow takes its `start_to_close_timeout` and
`heartbeat_timeout` from the same objects, so the two cannot drift apart:

- `worst_case` is the longest one attempt can run given its client settings (each timeout
  spent in full, every library retry taken, every backoff at its maximum).
- `attempt_timeout` (start-to-close) is that plus `MARGIN`: Temporal never starts a retry while
  the previous attempt may still be talking to Stripe, the vendor or the mail server.
- `heartbeat_timeout` is how soon a crashed worker is noticed. Activities that can run for more
  than a few seconds heartbeat every `HEARTBEAT_INTERVAL` (activities/heartbeat.py), so a deal
  waits seconds for a dead worker, not the whole start-to-close.

Only the standard library is imported: the workflow imports this module inside its sandbox.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta

#: How often a heartbeating activity reports; the SDK forwards at most one heartbeat per 80% of
#: the heartbeat timeout, so this only needs to be well below it.
HEARTBEAT_INTERVAL = timedelta(seconds=2)
#: Five intervals: a worker that missed this many is gone, not busy.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
#: Between an attempt's worst case and its start-to-close: scheduling delay and clock skew.
MARGIN = timedelta(seconds=5)


class AttemptBound(ABC):
    """An activity family's clients bound one attempt by `worst_case`; its start-to-close is
    that plus `MARGIN`."""

    @property
    @abstractmethod
    def worst_case(self) -> timedelta: ...

    @property
    def attempt_timeout(self) -> timedelta:
        return self.worst_case + MARGIN


@dataclass(frozen=True)
class HttpTimeouts:
    """httpx's per-phase timeouts in seconds. Each bounds one phase, not the whole request; a
    peer that answers in one piece finishes a request within their sum."""

    connect: float
    write: float
    pool: float
    read: float

    @property
    def request(self) -> timedelta:
        return timedelta(seconds=self.connect + self.write + self.pool + self.read)


@dataclass(frozen=True)
class StripeTimeouts(AttemptBound):
    """One Stripe call: `max_network_retries + 1` requests, each within `http.request`, with
    stripe-python's backoff between them (retry n sleeps at most min(0.5 * 2**(n-1), 5) s).

    Every payments activity makes one call, or two when it re-reads an object after a conflict
    (expire, capture, cancel), or three for an expire that lost a race; a Checkout Session for a
    client without a Customer yet makes five (list, create, list again, delete the loser of a
    race, the session): the worst case counts five calls.
    """

    http: HttpTimeouts = HttpTimeouts(connect=5.0, write=5.0, pool=5.0, read=20.0)
    max_network_retries: int = 2
    calls_per_attempt: int = 5
    heartbeat_timeout: timedelta | None = HEARTBEAT_TIMEOUT

    @property
    def call(self) -> timedelta:
        backoff = sum(min(0.5 * 2 ** (n - 1), 5.0) for n in range(1, self.max_network_retries + 1))
        return (self.max_network_retries + 1) * self.http.request + timedelta(seconds=backoff)

    @property
    def worst_case(self) -> timedelta:
        return self.calls_per_attempt * self.call


@dataclass(frozen=True)
class MailTimeouts(AttemptBound):
    """One mail: aiosmtplib waits at most `command_timeout` seconds for each of up to
    `round_trips` answers and retries nothing itself: on a kept connection the server dropped,
    MAIL, RCPT, DATA and end of data before the drop shows, then on a new one connect, greeting,
    EHLO, STARTTLS, TLS handshake, EHLO, two for AUTH, MAIL, RCPT, DATA, end of data, QUIT. The end-of-data wait also
    covers sending the message, so it must allow a 10 MB attachment on a slow uplink.
    """

    command_timeout: float = 30.0
    round_trips: int = 17
    heartbeat_timeout: timedelta | None = HEARTBEAT_TIMEOUT

    @property
    def worst_case(self) -> timedelta:
        return self.round_trips * timedelta(seconds=self.command_timeout)


@dataclass(frozen=True)
class DeliveryTimeouts(AttemptBound):
    """Vendor hand-offs; httpx retries nothing itself.

    A work order is one POST within `work_order.request`. Artifact deliveries download every
    file (each hop of a redirect is a request within `artifact.request`, and the whole download
    is cut at `download_deadline`, since a per-read timeout does not bound a slow stream) and
    then send one mail (`mail.worst_case`).
    """

    work_order: HttpTimeouts = HttpTimeouts(connect=5.0, write=10.0, pool=5.0, read=20.0)
    artifact: HttpTimeouts = HttpTimeouts(connect=5.0, write=10.0, pool=5.0, read=60.0)
    download_deadline: timedelta = timedelta(minutes=2)
    mail: MailTimeouts = MailTimeouts()
    heartbeat_timeout: timedelta | None = HEARTBEAT_TIMEOUT

    @property
    def worst_case(self) -> timedelta:
        artifacts = self.download_deadline + self.mail.worst_case
        return max(self.work_order.request, artifacts)


@dataclass(frozen=True)
class DatabaseTimeouts(AttemptBound):
    """Postgres work: `waits` waits (a pool connection, a statement), each cut by asyncpg at
    `statement_timeout` seconds. Without a heartbeat a crashed worker is noticed at
    `attempt_timeout`, which is short for one statement; longer attempts heartbeat.
    """

    statement_timeout: float = 10.0
    waits: int = 1
    heartbeat_timeout: timedelta | None = None

    @property
    def worst_case(self) -> timedelta:
        return self.waits * timedelta(seconds=self.statement_timeout)


STRIPE = StripeTimeouts()
#: A read of Stripe run inside the deal's workflow task (a local activity): one request and no
#: retry of the library's (Temporal retries it in the task, then on timers). The task, and the
#: status queries that wait for it, are held while it runs: by a Stripe that hangs, for seconds,
#: not for STRIPE's minutes.
STRIPE_READ_IN_TASK = StripeTimeouts(
    http=HttpTimeouts(connect=5.0, write=5.0, pool=5.0, read=10.0),
    max_network_retries=0,
    calls_per_attempt=1,
    heartbeat_timeout=None,
)
MAIL = MailTimeouts()
DELIVERY = DeliveryTimeouts(mail=MAIL)
#: One idempotent INSERT (or UPSERT) per activity.
LEDGER = DatabaseTimeouts()
#: One workflow step's rows in one transaction: a connection, then a statement and a savepoint
#: per row (a step records a few; forty is a busy one).
LEDGER_BATCH = DatabaseTimeouts(waits=41, heartbeat_timeout=HEARTBEAT_TIMEOUT)
#: Acquire a connection, read the receipt, draw its number, insert it, re-read it after a lost
#: race (the PDF is drawn in between, well within MARGIN).
RECEIPTS = DatabaseTimeouts(waits=5, heartbeat_timeout=HEARTBEAT_TIMEOUT)
#: Acquire a connection, insert the certificate, read back the one kept (the PDF is drawn first).
CERTIFICATES = DatabaseTimeouts(waits=3, heartbeat_timeout=HEARTBEAT_TIMEOUT)
