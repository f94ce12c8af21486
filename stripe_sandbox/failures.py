"""How a test card or test bank account refuses a payment, in Stripe's words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    #: Stripe's error code (`card_declined`, `account_closed`, ...) and the message it sends.
    code: str
    message: str
    #: A card issuer's reason (`insufficient_funds`, ...); a bank debit's failure has none.
    decline_code: str | None = None

    def error(self) -> dict[str, str | None]:
        """The `code`, `decline_code` and `message` of Stripe's error hash for this failure."""
        return {"code": self.code, "decline_code": self.decline_code, "message": self.message}
