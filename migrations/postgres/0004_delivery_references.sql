-- The three references on the delivery path are kept by herald itself, not by foreign keys.
-- PostgreSQL checks a foreign key with a trigger per inserted row, a query that locks the
-- referenced row: three per delivery, close to a third of PostgreSQL's CPU per delivery in the
-- fan-out benchmark (examples/bench.rs). What the keys guaranteed still holds:
-- - an event's deliveries are written in the event's transaction, after their webhooks were
--   read FOR KEY SHARE, so a webhook cannot be deleted in between (`emit`, `claim_ping`);
-- - an attempt is written only for a delivery its transaction has locked (`write_records`);
-- - events are never deleted;
-- - deleting a webhook deletes its deliveries, then their attempts (`delete_webhook`).
-- SQLite keeps its foreign keys: there they cost little, and one writer runs at a time.
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_delivery_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_webhook_id_fkey;
