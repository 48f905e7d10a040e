-- Retention deletes an event once no delivery refers to it, and finds the deliveries of an
-- event through this index (on SQLite, deleting an event checks its foreign key through it too).
-- The key grows at its end (events are written in id order), so each delivery adds to the same
-- last page rather than to a random one.
CREATE INDEX deliveries_by_event ON deliveries (event_id);
