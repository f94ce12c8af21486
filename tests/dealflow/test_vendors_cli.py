"""`dealflow vendors ...` as an operator runs them, on real Postgres and the Stripe sandbox; and
`dealflow start` refusing a spec whose vendor is unknown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import asyncpg

from dealflow.vendors import authenticate
from tests.cli_support import cli_environment, run_dealflow
from tests.stripe_contract.harness import running_sandbox

KEY = re.compile(r"dfv_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def cli_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    return cli_environment(
        DEALFLOW_HOME=str(tmp_path / "home"),
        DATABASE_URL=database_url,
        DEALFLOW_PUBLIC_URL="http://127.0.0.1:8000",
        COLUMNS="200",  # the table of `vendors list`, one row a line
        **extra,
    )


async def test_vendors_are_added_listed_rotated_revoked_and_onboarded(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool
) -> None:
    async with running_sandbox() as sandbox:
        env = cli_env(tmp_path, database_url, STRIPE_API_KEY=sandbox.api_key, STRIPE_API_BASE=sandbox.url)
        added = await run_dealflow(env, "vendors", "add", "--name", "Vera Vendor", "--email", "vera@vendor.example")
        assert added.returncode == 0, added.stderr
        vendor_id = re.search(r"vendor (ven_[a-z0-9]+)", added.stdout).group(1)
        first_key = KEY.search(added.stdout).group(0)
        assert f"http://127.0.0.1:8000/vendor/{vendor_id}?token=" in added.stdout
        assert await authenticate(db_pool, first_key) == vendor_id

        again = await run_dealflow(env, "vendors", "add", "--name", "Vera Again", "--email", "Vera@Vendor.example")
        assert again.returncode == 2 and "email: another vendor already has this email" in again.stderr
        bad = await run_dealflow(env, "vendors", "add", "--name", "Nobody", "--email", "not-an-email")
        assert bad.returncode == 2 and "--email:" in bad.stderr

        listed = json.loads((await run_dealflow(env, "vendors", "list", "--json")).stdout)
        assert [(v["vendor_id"], v["active_keys"], v["last_used_at"] is not None) for v in listed] == [(vendor_id, 1, True)]
        assert vendor_id in (await run_dealflow(env, "vendors", "list")).stdout

        rotated = await run_dealflow(env, "vendors", "rotate-key", vendor_id)
        second_key = KEY.search(rotated.stdout).group(0)
        assert await authenticate(db_pool, first_key) is None
        assert await authenticate(db_pool, second_key) == vendor_id
        revoked = await run_dealflow(env, "vendors", "revoke", vendor_id)
        assert "revoked 1 key(s)" in revoked.stdout and await authenticate(db_pool, second_key) is None
        missing = await run_dealflow(env, "vendors", "revoke", "ven_nobody")
        assert missing.returncode == 1 and "no vendor 'ven_nobody'" in missing.stderr
        page = await run_dealflow(env, "vendors", "page", vendor_id)
        assert page.stdout.startswith(f"http://127.0.0.1:8000/vendor/{vendor_id}?token=")

        onboarded = await run_dealflow(env, "vendors", "onboard", vendor_id)
        assert onboarded.returncode == 0, onboarded.stderr
        account_id = re.search(r"Stripe account (acct_\w+)", onboarded.stdout).group(1)
        assert f"{sandbox.url}/connect/onboarding/" in onboarded.stdout
        account = await sandbox.client().v1.accounts.retrieve_async(account_id)
        assert account.email == "vera@vendor.example" and account.capabilities.transfers == "inactive"
        assert await db_pool.fetchval("SELECT stripe_account FROM vendors WHERE vendor_id = $1", vendor_id) == account_id
        twice = await run_dealflow(env, "vendors", "onboard", vendor_id)  # a new link, the same account
        assert f"Stripe account {account_id}" in twice.stdout


async def test_start_refuses_a_spec_whose_vendor_is_unknown(tmp_path: Path, database_url: str) -> None:
    spec = json.loads((Path(__file__).parents[2] / "examples" / "data-audit.json").read_text())
    spec["vendor"]["vendor_id"] = "ven_nobody"
    path = tmp_path / "deal.json"
    path.write_text(json.dumps(spec))
    started = await run_dealflow(cli_env(tmp_path, database_url), "start", str(path))
    assert started.returncode == 2
    assert "vendor.vendor_id: no vendor 'ven_nobody'" in started.stderr
