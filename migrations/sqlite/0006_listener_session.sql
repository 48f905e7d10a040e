-- The `herald listen` session a listener webhook was last attached to (random, per connection).
-- When a session ends and no other has attached meanwhile, the listener is ended: compared
-- against this column, so a listener that reconnected (to any process) is left alone.
ALTER TABLE webhooks ADD COLUMN listener_session TEXT;
