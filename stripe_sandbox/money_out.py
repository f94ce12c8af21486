"""Money leaving the balance: refunds and Connect transfers (disputes are in `disputes`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stripe_sandbox import money_objects
from stripe_sandbox.accounts import ConnectedAccounts
from stripe_sandbox.balance import BalanceTransactions
from stripe_sandbox.core import amount_up_to
from stripe_sandbox.errors import invalid_request, unexpected_state
from stripe_sandbox.indexes import Listing, Timeline
from stripe_sandbox.objects import Obj, public
from stripe_sandbox.store import new_id


class MoneyOut(BalanceTransactions, ConnectedAccounts):
    def create_refund(self, params: dict[str, Any]) -> Obj:
        if "payment_intent" in params:
            intent = self.get(params["payment_intent"], "payment_intent", "payment_intent")
            if intent["status"] != "succeeded":
                raise unexpected_state(
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund."
                )
            charge = self.state.objects[intent["latest_charge"]]
        elif "charge" in params:
            charge = self.get(params["charge"], "charge", "charge")
            if not charge["captured"]:
                raise unexpected_state(
                    f"Charge {charge['id']} has not been captured; cancel its payment intent instead.",
                    code="charge_not_refundable",
                )
        else:
            raise invalid_request(
                "One of `charge` or `payment_intent` is required.", code="parameter_missing"
            )
        if charge["disputed"]:
            raise invalid_request(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        refundable = charge["amount_captured"] - charge["_refunds_total"]
        if refundable <= 0:
            raise invalid_request(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        currency = charge["currency"]
        amount = amount_up_to(
            params,
            "amount",
            refundable,
            lambda amount: (
                f"Refund amount ({amount} {currency}) is greater than unrefunded amount "
                f"on charge ({refundable} {currency})"
            ),
            code="amount_too_large",
        )
        refund = money_objects.refund(
            id=new_id("re_"),
            created=self.now(),
            amount=amount,
            charge=charge,
            reason=params.get("reason"),
            metadata=params.get("metadata", {}),
        )
        self._move_at_once(refund, "refund", -amount)
        self.store.put(refund)
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["_refunds_total"] += amount
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._record_money(
            "refund", refund, amount, payment_intent=charge["payment_intent"], charge=charge["id"]
        )
        self._emit("charge.refunded", charge, previous)
        self._emit("refund.created", refund)
        return refund

    def create_transfer(self, params: dict[str, Any]) -> Obj:
        destination = self.transfer_destination(params["destination"])["id"]
        if "source_transaction" in params:
            self._take_from_charge(params)
        else:
            available = self.available_balance(params["currency"])
            if params["amount"] > available:
                raise invalid_request(
                    "You have insufficient available funds in your Stripe account "
                    f"({available} {params['currency']} available in the sandbox; "
                    f"{self.pending_balance(params['currency'])} still pending: name the charge "
                    "as source_transaction to transfer from it once it is available).",
                    code="balance_insufficient",
                )
        transfer = money_objects.transfer(
            id=new_id("tr_"), created=self.now(), params=params, destination_payment=new_id("py_")
        )
        self._move_at_once(transfer, "transfer", -transfer["amount"])
        self.store.put(transfer)
        self._record_money(
            "transfer",
            transfer,
            transfer["amount"],
            destination=destination,
            transfer_group=transfer["transfer_group"],
        )
        self._emit("transfer.created", transfer)
        return transfer

    def reverse_transfer(self, transfer_id: str, params: dict[str, Any]) -> Obj:
        """Take (part of) a transfer back from the connected account, which must still hold it."""
        transfer = self.get(transfer_id, "transfer", "id")
        left = transfer["amount"] - transfer["amount_reversed"]
        amount = amount_up_to(
            params,
            "amount",
            left,
            lambda asked: f"The reversal amount ({asked}) exceeds what is left of transfer "
            f"{transfer_id} ({left}).",
        )
        account, currency = transfer["destination"], transfer["currency"]
        held = self.store.indexes.account_balances[account, currency]
        if amount > held:
            raise invalid_request(
                f"Insufficient funds in the connected account {account} to reverse {amount} "
                f"{currency} ({held} left there).",
                code="balance_insufficient",
            )
        reversal = money_objects.transfer_reversal(
            id=new_id("trr_"), created=self.now(), transfer=transfer, amount=amount, params=params
        )
        self._move_at_once(reversal, "transfer_refund", amount)
        self.store.put(reversal)
        previous = {"amount_reversed": transfer["amount_reversed"], "reversed": transfer["reversed"]}
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
        transfer["reversals"]["data"].insert(0, public(reversal))
        self._record_money("transfer_reversal", reversal, amount, destination=account)
        self._emit("transfer.reversed", transfer, previous)
        return reversal

    def refunds(self, filters: dict[str, Any]) -> Listing:
        """Refunds, newest first, of one `payment_intent` (read from its index) or `charge`."""
        by_intent = ("payment_intent", self.store.indexes.refunds_by_intent)
        return self._filtered("refund", filters, by_intent, "charge")

    def transfers(self, filters: dict[str, Any]) -> Listing:
        """Transfers, newest first, of one `transfer_group` (read from its index) or `destination`."""
        by_group = ("transfer_group", self.store.indexes.transfers_by_group)
        return self._filtered("transfer", filters, by_group, "destination")

    def reversals(self, transfer_id: str) -> Listing:
        """The reversals of one transfer, newest first (Stripe's list takes no filter)."""
        self.get(transfer_id, "transfer", "id")
        timeline = self.store.indexes.reversals_by_transfer.get(transfer_id, Timeline())
        return Listing.of(self.state.objects, timeline, lambda _: True)

    def _filtered(
        self,
        kind: str,
        filters: dict[str, Any],
        indexed: tuple[str, Mapping[str, Timeline]],
        compared: str,
    ) -> Listing:
        """Objects of `kind`: the `indexed` filter reads only its index's objects, the `compared`
        one is checked object by object."""
        name, index = indexed

        def matches(obj: Obj) -> bool:
            return compared not in filters or obj[compared] == filters[compared]

        if name not in filters:
            return self.listing(kind, filters, matches)
        timeline = index.get(filters[name], Timeline())
        return Listing.of(self.state.objects, timeline, matches, filters.get("created"))

    def pay_out_account(self, account: str, currency: str, amount: int) -> int:
        """The vendor moves money from their connected account to their bank (control API):
        what is left there afterwards."""
        self.connected_account(account, "account")
        held = self.store.indexes.account_balances[account, currency]
        if not 0 < amount <= held:
            raise invalid_request(
                f"amount must be between 1 and the {held} {currency} account {account} holds",
                param="amount",
            )
        self._record_money(
            "account_payout",
            {"id": new_id("po_"), "currency": currency},
            amount,
            destination=account,
        )
        return held - amount

    def _take_from_charge(self, params: dict[str, Any]) -> None:
        """A transfer tied to a charge: in its currency, at most what is left of it (captured,
        less refunds and earlier transfers from it); it waits for the charge's funds instead of
        needing an available balance."""
        charge = self.get(params["source_transaction"], "charge", "source_transaction")
        if charge["currency"] != params["currency"]:
            raise invalid_request(
                f"The currency of source_transaction {charge['id']} ({charge['currency']}) must "
                f"match the transfer's ({params['currency']}).",
                param="currency",
            )
        left = charge["amount_captured"] - charge["_refunds_total"] - charge.get("_transferred", 0)
        if params["amount"] > left:
            raise invalid_request(
                f"The transfer amount ({params['amount']}) exceeds what is left of "
                f"source_transaction {charge['id']} ({left}).",
                param="amount",
                code="balance_insufficient",
            )
        charge["_transferred"] = charge.get("_transferred", 0) + params["amount"]
        self.store.put(charge)
