-- The relay delivers many deals at once. Each event backs off on its own (next_attempt_at), a
-- bridge claims an event for a while (claimed_by, with next_attempt_at as the claim's end), and
-- an event whose deal stays missing is given up as 'undeliverable' (kept, shown, counted).
ALTER TABLE stripe_events
    ADD COLUMN next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN claimed_by         text,
    ADD COLUMN deal_missing_since timestamptz;

ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_status_check;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_status_check
    CHECK (status IN ('pending', 'delivered', 'orphan', 'ignored', 'undeliverable'));

-- Only the oldest pending event of a deal may be claimed: "is there an earlier one?" per row.
CREATE INDEX stripe_events_pending_by_deal ON stripe_events (deal_id, received_seq)
    WHERE status = 'pending';
