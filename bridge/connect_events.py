"""`account.updated`: Stripe says what a vendor's connected account can do now; the bridge keeps
it on the vendor's record (their page and `dealflow vendors list` show it). The deal itself asks
Stripe before each payout, so this is what people see, never what moves money."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from dealflow.connect import payee_account
from dealflow.vendors import record_account

ACCOUNT_UPDATED = "account.updated"
log = logging.getLogger("dealflow.bridge.connect")


async def record_account_event(pool: asyncpg.Pool, event: dict[str, Any]) -> bool:
    """Keep the account's readiness on its vendor; False when no vendor has the account or the
    event does not hold an account (it stays in the inbox either way)."""
    try:
        account = payee_account(event["data"]["object"])
        seen_at = datetime.fromtimestamp(int(event["created"]), UTC)
    except (KeyError, TypeError, ValueError, ValidationError) as error:
        log.warning("account.updated %s holds no account: %s", event.get("id"), error)
        return False
    return await record_account(pool, account, seen_at)
