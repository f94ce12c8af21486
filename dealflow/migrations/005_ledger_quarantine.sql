-- Ledger rows Postgres refused for good (a NUL byte, a lone surrogate, a broken constraint) are
-- kept here, escaped to ASCII, instead of being retried in front of the rows after them.
CREATE TABLE ledger_quarantine (
    id             bigserial PRIMARY KEY,
    deal_id        text NOT NULL,
    entry          text NOT NULL CHECK (entry IN ('event', 'payment', 'snapshot')),
    key            text NOT NULL,
    error          text NOT NULL,
    payload        text NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entry, key)
);
CREATE INDEX ledger_quarantine_deal ON ledger_quarantine (deal_id);

-- Snapshots written in one batch per workflow step can land out of order: the highest wins.
ALTER TABLE deals ADD COLUMN version bigint NOT NULL DEFAULT 0;
