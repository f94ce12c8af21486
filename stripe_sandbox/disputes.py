"""Disputes as Stripe runs them: a bank opens one on a captured charge (through the sandbox's
controls) and the disputed amount leaves the balance at once (`charge.dispute.funds_withdrawn`);
the platform stages and submits evidence before `evidence_details.due_by` through the API
(`POST /v1/disputes/{id}`), or accepts the loss (`/close`); the bank decides (controls again),
and a won dispute brings the money back (`charge.dispute.funds_reinstated`).

Evidence can be edited until it is submitted; after that (`under_review`) and once the dispute is
closed, Stripe refuses every change. A submission after `due_by` is taken with `past_due` set,
as Stripe does (its delivery to the bank is then not guaranteed). The sandbox has no Files API:
the evidence fields that name a file take any `file_` id as given.
"""

from __future__ import annotations

from typing import Any

from stripe_sandbox import money_objects
from stripe_sandbox.balance import BalanceTransactions
from stripe_sandbox.errors import invalid_request, unexpected_state
from stripe_sandbox.indexes import Listing
from stripe_sandbox.objects import Obj
from stripe_sandbox.store import new_id

#: Stripe's limit on the evidence's text, all fields together.
EVIDENCE_TEXT_LIMIT = 150_000
#: Statuses in which the platform may still answer.
ANSWERABLE = ("needs_response", "warning_needs_response")
#: What submitting moves a dispute to.
SUBMITTED = {"needs_response": "under_review", "warning_needs_response": "warning_under_review"}
CLOSED = ("won", "lost", "warning_closed", "prevented")


class Disputes(BalanceTransactions):
    def open_dispute(
        self, *, payment_intent: str | None, charge_id: str | None, reason: str, amount: int | None
    ) -> Obj:
        if payment_intent:
            intent = self.get(payment_intent, "payment_intent", "payment_intent")
            if intent["latest_charge"] is None:
                raise unexpected_state(f"PaymentIntent {payment_intent} has no charge to dispute.")
            charge = self.state.objects[intent["latest_charge"]]
        elif charge_id:
            charge = self.get(charge_id, "charge", "charge")
        else:
            raise invalid_request(
                "One of `charge` or `payment_intent` is required.", code="parameter_missing"
            )
        disputable = charge["amount_captured"] - charge["_refunds_total"]
        if not charge["captured"] or charge["disputed"] or disputable <= 0:
            raise unexpected_state(
                f"Charge {charge['id']} cannot be disputed: nothing captured is left on it.",
                code="charge_not_disputable",
            )
        amount = disputable if amount is None else amount
        if not 0 < amount <= disputable:
            raise invalid_request(
                f"A dispute amount must be between 1 and {disputable}.", param="amount"
            )
        dispute = money_objects.dispute(
            id=new_id("dp_"), created=self.now(), charge=charge, amount=amount, reason=reason
        )
        charge["disputed"] = True
        self.store.put(charge)
        self._emit("charge.dispute.created", dispute)
        self._move_dispute_funds(dispute, "dispute_withdrawn", -amount, "dispute")
        self._emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    def update_dispute(self, dispute_id: str, params: dict[str, Any]) -> Obj:
        """Stage evidence (and metadata); `submit` (Stripe's default: true) sends it to the bank."""
        dispute = self.get(dispute_id, "dispute", "dispute")
        evidence = params.get("evidence", {})
        if dispute["status"] not in ANSWERABLE and (evidence or params.get("submit", True)):
            raise invalid_request(
                f"This dispute is {dispute['status']}: its evidence can no longer be updated "
                "or submitted.",
                param="evidence",
            )
        merged = {**dispute["evidence"], **evidence}
        text = sum(len(value) for value in merged.values() if isinstance(value, str))
        if text > EVIDENCE_TEXT_LIMIT:
            raise invalid_request(
                f"The evidence's text is {text} characters; all fields together may hold at "
                f"most {EVIDENCE_TEXT_LIMIT}.",
                param="evidence",
            )
        details = dispute["evidence_details"]
        previous: Obj = {"evidence": dict(dispute["evidence"]), "evidence_details": dict(details)}
        dispute["evidence"] = merged
        dispute["metadata"] = {**dispute["metadata"], **params.get("metadata", {})}
        details["has_evidence"] = details["has_evidence"] or bool(evidence)
        if params.get("submit", True) and dispute["status"] in ANSWERABLE:
            previous["status"] = dispute["status"]
            dispute["status"] = SUBMITTED[dispute["status"]]
            details["submission_count"] += 1
            details["submission_method"] = "manual"
            details["past_due"] = details["due_by"] is not None and self.now() > details["due_by"]
        self._emit("charge.dispute.updated", dispute, previous)
        return dispute

    def accept_dispute(self, dispute_id: str) -> Obj:
        """`POST /v1/disputes/{id}/close`: the platform gives up; the dispute is lost."""
        dispute = self.get(dispute_id, "dispute", "dispute")
        if dispute["status"] in CLOSED:
            return dispute  # Stripe answers a closed dispute as it is
        return self.close_dispute(dispute_id, "lost")

    def close_dispute(self, dispute_id: str, status: str) -> Obj:
        """The bank decides (controls); a won dispute's money comes back to the balance."""
        dispute = self.get(dispute_id, "dispute", "dispute")
        if dispute["status"] in CLOSED:
            raise unexpected_state(
                f"Dispute {dispute_id} is already closed ({dispute['status']}).",
                code="dispute_already_closed",
            )
        previous = {"status": dispute["status"]}
        dispute["status"] = status
        self._emit("charge.dispute.closed", dispute, previous)
        if status == "won":
            self._move_dispute_funds(
                dispute, "dispute_reinstated", dispute["amount"], "dispute_reversal"
            )
            self._emit("charge.dispute.funds_reinstated", dispute)
        return dispute

    def disputes(self, filters: dict[str, Any]) -> Listing:
        """Disputes, newest first; `charge` or `payment_intent` narrows them to one payment's."""
        return self.listing(
            "dispute",
            filters,
            lambda dispute: all(
                dispute[field] == filters[field]
                for field in ("charge", "payment_intent")
                if field in filters
            ),
        )

    def _move_dispute_funds(self, dispute: Obj, kind: str, amount: int, category: str) -> None:
        """The balance transaction of money a dispute took or gave back (at once, no fee; the
        sandbox charges no dispute fee), listed on the dispute, and its money log entry."""
        transaction = money_objects.balance_transaction(
            new_id("txn_"), self.now(), "adjustment", dispute, amount, 0, self.now()
        )
        transaction["reporting_category"] = category
        self.store.put(transaction)
        dispute["balance_transactions"].append(transaction)
        self._record_money(
            kind,
            dispute,
            abs(amount),
            payment_intent=dispute["payment_intent"],
            charge=dispute["charge"],
        )
