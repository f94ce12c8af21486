-- Receipts of released milestones: issued once per milestone, never changed afterwards.

CREATE SEQUENCE receipt_numbers;

CREATE TABLE receipts (
    receipt_number    text PRIMARY KEY CHECK (receipt_number ~ '^R-[0-9]{4}-[0-9]{6,}$'),
    deal_id           text NOT NULL,
    milestone_key     text NOT NULL,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    livemode          boolean NOT NULL,
    sandbox           boolean NOT NULL,
    payment_intent_id text,
    charge_id         text,
    transfer_id       text,
    released_at       timestamptz NOT NULL,
    issued_at         timestamptz NOT NULL,
    -- Everything printed on the receipt, exactly as given (the PDF's fonts may simplify names).
    printed           jsonb NOT NULL,
    pdf               bytea NOT NULL,
    pdf_sha256        text NOT NULL CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
    UNIQUE (deal_id, milestone_key),
    CHECK (NOT (sandbox AND livemode))
);

CREATE TRIGGER receipts_immutable
    BEFORE UPDATE OR DELETE ON receipts
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER receipts_no_truncate
    BEFORE TRUNCATE ON receipts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
