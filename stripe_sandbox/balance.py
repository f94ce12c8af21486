"""Balance transactions: each movement of money through the platform's balance as Stripe records
it, with Stripe's fee and the net. A captured charge brings its amount less the card fee, pending
until `available_on`; a refund or a transfer takes its amount out at once (Stripe keeps the fee
of a refunded charge), a transfer reversal brings it back. The sweep makes pending funds available when their day comes.
"""

from __future__ import annotations

from typing import Any

from stripe_sandbox import money_objects
from stripe_sandbox.core import SandboxCore
from stripe_sandbox.fees import payment_fee
from stripe_sandbox.indexes import PENDING_SECONDS, Listing
from stripe_sandbox.objects import Obj
from stripe_sandbox.store import new_id


class BalanceTransactions(SandboxCore):
    def _credit_charge(self, charge: Obj, amount: int) -> None:
        """The balance transaction of `charge` captured for `amount`, less Stripe's fee; the
        fee goes to the money log too, so the balance is net of it."""
        method = charge["payment_method_details"]["type"]
        fee = payment_fee(amount, charge["currency"], method)
        self._book(charge, "charge", amount, fee, self.now() + PENDING_SECONDS)
        self._record_money("stripe_fee", charge, fee, payment_intent=charge["payment_intent"])

    def _move_at_once(self, source: Obj, type: str, amount: int) -> None:
        """The balance transaction of money that moves without a fee and at once: a refund or
        a transfer out (`amount` negative), a transfer reversal back in."""
        self._book(source, type, amount, 0, self.now())

    def _book(self, source: Obj, type: str, amount: int, fee: int, available_on: int) -> None:
        """Store a balance transaction and name it on `source` (which the caller stores)."""
        transaction = money_objects.balance_transaction(
            new_id("txn_"), self.now(), type, source, amount, fee, available_on
        )
        source["balance_transaction"] = transaction["id"]
        self.store.put(transaction)

    def balance_object(self) -> Obj:
        """Stripe's Balance: per currency the platform has moved money in (USD when none yet),
        what is available and what is still pending."""
        currencies = sorted({currency for currency, _ in self.store.indexes.money_totals}) or [
            "usd"
        ]
        return {
            "object": "balance",
            "available": [{"amount": self.available_balance(c), "currency": c} for c in currencies],
            "connect_reserved": None,
            "instant_available": None,
            "issuing": None,
            "livemode": False,
            "pending": [{"amount": self.pending_balance(c), "currency": c} for c in currencies],
            "refund_and_dispute_prefunding": None,
        }

    def balance_transactions(self, filters: dict[str, Any]) -> Listing:
        """Balance transactions, newest first; `source` names the one a charge, refund or
        transfer made."""
        listing = self.listing("balance_transaction", filters)
        if "source" not in filters:
            return listing
        source = self.state.objects.get(filters["source"])
        return listing.narrowed_to(source.get("balance_transaction") if source else None)

    def _make_funds_available(self) -> list[str]:
        """Pending transactions whose `available_on` has come: available now. Returns their ids."""
        available = []
        for transaction_id in self.store.indexes.pending_funds.pop_due(self.now()):
            transaction = self.state.objects[transaction_id]
            transaction["status"] = "available"
            self.store.put(transaction)
            available.append(transaction_id)
        return available
