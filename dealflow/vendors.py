"""Vendors as accounts in Postgres: who they are, their API keys (hashes only), and their
Stripe Connect account's readiness. The CLI and the admin API manage them; the bridge
authenticates vendor keys here; the starter checks that a spec's `vendor.vendor_id` exists."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

import asyncpg
from pydantic import BaseModel, EmailStr

from dealflow.messages import PayeeAccount
from dealflow.models import SingleLineText, Vendor
from dealflow.vendor_keys import new_key, parse_key, secret_matches

#: `last_used_at` moves at most this often per key: a busy vendor is not a write per request.
_LAST_USED_RESOLUTION = "1 minute"


class VendorProblem(ValueError):
    """Bad input about a vendor; `field` names what is wrong. Nothing was changed."""

    def __init__(self, field: str, message: str, *, not_found: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.not_found = not_found


class NewVendor(BaseModel):
    name: SingleLineText
    email: EmailStr
    stripe_account: str | None = Vendor.model_fields["stripe_account"]


class VendorRecord(BaseModel):
    vendor_id: str
    name: str
    email: str
    stripe_account: str | None
    #: Stripe's last word on the account: None until Stripe said anything.
    transfers_active: bool | None
    payouts_enabled: bool | None
    requirements_due: list[str]
    account_seen_at: datetime | None
    created_at: datetime
    active_keys: int
    last_used_at: datetime | None


class IssuedKey(BaseModel):
    """A key as it is shown once; only its hash is kept."""

    vendor_id: str
    key_id: str
    api_key: str


def new_vendor_id() -> str:
    return f"ven_{secrets.token_hex(6)}"


_SELECT = """
    SELECT v.vendor_id, v.name, v.email, v.stripe_account, v.transfers_active, v.payouts_enabled,
           v.requirements_due, v.account_seen_at, v.created_at,
           count(k.key_id) FILTER (WHERE k.revoked_at IS NULL) AS active_keys,
           max(k.last_used_at) AS last_used_at
    FROM vendors v LEFT JOIN vendor_keys k USING (vendor_id)
