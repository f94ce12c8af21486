"""The `/_sandbox/` controls answer only callers with the control token; Stripe's API and the
hosted checkout stay as open as Stripe's are."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from dealflow.serve import serve_app
from stripe_sandbox import SandboxConfig, create_app
from stripe_sandbox.control import SandboxControl, SandboxControlError

TOKEN = "sbx_" + "Qm4tZ8rW1xK7pL0vN3cJ6yH9bF2dS5gA"


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    async with serve_app(create_app(SandboxConfig(control_token=TOKEN))) as url:
        yield url


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_sandbox/checkout/sessions/cs_test_1/pay"),
        ("POST", "/_sandbox/disputes"),
        ("POST", "/_sandbox/clock/advance"),
        ("PUT", "/_sandbox/faults"),
        ("GET", "/_sandbox/webhook"),
        ("PUT", "/_sandbox/webhook"),
        ("GET", "/_sandbox/money"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}"])
async def test_controls_refuse_a_caller_without_the_token(
    sandbox_url: str, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        answer = await http.request(
            method, path, headers=headers, json={"url": "http://evil.test/"}
        )
        webhook = await http.get("/_sandbox/webhook", headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 401
    assert "Authorization: Bearer <control token>" in answer.json()["error"]["message"]
    assert webhook.json()["url"] is None  # nothing changed


async def test_the_token_opens_the_controls_and_the_description_is_public(sandbox_url: str) -> None:
    async with SandboxControl(sandbox_url, token=TOKEN) as control:
        before = await control.now()
        assert (await control.advance_clock(3600))["now"] >= before + 3600
    async with SandboxControl(sandbox_url, token="sbx_not-the-token-0123456789") as wrong:
        with pytest.raises(SandboxControlError, match="401"):
            await wrong.money()
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        description = (await http.get("/_sandbox")).json()
    assert description["controls_need"] == "Authorization: Bearer <control token>"


def test_a_sandbox_without_a_configured_token_makes_its_own() -> None:
    first, second = create_app(SandboxConfig()), create_app(SandboxConfig())
    assert len(first.state.control_token) >= 32
    assert first.state.control_token != second.state.control_token
    with pytest.raises(ValueError, match="control_token must be at least 16 characters"):
        SandboxConfig(control_token="short")
