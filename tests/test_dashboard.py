"""The dashboard's door: the admin token signs a browser in, nothing else does.

The figures on the dashboard are checked against real deals in test_reports_scenario.py; here
the ledger is empty and the subject is who gets in and how.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from playwright.async_api import async_playwright
from temporalio.testing import WorkflowEnvironment

from bridge.app import create_app
from bridge.dashboard import SESSION_COOKIE
from dealflow.serve import serve_app
from dealflow.settings import Settings

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Bridge:
    url: str
    admin_token: str
    settings: Settings


def bridge_settings(database_url: str, **overrides: str) -> Settings:
    values = {
        "DEALFLOW_ENV": "dev",
        "DATABASE_URL": database_url,
        "DEALFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "DEALFLOW_ADMIN_TOKEN": "adm_" + secrets.token_urlsafe(32),
        "DEALFLOW_VENDOR_TOKEN": "vnd_" + secrets.token_urlsafe(32),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
async def bridge(
    db_pool: asyncpg.Pool, database_url: str, dev_server_env: WorkflowEnvironment
) -> AsyncIterator[Bridge]:
    settings = bridge_settings(database_url)
    app = create_app(settings=settings, pool=db_pool, temporal=dev_server_env.client)
    async with serve_app(app) as url:
        yield Bridge(url, settings.admin_token or "", settings)


async def test_truth_api_needs_the_admin_bearer_token(bridge: Bridge) -> None:
    async with httpx.AsyncClient(base_url=bridge.url) as http:
        missing = await http.get("/api/reports/truth")
        wrong = await http.get(
            "/api/reports/truth", headers={"Authorization": "Bearer adm_not-the-token-at-all"}
        )
        right = await http.get(
            "/api/reports/truth", headers={"Authorization": f"Bearer {bridge.admin_token}"}
        )
        bad_mode = await http.get(
            "/api/reports/truth",
            params={"mode": "monopoly"},
            headers={"Authorization": f"Bearer {bridge.admin_token}"},
        )
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error"]["field"] == "Authorization"
    assert right.status_code == 200
    body = right.json()
    assert body["money"] == {} and body["revenue_by_month"] == {}
    assert body["pipeline"]["label"].startswith("PROJECTED")
    assert bad_mode.status_code == 422 and bad_mode.json()["error"]["field"] == "mode"


async def test_dashboard_takes_bearer_or_session_never_a_forged_cookie(bridge: Bridge) -> None:
    async with httpx.AsyncClient(
        base_url=bridge.url, cookies={SESSION_COOKIE: bridge.admin_token}
    ) as http:
        forged = await http.get("/dashboard")
    async with httpx.AsyncClient(base_url=bridge.url) as http:
        anonymous = await http.get("/dashboard")
        bearer = await http.get(
            "/dashboard", headers={"Authorization": f"Bearer {bridge.admin_token}"}
        )
        refused = await http.post("/dashboard/login", data={"token": "adm_guess-guess-guess-guess"})
        accepted = await http.post("/dashboard/login", data={"token": bridge.admin_token})
    assert anonymous.status_code == 401 and 'action="/dashboard/login"' in anonymous.text
    assert forged.status_code == 401
    assert bearer.status_code == 200 and 'id="funnel"' in bearer.text
    assert refused.status_code == 401 and "not the admin token" in refused.text
    assert SESSION_COOKIE not in refused.cookies
    assert accepted.status_code == 303
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert bridge.admin_token not in cookie


async def test_a_browser_signs_in_sees_the_page_and_signs_out(bridge: Bridge) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{bridge.url}/dashboard")
            await page.fill("#token", bridge.admin_token)
            await page.click("button[type=submit]")
            await page.wait_for_selector("#funnel svg")
            assert await page.text_content("#stripe-mode") == "unconfigured"
            assert "PROJECTED" in (await page.text_content("#pipeline") or "")
            assert await page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it

            await page.goto(f"{bridge.url}/dashboard?since=not-a-day")
            assert "since:" in (await page.text_content("#filter-error") or "")

            await page.click("text=Sign out")
            await page.wait_for_selector("#token")
        finally:
            await browser.close()


async def test_rotating_the_admin_token_ends_sessions(
    db_pool: asyncpg.Pool, database_url: str, dev_server_env: WorkflowEnvironment
) -> None:
    first = bridge_settings(database_url)
    rotated = first.model_copy(update={"admin_token": "adm_" + secrets.token_urlsafe(32)})
    first_app = create_app(settings=first, pool=db_pool, temporal=dev_server_env.client)
    async with serve_app(first_app) as url, httpx.AsyncClient(base_url=url) as http:
        await http.post("/dashboard/login", data={"token": first.admin_token})
        assert (await http.get("/dashboard")).status_code == 200
        session = http.cookies[SESSION_COOKIE]
    rotated_app = create_app(settings=rotated, pool=db_pool, temporal=dev_server_env.client)
    async with (
        serve_app(rotated_app) as url,
        httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: session}) as http,
    ):
        assert (await http.get("/dashboard")).status_code == 401
