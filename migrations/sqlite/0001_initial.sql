-- herald's schema, SQLite flavour. Kept in lock-step with migrations/postgres/.
-- Times are Unix milliseconds (BIGINT) on both backends: they compare, sort and index the same way.

CREATE TABLE channels (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    subdomain   TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    description TEXT,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    first_name TEXT    NOT NULL,
    last_name  TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    created_at BIGINT  NOT NULL,
    UNIQUE (channel_id, email)
);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id      BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    url             TEXT    NOT NULL,
    description     TEXT,
    events          TEXT    NOT NULL, -- JSON array of WebhookEvent names
    secrets         TEXT    NOT NULL, -- JSON array, in signing order
    retries         BIGINT  NOT NULL,
    enabled         BOOLEAN NOT NULL,
    disabled_reason TEXT CHECK (disabled_reason IN ('FAILING', 'MANUAL')),
    creator_id      BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    failing_since   BIGINT  -- first FAILED delivery since the last success
);
CREATE INDEX webhooks_by_channel ON webhooks (channel_id, id);

CREATE TABLE collections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id  BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    parent_id   BIGINT  REFERENCES collections (id) ON DELETE SET NULL,
    name        TEXT    NOT NULL,
    slug        TEXT    NOT NULL, -- fixed at creation: URLs survive renames
    description TEXT,
    secret      BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX collections_by_channel ON collections (channel_id, id);
CREATE INDEX collections_by_parent ON collections (parent_id);

CREATE TABLE collection_admins (
    collection_id BIGINT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position      BIGINT  NOT NULL,
    PRIMARY KEY (collection_id, user_id)
);

CREATE TABLE collection_members (
    collection_id BIGINT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position      BIGINT  NOT NULL,
    PRIMARY KEY (collection_id, user_id)
);

CREATE TABLE videos (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id   BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    slug         TEXT    NOT NULL, -- fixed at creation: URLs survive renames
    summary      TEXT    NOT NULL,
    visibility   TEXT    NOT NULL CHECK (visibility IN ('ON_CHANNEL', 'PRIVATE')),
    presented_at BIGINT,
    duration     DOUBLE PRECISION,
    draft        BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX videos_by_channel ON videos (channel_id, id);

CREATE TABLE video_collections (
    video_id      BIGINT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    collection_id BIGINT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    position      BIGINT  NOT NULL,
    PRIMARY KEY (video_id, collection_id)
);
CREATE INDEX video_collections_by_collection ON video_collections (collection_id);

CREATE TABLE video_tagged_users (
    video_id BIGINT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position BIGINT  NOT NULL,
    PRIMARY KEY (video_id, user_id)
);

-- One change by one actor. `data` is the payload's object part (actor, channel, the object,
-- updates) as a JSON object, frozen when the change commits.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    data       TEXT    NOT NULL
);

-- One event to one webhook. While queued (PENDING, RETRYING) `next_attempt_at` is when it is
-- due; a claim pushes it one lease ahead, so a delivery whose worker died is due again.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      BIGINT  NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        BIGINT  NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    nonce           TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL CHECK (status IN ('PENDING', 'RETRYING', 'FAILED', 'SUCCEEDED')),
    retries         BIGINT  NOT NULL DEFAULT 0,
    url             TEXT    NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    lease           BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (webhook_id, next_attempt_at)
    WHERE status IN ('PENDING', 'RETRYING');
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE delivery_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id   BIGINT  NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at            BIGINT  NOT NULL,
    url           TEXT    NOT NULL,
    code          BIGINT,
    result        TEXT    NOT NULL CHECK (result IN ('SUCCESS', 'REQUEST_FAILURE', 'REQUEST_TIMEOUT', 'CONNECTION_ERROR', 'UNKNOWN')),
    message       TEXT,
    duration_ms   BIGINT  NOT NULL,
    response_body TEXT
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
