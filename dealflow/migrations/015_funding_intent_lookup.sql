-- A dispute names only its payment intent. The bridge finds the dispute's deal from the payment
-- event that funded it (stored here, with the deal its metadata named, the moment it arrived) as
-- well as from the ledger, whose row of the payment may come seconds later (a worker restarted
-- meanwhile): a dispute landing in between was an orphan before.
CREATE INDEX stripe_events_funding_intent ON stripe_events (funding_intent_id)
    WHERE funding_intent_id IS NOT NULL;
