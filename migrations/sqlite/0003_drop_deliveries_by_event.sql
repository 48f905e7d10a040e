-- Nothing looks deliveries up by event (events are never deleted on their own), and the index
-- cost a b-tree write per delivery.
DROP INDEX deliveries_by_event;
