"""What every part of the sandbox's engine stands on: the store, the clock, the request that
caused a change, events, the money log and the available balance, and rendering with `expand`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from stripe_sandbox import objects, payment_objects
from stripe_sandbox.errors import (
    invalid_request,
    resource_missing,
)
from stripe_sandbox.indexes import Listing
from stripe_sandbox.objects import Obj, public
from stripe_sandbox.store import Store, new_id

CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)

#: Money log kinds and their effect on the balance (card money is pending at first: indexes).
_BALANCE_EFFECT = {
    "charge": 1,
    "capture": 1,
    "refund": -1,
    "transfer": -1,
    "transfer_reversal": 1,
    "account_payout": 0,
    "stripe_fee": -1,
    "dispute_withdrawn": -1,
    "dispute_reinstated": 1,
    "authorization": 0,
    "authorization_released": 0,
}

#: Which fields of which object may be expanded (`expand[]=payment_intent`); an expanded
#: object's own fields may be expanded in turn (`expand[]=latest_charge.balance_transaction`).
EXPANDABLE = {
    "checkout.session": ("payment_intent", "customer", "line_items"),
    "payment_intent": ("latest_charge", "customer"),
    "refund": ("balance_transaction", "charge", "payment_intent"),
    "charge": ("balance_transaction", "customer", "payment_intent"),
    "dispute": ("charge", "payment_intent"),
    "transfer": ("balance_transaction", "destination"),
    "transfer_reversal": ("balance_transaction", "transfer"),
    "balance_transaction": ("source",),
    "event": (),
}


@dataclass(frozen=True)
class RequestContext:
    """The API request that caused a change, named on its events as Stripe does."""

    request_id: str | None = None
    idempotency_key: str | None = None


class SandboxCore:
    def __init__(self, store: Store, on_event: Callable[[Obj], None]) -> None:
        self.store = store
        self.state = store.state
        self._on_event = on_event
        self._request = RequestContext()

    def now(self) -> int:
        return self.state.now()

    @contextmanager
    def request(self, request_id: str | None, idempotency_key: str | None) -> Iterator[None]:
        self._request = RequestContext(request_id, idempotency_key)
        try:
            yield
        finally:
            self._request = RequestContext()

    def get(self, object_id: str, kind: str, param: str) -> Obj:
        obj = self.state.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise resource_missing(kind.replace(".", " ").replace("_", " "), object_id, param)
        return obj

    def _emit(self, type: str, obj: Obj, previous: Obj | None = None) -> None:
        """Store the changed `obj` and announce the change with an event."""
        self.store.put(obj)
        event = objects.event(
            id=new_id("evt_"),
            type=type,
            created=self.now(),
            obj=public(obj),
            request_id=self._request.request_id,
            idempotency_key=self._request.idempotency_key,
            previous_attributes=previous,
            pending_webhooks=1 if self.state.webhook_url else 0,
        )
        self.store.put(event)
        self._on_event(event)

    def _record_money(self, kind: str, obj: Obj, amount: int, **detail: Any) -> None:
        self.store.record_money(
            {
                "kind": kind,
                "object_id": obj["id"],
                "amount": amount,
                "currency": obj["currency"],
                "created": self.now(),
                "metadata": dict(obj.get("metadata") or {}),
                **detail,
            }
        )

    def available_balance(self, currency: str) -> int:
        """What a transfer without a source transaction may take: the balance less card money
        still pending."""
        return self.balance(currency) - self.pending_balance(currency)

    def balance(self, currency: str) -> int:
        totals = self.store.indexes.money_totals
        return sum(effect * totals[currency, kind] for kind, effect in _BALANCE_EFFECT.items())

    def pending_balance(self, currency: str) -> int:
        """Card money not available yet; refunds and transfers made meanwhile take from it
        once the available balance is used up, as Stripe's do."""
        pending = self.store.indexes.pending(currency, self.now())
        return min(pending, max(self.balance(currency), 0))

    def listing(
        self, kind: str, filters: dict[str, Any], matches: Callable[[Obj], bool] = lambda _: True
    ) -> Listing:
        """Objects of `kind` that `matches`, newest first, within the `created` filter."""
        return Listing.of(
            self.state.objects, self.store.indexes.timelines[kind], matches, filters.get("created")
        )

    def render(self, obj: Obj, expand: list[str] | None = None) -> Obj:
        """The object as Stripe answers it, with the requested fields expanded (a dotted path
        expands a field of the expanded object)."""
        return self._expanded(obj, expand or [], prefix="")

    def _expanded(self, obj: Obj, paths: list[str], prefix: str) -> Obj:
        result = public(obj)
        nested: dict[str, list[str]] = {}
        for path in paths:
            field, _, rest = path.partition(".")
            if field not in EXPANDABLE.get(obj["object"], ()):
                raise invalid_request(
                    f"This property cannot be expanded ({prefix}{path}).", param="expand"
                )
            nested.setdefault(field, []).extend([rest] if rest else [])
        for field, rest in nested.items():
            if field == "line_items":  # includable: Stripe sends it only when asked
                result[field] = payment_objects.line_items(obj)
                continue
            value = result.get(field)
            if isinstance(value, str) and value in self.state.objects:
                result[field] = self._expanded(self.state.objects[value], rest, f"{prefix}{field}.")
        return result


def amount_up_to(
    params: dict[str, Any],
    param: str,
    limit: int,
    too_much: Callable[[int], str],
    *,
    code: str | None = None,
) -> int:
    """`params[param]`, or all of `limit` when it is not given; more than `limit` is refused
    with the message `too_much(amount)`, naming the parameter."""
    amount = params.get(param, limit)
    if amount > limit:
        raise invalid_request(too_much(amount), param=param, code=code)
    return amount
