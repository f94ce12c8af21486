"""What the sandbox does with money: Checkout Sessions, payment intents, charges, refunds,
transfers and disputes, each change recorded as a Stripe event and, where money moved, in the
money log.

Every method here is synchronous and finishes before the event loop runs anything else, so an
operation and its idempotency record can never interleave with another request. The parts: `core`
(store, clock, events, balance), `balance` (balance transactions and fees), `intents`, `checkout`
(on top of intents), `money_out` and `disputes`.
"""

from __future__ import annotations

from typing import Any

from stripe_sandbox.checkout import CheckoutSessions
from stripe_sandbox.disputes import Disputes
from stripe_sandbox.indexes import Listing
from stripe_sandbox.money_out import MoneyOut

#: Card authorizations lapse after about seven days; Stripe then cancels the payment intent.
AUTHORIZATION_LIFETIME = 7 * 86400


class Sandbox(CheckoutSessions, MoneyOut, Disputes):
    """The whole engine: sessions, payment intents and money out, with the clock's sweep and the
    event list."""

    def sweep(self) -> dict[str, list[str]]:
        """Expire sessions past `expires_at`, lapse authorizations older than seven days, settle
        bank debits whose processing days are over and make pending funds available on their day.

        Only what the indexes say is due is looked at, so a sweep before every request is cheap.
        """
        now = self.now()
        indexes = self.store.indexes
        expired, lapsed = [], []
        for session_id in indexes.open_sessions.pop_due(now):
            session = self.state.objects[session_id]
            if session["status"] == "open":
                self._expire_session(session)
                expired.append(session_id)
        for intent_id in indexes.authorizations.pop_due(now - AUTHORIZATION_LIFETIME):
            intent = self.state.objects[intent_id]
            if intent["status"] == "requires_capture":
                self._cancel_intent(intent, "automatic")
                lapsed.append(intent_id)
        return {
            "expired_sessions": expired,
            "lapsed_authorizations": lapsed,
            "settled_debits": self._settle_due_debits(),
            "available_funds": self._make_funds_available(),
        }

    def advance_clock(self, seconds: int) -> dict[str, Any]:
        self.store.advance_clock(seconds)
        return {"now": self.now(), **self.sweep()}

    def events(self, filters: dict[str, Any]) -> Listing:
        """Events, newest first; `type` may end in `*` as in Stripe (`checkout.session.*`)."""
        wanted = filters.get("types") or ([filters["type"]] if "type" in filters else [])
        return self.listing(
            "event",
            filters,
            lambda event: (
                not wanted or any(_type_matches(event["type"], pattern) for pattern in wanted)
            ),
        )


def _type_matches(event_type: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern
