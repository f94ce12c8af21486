"""Stripe's side of reconciliation: the account to read, and its money objects (listed for a
period through Stripe's list endpoints, every page of each, or read one by id), keyed the way
the ledger keys them. Stripe objects arrive here as plain dicts (`StripeObject.to_dict()`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import stripe

from dealflow.modes import MoneyMode
from dealflow.settings import ConfigError, Settings
from truth.differences import Fees, Money

#: Explicit, so a flaky network is retried a bounded number of times (the library's default is 2).
STRIPE_NETWORK_RETRIES = 3
STRIPE_TIMEOUT_SECONDS = 30
#: Balance transaction types whose source is a charge or a refund (`payment` and
#: `payment_refund` are the ones of non-card payment methods).
CHARGE_TRANSACTIONS = ("charge", "payment")
REFUND_TRANSACTIONS = ("refund", "payment_refund")


@dataclass(frozen=True)
class StripeAccount:
    """The Stripe account (or sandbox) to reconcile with, and which money it holds."""

    api_key: str
    api_base: str | None
    mode: MoneyMode

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            self.api_key,
            base_addresses={"api": self.api_base} if self.api_base else None,
            max_network_retries=STRIPE_NETWORK_RETRIES,
            http_client=stripe.HTTPXClient(timeout=STRIPE_TIMEOUT_SECONDS),
        )


def configured_account(settings: Settings) -> StripeAccount:
    """STRIPE_API_KEY (and STRIPE_API_BASE); in dev without a key, the running dev stack's sandbox."""
    if settings.stripe_api_key:
        return StripeAccount(
            settings.stripe_api_key, settings.stripe_api_base, MoneyMode(settings.stripe_mode)
        )
    if settings.dev:
        from devstack.runtime import read_runtime

        runtime = read_runtime(settings.home)
        if runtime is not None and runtime.sandbox_url and runtime.sandbox_api_key:
            return StripeAccount(runtime.sandbox_api_key, runtime.sandbox_url, MoneyMode.SANDBOX)
    raise ConfigError(
        "STRIPE_API_KEY is not set and no `dealflow dev` stack with a sandbox is running: "
        "there is no Stripe account to reconcile with"
    )


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata") or {})


def _money(kind: str, obj: dict[str, Any], amount: int, fees: Fees | None = None) -> Money:
    meta = _metadata(obj)
    deal_id, milestone_key = meta.get("deal_id"), meta.get("milestone_key")
    return Money(kind, obj["id"], amount, obj["currency"], deal_id, milestone_key, fees)


def _fees(transaction: Any) -> Fees | None:
    """The fee and net of an expanded balance transaction (an id or None says nothing)."""
    if not isinstance(transaction, dict):
        return None
    return Fees(transaction["fee"], transaction["net"], transaction["currency"])


def _charge_money(charge: dict[str, Any], transaction: Any) -> Money | None:
    """A successful charge, keyed by its payment intent as the ledger keys it: a charge once
    captured, with its balance transaction's fee and net; an authorization until then."""
    if charge["status"] != "succeeded":
        return None
    keyed = {**charge, "id": charge.get("payment_intent") or charge["id"]}
    if charge["captured"]:
        return _money("charge", keyed, charge["amount_captured"], _fees(transaction))
    return _money("authorization", keyed, charge["amount"])


def _refund_money(refund: dict[str, Any]) -> Money | None:
    if refund["status"] in ("failed", "canceled"):
        return None
    return replace(
        _money("refund", refund, refund["amount"]), payment_intent=refund.get("payment_intent")
    )


def _transfer_money(transfer: dict[str, Any]) -> Money:
    return _money("transfer", transfer, transfer["amount"])


