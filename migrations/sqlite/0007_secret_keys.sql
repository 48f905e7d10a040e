-- The keys that webhook secrets are sealed under, by key id (never the key itself: only its
-- id, which reveals nothing of it). One is current: what every herald process on this database
-- must seal with. A process whose key is another is refused at start, so processes cannot
-- each make up a key of their own; a rotation adds the new key and makes it current.
-- `webhooks.secrets` itself keeps its type: a sealed value is text (`v1:<key id>:<base64>`),
-- and rows written before sealing are sealed when herald next starts.
CREATE TABLE secret_keys (
    key_id     TEXT    PRIMARY KEY,
    current    BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL
);
-- At most one current key.
CREATE UNIQUE INDEX secret_keys_one_current ON secret_keys (current) WHERE current;
