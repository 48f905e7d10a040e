-- Temporary webhooks of `herald listen`: deliveries are pushed to a connected CLI instead of
-- POSTed, and only the process holding that connection claims them.
ALTER TABLE webhooks ADD COLUMN listener BOOLEAN NOT NULL DEFAULT FALSE;
