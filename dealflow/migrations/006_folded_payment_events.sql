-- One relayed signal per payment. For one card payment through Checkout Stripe sends both
-- `checkout.session.completed` and `payment_intent.succeeded` (`.amount_capturable_updated` for a
-- held card), and the deal reads Stripe for each. The first of them stored for a deal's payment
-- intent is relayed; later ones are kept as 'folded': listed and counted, never relayed.
-- `funding_intent_id` is the payment intent such an event reports (NULL for every other event,
-- and for rows stored before this migration, which therefore never fold anything).
ALTER TABLE stripe_events ADD COLUMN funding_intent_id text;

ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_status_check;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_status_check
    CHECK (status IN ('pending', 'delivered', 'orphan', 'ignored', 'undeliverable', 'folded'));

-- At most one relayed event per deal and payment intent, so two deliveries racing each other
-- cannot both be relayed: the loser of the insert is stored as folded.
CREATE UNIQUE INDEX stripe_events_one_signal_per_payment ON stripe_events (deal_id, funding_intent_id)
    WHERE funding_intent_id IS NOT NULL AND status <> 'folded';
