"""A receipt for released money: what the receipt activity is given and returns."""

from __future__ import annotations

from datetime import datetime

from dealflow.messages.base import Message

__all__ = ["ReceiptInput", "ReceiptResult"]


class ReceiptInput(Message):
    """Everything printed on the immutable receipt of one released milestone."""

    deal_id: str
    milestone_key: str
    milestone_title: str
    deal_title: str
    client_name: str
    client_email: str
    vendor_name: str
    vendor_email: str
    amount: int
    #: Of `amount`, what the platform kept; the vendor's share is the rest.
    platform_fee: int = 0
    #: Of `amount`, the late fee the client paid on top of the milestone's price.
    late_fee: int = 0
    currency: str
    livemode: bool
    sandbox: bool
    payment_intent_id: str | None
    charge_id: str | None = None
    transfer_id: str | None
    released_at: datetime


class ReceiptResult(Message):
    receipt_number: str
    pdf_b64: str
    sha256: str
