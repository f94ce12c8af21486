-- An event that names no deal but names a payment intent (a dispute, a refund) is kept as an
-- orphan. Its deal can become known later: the payment's own event delivered after it, or the
-- ledger's row of the payment written after it. The relay then hands the orphan to that deal
-- (bridge/inbox.py, `adopt_orphans`), so the intent it names is kept beside it.
ALTER TABLE stripe_events ADD COLUMN orphan_intent_id text;
UPDATE stripe_events SET orphan_intent_id = CASE
        WHEN payload #>> '{data,object,object}' = 'payment_intent' THEN payload #>> '{data,object,id}'
        WHEN jsonb_typeof(payload #> '{data,object,payment_intent}') = 'object'
            THEN payload #>> '{data,object,payment_intent,id}'
        ELSE payload #>> '{data,object,payment_intent}'
    END
    WHERE status = 'orphan';
CREATE INDEX stripe_events_orphan_intent ON stripe_events (received_at, orphan_intent_id)
    WHERE status = 'orphan' AND orphan_intent_id IS NOT NULL;
