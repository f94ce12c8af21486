"""What the workflow hands the ledger activity: audit events, the read-model row, confirmed
payments, and what came of a batch."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from dealflow.messages.base import Message
from dealflow.messages.stages import DealStage

__all__ = [
    "DealSnapshot",
    "LedgerBatch",
    "LedgerEvent",
    "LedgerWriteResult",
    "PaymentKind",
    "PaymentRecord",
    "QuarantinedRow",
]


class LedgerEvent(Message):
    """One append-only audit row; `event_key` is unique, so a retried activity writes once."""

    event_key: str
    deal_id: str
    milestone_key: str | None = None
    kind: str
    source: str
    occurred_at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)


class DealSnapshot(Message):
    """The `deals` read model row, upserted on each stage change."""

    deal_id: str
    workflow_id: str
    title: str
    client_email: str
    vendor_email: str
    vendor_id: str | None = None
    currency: str
    stage: DealStage
    amount_total: int
    funded: int
    released: int
    refunded: int
    livemode: bool | None
    demo: bool
    updated_at: datetime
    #: The deal's timeline length when taken: ledger batches may land in any order (and several
    #: in the same instant), and the row keeps the highest. 0 in snapshots recorded before.
    version: int = 0


class PaymentKind(StrEnum):
    CHARGE = "charge"  # money captured from the client
    AUTHORIZATION = "authorization"  # held on the card, not yet captured
    REFUND = "refund"
    TRANSFER = "transfer"  # paid out to the vendor's connected account
    RELEASE = "release"  # released to the vendor without a Connect transfer
    PLATFORM_FEE = "platform_fee"  # kept back from a milestone's payout by the platform
    TRANSFER_REVERSAL = "transfer_reversal"  # taken back from the vendor after a refund
    DISPUTE_WITHDRAWAL = "dispute_withdrawal"  # taken from the balance by a chargeback
    DISPUTE_REINSTATEMENT = "dispute_reinstatement"  # given back: the chargeback was won


class PaymentRecord(Message):
    """Money Stripe confirmed. `stripe_id` is unique per kind; `source` says who confirmed it."""

    stripe_id: str
    deal_id: str
    milestone_key: str
    kind: PaymentKind
    amount: int
    currency: str
    livemode: bool
    sandbox: bool
    status: str
    occurred_at: datetime
    #: A charge's Stripe fee and net, from its balance transaction (minor units of
    #: `fee_currency`); None for every other kind, and for charges recorded before fees were read.
    fee: int | None = None
    net: int | None = None
    fee_currency: str | None = None


class LedgerBatch(Message):
    """Everything one step of a deal's workflow wrote down, for one ledger transaction."""

    deal_id: str
    events: list[LedgerEvent] = Field(default_factory=list)
    payments: list[PaymentRecord] = Field(default_factory=list)
    #: The newest read-model row of the step, if the stage or money changed.
    snapshot: DealSnapshot | None = None


class QuarantinedRow(Message):
    """A ledger row Postgres refused for good: kept aside in `ledger_quarantine`, not retried."""

    entry: Literal["event", "payment", "snapshot"]
    key: str
    error: str


class LedgerWriteResult(Message):
    written: int
    quarantined: list[QuarantinedRow] = Field(default_factory=list)
