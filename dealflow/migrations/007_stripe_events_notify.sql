-- A relay learns of a pending event the moment any process stores one (or an operator makes one
-- pending again), by LISTEN on this channel, instead of at its next poll.
CREATE FUNCTION notify_stripe_event_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stripe_events_pending', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER stripe_events_pending_stored
    AFTER INSERT ON stripe_events
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION notify_stripe_event_pending();
CREATE TRIGGER stripe_events_pending_again
    AFTER UPDATE OF status ON stripe_events
    FOR EACH ROW WHEN (OLD.status <> 'pending' AND NEW.status = 'pending')
    EXECUTE FUNCTION notify_stripe_event_pending();
