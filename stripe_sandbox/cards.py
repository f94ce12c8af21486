"""Stripe's test cards and test payment methods, and what each one does when charged.

The hosted checkout page takes card numbers; the PaymentIntent API takes Stripe's test payment
method ids (`pm_card_visa`, ...). Both lead to the same outcomes, as in Stripe's test mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from stripe_sandbox.failures import Failure


@dataclass(frozen=True)
class Card:
    brand: str
    last4: str
    #: None: the charge succeeds.
    failure: Failure | None = None


_DECLINE = "Your card was declined."
_NO_FUNDS = "Your card has insufficient funds."
_WRONG_CVC = "Your card's security code is incorrect."

#: Card number -> behaviour, from https://docs.stripe.com/testing.
TEST_CARDS: dict[str, Card] = {
    "4242424242424242": Card("visa", "4242"),
    "5555555555554444": Card("mastercard", "4444"),
    "4000000000000002": Card("visa", "0002", Failure("card_declined", _DECLINE, "generic_decline")),
    "4000000000009995": Card(
        "visa", "9995", Failure("card_declined", _NO_FUNDS, "insufficient_funds")
    ),
    "4000000000000069": Card(
        "visa", "0069", Failure("expired_card", "Your card has expired.", "expired_card")
    ),
    "4000000000000127": Card("visa", "0127", Failure("incorrect_cvc", _WRONG_CVC, "incorrect_cvc")),
}

#: Stripe's test PaymentMethod ids -> the card they stand for.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
}


class InvalidCardNumber(ValueError):
    """Not a card number at all (wrong length or checksum)."""


def normalize(number: str) -> str:
    return "".join(ch for ch in number if not ch.isspace() and ch != "-")


def luhn_valid(number: str) -> bool:
    digits = [int(ch) for ch in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def card_for_number(number: str) -> Card:
    """The behaviour of a typed card number; a real (non-test) card is declined as in test mode."""
    digits = normalize(number)
    if digits in TEST_CARDS:
        return TEST_CARDS[digits]
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        raise InvalidCardNumber("Your card number is invalid.")
    return Card(
        "unknown",
        digits[-4:],
        Failure(
            "card_declined",
            "Your card was declined. Your request was in test mode, but used a non test card. "
            "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
            "test_mode_live_card",
        ),
    )


def card_for_payment_method(payment_method: str) -> Card | None:
    number = TEST_PAYMENT_METHODS.get(payment_method)
    return TEST_CARDS[number] if number else None