"""


def _record(row: asyncpg.Record) -> VendorRecord:
    return VendorRecord(**{**dict(row), "requirements_due": json.loads(row["requirements_due"])})


async def list_vendors(pool: asyncpg.Pool) -> list[VendorRecord]:
    rows = await pool.fetch(_SELECT + " GROUP BY v.vendor_id ORDER BY v.created_at, v.vendor_id")
    return [_record(row) for row in rows]


async def get_vendor(pool: asyncpg.Pool | asyncpg.Connection, vendor_id: str) -> VendorRecord:
    row = await pool.fetchrow(_SELECT + " WHERE v.vendor_id = $1 GROUP BY v.vendor_id", vendor_id)
    if row is None:
        raise VendorProblem("vendor_id", f"no vendor '{vendor_id}'", not_found=True)
    return _record(row)


async def _issue_key(conn: asyncpg.Connection, vendor_id: str) -> IssuedKey:
    key = new_key()
    await conn.execute(
        "INSERT INTO vendor_keys (key_id, vendor_id, secret_sha256) VALUES ($1, $2, $3)",
        key.key_id,
        vendor_id,
        key.secret_sha256,
    )
    return IssuedKey(vendor_id=vendor_id, key_id=key.key_id, api_key=key.text)


async def add_vendor(pool: asyncpg.Pool, vendor: NewVendor) -> tuple[VendorRecord, IssuedKey]:
    """A new vendor and their first key. An email or Stripe account another vendor has is refused."""
    vendor_id = new_vendor_id()
    async with pool.acquire() as conn, conn.transaction():
        try:
            await conn.execute(
                "INSERT INTO vendors (vendor_id, name, email, stripe_account) VALUES ($1, $2, $3, $4)",
                vendor_id,
                vendor.name,
                str(vendor.email),
                vendor.stripe_account,
            )
        except asyncpg.UniqueViolationError as error:
            field = "stripe_account" if "stripe_account" in (error.constraint_name or "") else "email"
            raise VendorProblem(field, f"another vendor already has this {field}") from error
        key = await _issue_key(conn, vendor_id)
        return await get_vendor(conn, vendor_id), key


async def rotate_key(pool: asyncpg.Pool, vendor_id: str) -> IssuedKey:
    """A new key for the vendor; every key they had before stops working at once."""
    async with pool.acquire() as conn, conn.transaction():
        await get_vendor(conn, vendor_id)
        await _revoke(conn, vendor_id)
        return await _issue_key(conn, vendor_id)


async def revoke_keys(pool: asyncpg.Pool, vendor_id: str) -> int:
    """Revoke every active key of the vendor (a revoked key is a 401); how many were active."""
    async with pool.acquire() as conn, conn.transaction():
        await get_vendor(conn, vendor_id)
        return await _revoke(conn, vendor_id)


async def _revoke(conn: asyncpg.Connection, vendor_id: str) -> int:
    status = await conn.execute(
        "UPDATE vendor_keys SET revoked_at = now() WHERE vendor_id = $1 AND revoked_at IS NULL",
        vendor_id,
    )
    return int(status.split()[-1])


async def authenticate(pool: asyncpg.Pool, presented: str) -> str | None:
    """The vendor id of a valid, unrevoked key; None for anything else."""
    parsed = parse_key(presented)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = await pool.fetchrow(
        "SELECT vendor_id, secret_sha256 FROM vendor_keys WHERE key_id = $1 AND revoked_at IS NULL",
        key_id,
    )
    if row is None or not secret_matches(secret, row["secret_sha256"]):
        return None
    await pool.execute(
        f"""UPDATE vendor_keys SET last_used_at = now()
            WHERE key_id = $1
              AND (last_used_at IS NULL OR last_used_at < now() - interval '{_LAST_USED_RESOLUTION}')""",
        key_id,
    )
    return row["vendor_id"]


async def set_stripe_account(pool: asyncpg.Pool, vendor_id: str, account: PayeeAccount) -> None:
    """The vendor's connected account, and what Stripe said of it when it was made."""
    await pool.execute("UPDATE vendors SET stripe_account = $2 WHERE vendor_id = $1", vendor_id, account.account_id)
    await record_account(pool, account, read_time())


def read_time() -> datetime:
    """When an account was read, to the second as Stripe's event times are: an event of the
    same second as a read is not taken for an older one."""
    return datetime.now(UTC).replace(microsecond=0)


async def record_account(pool: asyncpg.Pool, account: PayeeAccount, seen_at: datetime) -> bool:
    """What Stripe said of a vendor's account at `seen_at` (a read, or an event's time): what is
    older than the record changes nothing. False when no vendor has this account."""
    status = await pool.execute(
        """UPDATE vendors SET transfers_active = $2, charges_enabled = $3, payouts_enabled = $4,
                              requirements_due = $5, account_seen_at = $6
           WHERE stripe_account = $1 AND (account_seen_at IS NULL OR account_seen_at <= $6)""",
        account.account_id,
        account.transfers_active,
        account.charges_enabled,
        account.payouts_enabled,
        json.dumps(account.requirements_due),
        seen_at,
    )
    return status != "UPDATE 0"


async def check_deal_vendor(pool: asyncpg.Pool, vendor: Vendor) -> None:
    """A spec's vendor names a vendor that exists, with the same Stripe account if both name one."""
    if vendor.vendor_id is None:
        return
    try:
        record = await get_vendor(pool, vendor.vendor_id)
    except VendorProblem as error:
        raise VendorProblem(
            "vendor.vendor_id", f"no vendor '{vendor.vendor_id}' (see `dealflow vendors list`)"
        ) from error
    if vendor.stripe_account and record.stripe_account and vendor.stripe_account != record.stripe_account:
        raise VendorProblem(
            "vendor.stripe_account",
            f"{vendor.stripe_account} is not vendor {record.vendor_id}'s account ({record.stripe_account})",
        )
