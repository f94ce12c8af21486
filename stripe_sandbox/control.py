"""A small async client for `/_sandbox/`, for tests and the demo: pay sessions with test cards
or bank accounts, settle bank debits, dispute charges, register connected accounts, move the
clock, inject faults, and read the money log."""

from __future__ import annotations

from typing import Any, Self

import httpx

TEST_CARD_PAYS = "4242424242424242"
TEST_CARD_DECLINED = "4000000000000002"
TEST_CARD_INSUFFICIENT_FUNDS = "4000000000009995"
TEST_ACH_PAYS = "000123456789"
TEST_ACH_FAILS = "000111111113"
TEST_IBAN_PAYS = "DE89370400440532013000"
TEST_IBAN_FAILS = "DE62370400440532013001"


class SandboxControlError(RuntimeError):
    def __init__(self, status_code: int, body: Any) -> None:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"sandbox answered {status_code}: {message}")
        self.status_code = status_code
        self.body = body


class SandboxControl:
    def __init__(self, base_url: str, *, token: str, timeout: float = 10.0) -> None:
        """`token` is the sandbox's control token (SandboxConfig.control_token)."""
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/_sandbox",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, path, json=body)
        data = response.json()
        if response.status_code >= 400:
            raise SandboxControlError(response.status_code, data)
        return data

    async def pay(self, session_id: str, card: str = TEST_CARD_PAYS) -> dict[str, Any]:
        """Pay a Checkout Session as the hosted page would; `outcome` is paid, authorized or declined."""
        return await self._call("POST", f"/checkout/sessions/{session_id}/pay", {"card": card})

    async def pay_by_bank(
        self, session_id: str, method: str = "us_bank_account", account: str = TEST_ACH_PAYS
    ) -> dict[str, Any]:
        """Pay a Checkout Session by bank debit; `outcome` is processing until it settles."""
        body = {"method": method, "account": account}
        return await self._call("POST", f"/checkout/sessions/{session_id}/pay_by_bank", body)

    async def settle_debit(self, payment_intent: str, outcome: str | None = None) -> dict[str, Any]:
        """Settle a processing bank debit now (as its account decides, or `outcome`)."""
        return await self._call(
            "POST", f"/payment_intents/{payment_intent}/settle", {"outcome": outcome}
        )

    async def open_dispute(
        self,
        *,
        payment_intent: str | None = None,
        charge: str | None = None,
        reason: str = "fraudulent",
        amount: int | None = None,
    ) -> dict[str, Any]:
        body = {
            "payment_intent": payment_intent,
            "charge": charge,
            "reason": reason,
            "amount": amount,
        }
        return await self._call("POST", "/disputes", body)

    async def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        return await self._call("POST", f"/disputes/{dispute_id}/close", {"status": status})

    async def create_account(
        self, account_id: str | None = None, *, email: str | None = None
    ) -> dict[str, Any]:
        """A connected account, onboarded, under `account_id` (a vendor's known `acct_`) or a
        new id; registering an existing id again returns it unchanged."""
        return await self._call("POST", "/accounts", {"id": account_id, "email": email})

    async def onboard_account(self, account: str) -> dict[str, Any]:
        """Complete an account's onboarding, as its hosted page does (sends `account.updated`)."""
        return await self._call("POST", f"/accounts/{account}/onboard")

    async def pay_out_account(self, account: str, amount: int, currency: str = "usd") -> int:
        """The vendor pays their connected account's money out to their bank; what is left."""
        body = {"amount": amount, "currency": currency}
        return (await self._call("POST", f"/accounts/{account}/payout", body))["left"]

    async def now(self) -> int:
        return (await self._call("GET", "/clock"))["now"]

    async def advance_clock(self, seconds: int) -> dict[str, Any]:
        return await self._call("POST", "/clock/advance", {"seconds": seconds})

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        return await self._call("PUT", "/faults", faults)

    async def reset_faults(self) -> dict[str, Any]:
        return await self._call("DELETE", "/faults")

    async def faults(self) -> dict[str, Any]:
        return await self._call("GET", "/faults")

    async def set_webhook(self, url: str | None, secret: str | None = None) -> dict[str, Any]:
        return await self._call("PUT", "/webhook", {"url": url, "secret": secret})

    async def webhook(self) -> dict[str, Any]:
        return await self._call("GET", "/webhook")

    async def deliveries(self) -> dict[str, Any]:
        return await self._call("GET", "/webhook/deliveries")

    async def retry_webhooks_now(self) -> int:
        return (await self._call("POST", "/webhook/retry-now"))["rescheduled"]

    async def money(self) -> dict[str, Any]:
        """Every recorded movement (`movements`), sums per currency and kind, and the balance."""
        return await self._call("GET", "/money")
