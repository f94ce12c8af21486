"""What the sandbox does with money: Checkout Sessions, payment intents, charges, refunds,
transfers and disputes, each change recorded as a Stripe event and, where money moved, in the
money log.

Every method here is synchronous and finishes before the event loop runs anything else, so an
operation and its idempotency record can never interleave with another request. The parts: `core`
(store, clock, events, balance), `intents`, `checkout` (on top of intents) and `money_out`.
"""

from __future__ import annotations

from typing import Any

from stripe_sandbox.checkout import CheckoutSessions
from stripe_sandbox.core import in_range
from stripe_sandbox.money_out import MoneyOut
from stripe_sandbox.objects import Obj

#: Card authorizations lapse after about seven days; Stripe then cancels the payment intent.
AUTHORIZATION_LIFETIME = 7 * 86400


class Sandbox(CheckoutSessions, MoneyOut):
    """The whole engine: sessions, payment intents and money out, with the clock's sweep and the
    event list."""

    def sweep(self) -> dict[str, list[str]]:
        """Expire sessions past `expires_at` and lapse authorizations older than seven days."""
        now = self.now()
        expired, lapsed = [], []
        for obj in list(self.state.objects.values()):
            if (
                obj["object"] == "checkout.session"
                and obj["status"] == "open"
                and obj["expires_at"] <= now
            ):
                self._expire_session(obj)
                expired.append(obj["id"])
            elif (
                obj["object"] == "payment_intent"
                and obj["status"] == "requires_capture"
                and obj["_authorized_at"] is not None
                and obj["_authorized_at"] + AUTHORIZATION_LIFETIME <= now
            ):
                self._cancel_intent(obj, "automatic")
                lapsed.append(obj["id"])
        return {"expired_sessions": expired, "lapsed_authorizations": lapsed}

    def advance_clock(self, seconds: int) -> dict[str, Any]:
        self.state.clock_offset += seconds
        return {"now": self.now(), **self.sweep()}

    def events(self, filters: dict[str, Any]) -> list[Obj]:
        """Events, newest first; `type` may end in `*` as in Stripe (`checkout.session.*`)."""
        wanted = filters.get("types") or ([filters["type"]] if "type" in filters else [])
        found = []
        for event_id in reversed(self.state.event_ids):
            event = self.state.objects[event_id]
            if wanted and not any(_type_matches(event["type"], pattern) for pattern in wanted):
                continue
            if not in_range(event["created"], filters.get("created")):
                continue
            found.append(event)
        return found


def _type_matches(event_type: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern
