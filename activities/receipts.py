"""Immutable receipts for released milestones, stored in the ledger and rendered as PDF.

CONTRACT (being implemented): signatures below are fixed; the workflow calls these by reference.
"""

from __future__ import annotations

from temporalio import activity

from dealflow.messages import ReceiptInput, ReceiptResult


class ReceiptActivities:
    @activity.defn
    async def issue_receipt(self, input: ReceiptInput) -> ReceiptResult:
        """Idempotent per (deal_id, milestone_key): a retry returns the receipt already issued."""
        raise NotImplementedError
