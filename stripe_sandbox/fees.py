"""What the sandbox charges for a payment, as Stripe's pricing does: for a card, a percentage of
the captured amount plus a fixed amount per charge, in the charge's currency; for a bank debit,
Stripe's debit rate (end of the module).

USD is Stripe's standard US card pricing, 2.9 % + 30 cents. The other currencies use Stripe's
published standard rate for domestic cards of that currency's home market (EUR: EEA cards,
GBP: UK cards, ...): they are the sandbox's documented test-mode rates, not a quote, and the
sandbox never converts currencies, so fee and net are in the charge's currency. The percentage
is rounded to the nearest minor unit, a half unit up, as Stripe rounds its fees
(https://support.stripe.com/questions/rounding-rules-for-stripe-fees).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CardPricing:
    #: Hundredths of a percent of the amount (290: 2.9 %).
    basis_points: int
    #: Minor units per charge.
    fixed: int

    def fee(self, amount: int) -> int:
        """The fee on `amount` minor units: the percentage rounded half up, plus the fixed part."""
        return (amount * self.basis_points + 5_000) // 10_000 + self.fixed


CARD_PRICING = {
    "usd": CardPricing(290, 30),
    "eur": CardPricing(150, 25),
    "gbp": CardPricing(150, 20),
    "cad": CardPricing(290, 30),
    "aud": CardPricing(170, 30),
    "nzd": CardPricing(265, 30),
    "chf": CardPricing(290, 30),
    "sek": CardPricing(150, 180),
    "nok": CardPricing(240, 200),
    "dkk": CardPricing(150, 180),
    "jpy": CardPricing(360, 0),
}


def card_fee(amount: int, currency: str) -> int:
    return CARD_PRICING[currency].fee(amount)


#: Bank debits: ACH Direct Debit is 0.8 % capped at USD 5.00, SEPA Direct Debit EUR 0.35 flat
#: (Stripe's published standard rates).
ACH_PRICING = CardPricing(80, 0)
ACH_FEE_CAP = 500
SEPA_FEE = 35


def payment_fee(amount: int, currency: str, method: str) -> int:
    """Stripe's fee on a captured payment of `method` (`card`, `us_bank_account`, `sepa_debit`)."""
    if method == "us_bank_account":
        return min(ACH_PRICING.fee(amount), ACH_FEE_CAP)
    if method == "sepa_debit":
        return SEPA_FEE
    return card_fee(amount, currency)