def _transaction_money(transaction: dict[str, Any]) -> Money | None:
    """The money object a balance transaction moved (its expanded source), if it is one the
    ledger keeps."""
    source, type = transaction["source"], transaction["type"]
    if not isinstance(source, dict):
        return None
    if type in CHARGE_TRANSACTIONS and source["object"] == "charge":
        return _charge_money(source, transaction)
    if type in REFUND_TRANSACTIONS and source["object"] == "refund":
        return _refund_money(source)
    if type == "transfer" and source["object"] == "transfer":
        return _transfer_money(source)
    if type == "transfer_refund" and source["object"] == "transfer_reversal":
        return _money("transfer_reversal", source, source["amount"])
    return None


class StripeSide:
    """Reads money objects from Stripe: listed for a period, or one by id."""

    def __init__(self, client: stripe.StripeClient, *, page_size: int = 100) -> None:
        self._v1 = client.v1
        self._page_size = page_size

    async def listed(self, since: datetime | None, until: datetime | None) -> AsyncIterator[Money]:
        """Every money object of [since, until), once each: the charges (with their balance
        transactions), refunds and transfers created in the period, and the sources of the
        balance transactions created in it."""
        created: dict[str, int] = {}
        if since:
            created["gte"] = int(since.timestamp())
        if until:
            created["lt"] = int(until.timestamp())
        sweeps: list[tuple[Any, list[str], Callable[[dict[str, Any]], Money | None]]] = [
            (self._v1.charges.list_async, ["data.balance_transaction"],
             lambda charge: _charge_money(charge, charge["balance_transaction"])),
            (self._v1.refunds.list_async, [], _refund_money),
            (self._v1.transfers.list_async, [], _transfer_money),
            (self._v1.balance_transactions.list_async, ["data.source"], _transaction_money),
        ]  # fmt: skip
        seen: set[tuple[str, str]] = set()
        period = {"created": created} if created else {}
        for list_call, expand, to_money in sweeps:
            expanded = {"expand": expand} if expand else {}
            page = await list_call({"limit": self._page_size, **period, **expanded})
            async for item in page.auto_paging_iter():
                money = to_money(item.to_dict())
                if money is not None and (money.kind, money.stripe_id) not in seen:
                    seen.add((money.kind, money.stripe_id))
                    yield money

    async def by_id(
        self, kind: str, stripe_id: str, *, transfer: str | None = None
    ) -> Money | None:
        """The object the ledger names, as Stripe has it now; None when Stripe does not know it.
        A transfer reversal is read from its `transfer`, which lists it."""
        try:
            if kind in ("charge", "authorization"):
                intent = (
                    await self._v1.payment_intents.retrieve_async(
                        stripe_id, {"expand": ["latest_charge.balance_transaction"]}
                    )
                ).to_dict()
                if kind == "authorization":
                    return _money(kind, intent, intent["amount"])
                if intent["status"] != "succeeded":
                    return None
                charge = intent["latest_charge"]
                return _money(
                    kind, intent, intent["amount_received"], _fees(charge["balance_transaction"])
                )
            if kind == "refund":
                return _refund_money((await self._v1.refunds.retrieve_async(stripe_id)).to_dict())
            if kind == "transfer_reversal":
                return await self._reversal(stripe_id, transfer)
            return _transfer_money((await self._v1.transfers.retrieve_async(stripe_id)).to_dict())
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise

    async def _reversal(self, reversal_id: str, transfer_id: str | None) -> Money | None:
        if transfer_id is None:
            return None
        transfer = (await self._v1.transfers.retrieve_async(transfer_id)).to_dict()
        reversal = next((r for r in transfer["reversals"]["data"] if r["id"] == reversal_id), None)
        return (
            None if reversal is None else _money("transfer_reversal", reversal, reversal["amount"])
        )

    async def intent_deal(self, intent_id: str) -> tuple[str | None, str | None]:
        """(deal_id, milestone_key) of a payment intent, for refunds that only name their intent."""
        meta = _metadata((await self._v1.payment_intents.retrieve_async(intent_id)).to_dict())
        return meta.get("deal_id"), meta.get("milestone_key")
