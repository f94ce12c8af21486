-- dealflow's ledger. Temporal's history is each workflow's truth; this is the queryable record.

CREATE TABLE deals (
    deal_id       text PRIMARY KEY,
    workflow_id   text NOT NULL UNIQUE,
    title         text NOT NULL,
    client_email  text NOT NULL,
    vendor_email  text NOT NULL,
    currency      text NOT NULL,
    stage         text NOT NULL,
    amount_total  bigint NOT NULL CHECK (amount_total >= 0),
    funded        bigint NOT NULL DEFAULT 0,
    released      bigint NOT NULL DEFAULT 0,
    refunded      bigint NOT NULL DEFAULT 0,
    livemode      boolean,
    demo          boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL
);
CREATE INDEX deals_stage ON deals (stage);
CREATE INDEX deals_client ON deals (client_email);

-- Append-only audit trail: one row per event, written once even when an activity is retried.
CREATE TABLE deal_events (
    id            bigserial PRIMARY KEY,
    event_key     text NOT NULL UNIQUE,
    deal_id       text NOT NULL,
    milestone_key text,
    kind          text NOT NULL,
    source        text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX deal_events_deal ON deal_events (deal_id, id);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER deal_events_append_only
    BEFORE UPDATE OR DELETE ON deal_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER deal_events_no_truncate
    BEFORE TRUNCATE ON deal_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Only money Stripe (or the sandbox) confirmed. Sandbox money is flagged and never live.
CREATE TABLE payments (
    id            bigserial PRIMARY KEY,
    stripe_id     text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('charge', 'authorization', 'refund', 'transfer', 'release')),
    deal_id       text NOT NULL,
    milestone_key text NOT NULL,
    amount        bigint NOT NULL CHECK (amount > 0),
    currency      text NOT NULL,
    livemode      boolean NOT NULL,
    sandbox       boolean NOT NULL,
    status        text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stripe_id, kind),
    CHECK (NOT (sandbox AND livemode))
);
CREATE INDEX payments_deal ON payments (deal_id);

-- Inbox of verified Stripe webhooks. The primary key makes a redelivered event a no-op.
CREATE TABLE stripe_events (
    event_id      text PRIMARY KEY,
    type          text NOT NULL,
    livemode      boolean NOT NULL,
    deal_id       text,
    payload       jsonb NOT NULL,
    received_seq  bigserial NOT NULL UNIQUE,
    received_at   timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'orphan', 'ignored')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    delivered_at  timestamptz
);
CREATE INDEX stripe_events_pending ON stripe_events (received_seq) WHERE status = 'pending';
