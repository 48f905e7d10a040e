-- A claim no longer moves `next_attempt_at` (the due time, which the queue's index is ordered
-- by): it sets `claimed_until`, a column no index holds. Claiming and handing back then leave
-- the index alone, and on PostgreSQL their updates can be HOT. A queued delivery is claimable
-- once it is due and any claim on it has run out.
ALTER TABLE deliveries ADD COLUMN claimed_until BIGINT;
UPDATE deliveries SET claimed_until = next_attempt_at WHERE lease IS NOT NULL;
