-- The bridge's Stripe status counts events and orphans of the last 24 hours; keep that a range scan.
CREATE INDEX stripe_events_received_at ON stripe_events (received_at);
