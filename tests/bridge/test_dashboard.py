"""The dashboard's door: an operator's token signs a browser in, nothing else does.

The figures on the dashboard are checked against real deals in test_reports_scenario.py; here
the ledger is empty and the subject is who gets in and how.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from bridge.dashboard import SESSION_COOKIE
from tests.bridge_support import ADMIN_BEARER, ADMIN_TOKEN, bridge_settings, running_bridge
from tests.chromium import chromium


async def test_truth_api_needs_the_admin_bearer_token(bridge_url: str) -> None:
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        missing = await http.get("/api/reports/truth")
        wrong = await http.get(
            "/api/reports/truth", headers={"Authorization": "Bearer adm_wrong-wrong-wrong"}
        )
        right = await http.get("/api/reports/truth", headers=ADMIN_BEARER)
        bad_mode = await http.get("/api/reports/truth", params={"mode": "monopoly"}, headers=ADMIN_BEARER)
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error"]["field"] == "Authorization"
    assert right.status_code == 200
    body = right.json()
    assert body["money"] == {} and body["revenue_by_month"] == {}
    assert body["pipeline"]["label"].startswith("PROJECTED")
    assert bad_mode.status_code == 422 and bad_mode.json()["error"]["field"] == "mode"


async def test_dashboard_takes_bearer_or_session_never_a_forged_cookie(bridge_url: str) -> None:
    async with httpx.AsyncClient(
        base_url=bridge_url, cookies={SESSION_COOKIE: ADMIN_TOKEN}
    ) as http:
        forged = await http.get("/dashboard")
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        anonymous = await http.get("/dashboard")
        bearer = await http.get("/dashboard", headers=ADMIN_BEARER)
        refused = await http.post("/dashboard/login", data={"token": "adm_guess-guess-guess-guess"})
        accepted = await http.post("/dashboard/login", data={"token": ADMIN_TOKEN})
    assert anonymous.status_code == 401 and 'action="/dashboard/login"' in anonymous.text
    assert forged.status_code == 401
    assert bearer.status_code == 200 and 'id="funnel"' in bearer.text
    assert refused.status_code == 401 and "no operator&#39;s token" in refused.text
    assert SESSION_COOKIE not in refused.cookies
    assert accepted.status_code == 303
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert ADMIN_TOKEN not in cookie


async def test_a_browser_signs_in_sees_the_page_and_signs_out(bridge_url: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{bridge_url}/dashboard")
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#funnel svg")
        assert await page.text_content("#stripe-mode") == "unconfigured"
        assert "PROJECTED" in (await page.text_content("#pipeline") or "")
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it

        await page.goto(f"{bridge_url}/dashboard?since=not-a-day")
        assert "since:" in (await page.text_content("#filter-error") or "")

        await page.click("text=Sign out")
        await page.wait_for_selector("#token")


async def test_rotating_the_admin_token_ends_sessions(
    db_pool: asyncpg.Pool, database_url: str, dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    first = bridge_settings(tmp_path, database_url)
    rotated = bridge_settings(
        tmp_path, database_url, DEALFLOW_ADMIN_TOKEN="adm_" + secrets.token_urlsafe(32)
    )
    async with (
        running_bridge(first, db_pool, dev_server_env.client) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        await http.post("/dashboard/login", data={"token": ADMIN_TOKEN})
        assert (await http.get("/dashboard")).status_code == 200
        session = http.cookies[SESSION_COOKIE]
    async with (
        running_bridge(rotated, db_pool, dev_server_env.client) as url,
        httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: session}) as http,
    ):
        assert (await http.get("/dashboard")).status_code == 401


GRACE, LINUS = "opg_" + secrets.token_urlsafe(32), "opl_" + secrets.token_urlsafe(32)


async def test_each_named_operator_signs_in_as_themselves_until_removed(
    db_pool: asyncpg.Pool, database_url: str, dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    both = bridge_settings(tmp_path, database_url, DEALFLOW_OPERATORS=f"grace:{GRACE}, linus:{LINUS}")
    linus_only = bridge_settings(tmp_path, database_url, DEALFLOW_OPERATORS=f"linus:{LINUS}")
    async with (
        running_bridge(both, db_pool, dev_server_env.client) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert (await http.post("/dashboard/login", data={"token": GRACE})).status_code == 303
        page = await http.get("/dashboard")
        assert page.status_code == 200 and "Signed in as grace" in page.text
        session = http.cookies[SESSION_COOKIE]
        assert session.startswith("grace:") and GRACE not in session
        as_linus = await http.get("/dashboard", headers={"Authorization": f"Bearer {LINUS}"})
        assert "Signed in as linus" in as_linus.text
        # Grace's signed session does not pass for Linus's.
        http.cookies.set(SESSION_COOKIE, "linus:" + session.partition(":")[2])
        assert (await http.get("/dashboard")).status_code == 401
        http.cookies.set(SESSION_COOKIE, session)
        assert "Signed in as admin" in (await http.get("/dashboard", headers=ADMIN_BEARER)).text
    async with (
        running_bridge(linus_only, db_pool, dev_server_env.client) as url,
        httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: session}) as http,
    ):
        assert (await http.get("/dashboard")).status_code == 401
        assert (await http.get("/api/deals", headers={"Authorization": f"Bearer {GRACE}"})).status_code == 401
