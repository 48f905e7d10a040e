-- A claim no longer moves `next_attempt_at` (the due time, which the queue's index is ordered
-- by): it sets `claimed_until`, a column no index holds. Claiming and handing back then leave
-- the indexes alone, so their updates can be HOT (heap-only: no index entries written) when
-- the row's page has room. A queued delivery is claimable once it is due and any claim on it
-- has run out.
ALTER TABLE deliveries ADD COLUMN claimed_until BIGINT;
UPDATE deliveries SET claimed_until = next_attempt_at WHERE lease IS NOT NULL;
