-- Vendors as accounts: each vendor's own API keys (only a SHA-256 of each secret is kept), the
-- readiness of their Stripe Connect account as Stripe last reported it, and the deals read
-- model's vendor, so a key reaches only its vendor's deals.
CREATE TABLE vendors (
    vendor_id        text PRIMARY KEY,
    name             text NOT NULL,
    email            text NOT NULL,
    stripe_account   text UNIQUE,
    -- Stripe's last word on the account (a read or an account.updated event), and its time.
    transfers_active boolean,
    charges_enabled  boolean,
    payouts_enabled  boolean,
    requirements_due jsonb NOT NULL DEFAULT '[]',
    account_seen_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX vendors_email ON vendors (lower(email));

CREATE TABLE vendor_keys (
    key_id        text PRIMARY KEY,
    vendor_id     text NOT NULL REFERENCES vendors (vendor_id),
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX vendor_keys_vendor ON vendor_keys (vendor_id);

ALTER TABLE deals ADD COLUMN vendor_id text;
CREATE INDEX deals_vendor ON deals (vendor_id, created_at DESC);
