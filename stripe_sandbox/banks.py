"""Stripe's test bank accounts for bank debits, and what each does once its debit settles.

ACH Direct Debit (`us_bank_account`) takes an account number, SEPA Direct Debit (`sepa_debit`)
an IBAN, as on Stripe's test page (https://docs.stripe.com/testing#non-card-payments). A debit
is *processing* first; the account decides whether it then succeeds or fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from stripe_sandbox.failures import Failure

#: The one currency each bank debit collects.
DEBIT_CURRENCY = {"us_bank_account": "usd", "sepa_debit": "eur"}
#: How long a debit stays processing on the sandbox clock before it settles by itself
#: (Stripe: about 4 business days for ACH, 5 to 6 for SEPA).
DEBIT_SECONDS = {"us_bank_account": 4 * 86_400, "sepa_debit": 5 * 86_400}


@dataclass(frozen=True)
class BankAccount:
    method: str
    last4: str
    #: None: the debit succeeds.
    failure: Failure | None = None


TEST_BANK_ACCOUNTS: dict[tuple[str, str], BankAccount] = {
    ("us_bank_account", "000123456789"): BankAccount("us_bank_account", "6789"),
    ("us_bank_account", "000111111113"): BankAccount(
        "us_bank_account",
        "1113",
        Failure("account_closed", "The customer's bank account has been closed."),
    ),
    ("us_bank_account", "000222222227"): BankAccount(
        "us_bank_account",
        "2227",
        Failure(
            "insufficient_funds",
            "The customer's account has insufficient funds to cover this payment.",
        ),
    ),
    ("sepa_debit", "DE89370400440532013000"): BankAccount("sepa_debit", "3000"),
    ("sepa_debit", "AT611904300234573201"): BankAccount("sepa_debit", "3201"),
    ("sepa_debit", "DE62370400440532013001"): BankAccount(
        "sepa_debit",
        "3001",
        Failure(
            "generic_could_not_process",
            "The payment could not be processed by the customer's bank.",
        ),
    ),
}


class InvalidBankAccount(ValueError):
    """Not one of the test accounts of that method."""


def bank_account_for(method: str, number: str) -> BankAccount:
    account = TEST_BANK_ACCOUNTS.get((method, "".join(number.split()).upper()))
    if account is None:
        what = "IBAN" if method == "sepa_debit" else "account number"
        raise InvalidBankAccount(
            f"Your {what} is not a test {what} in test mode. For a list of valid test "
            "accounts, visit: https://docs.stripe.com/testing#non-card-payments."
        )
    return account
