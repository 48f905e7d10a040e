-- Inbound sources (kept in lock-step with migrations/postgres/): URLs that third-party
-- services (Strava, Plex, Jellyfin, Emby, services that sign their requests) call; each accepted
-- request becomes an event of the source's channel.
CREATE TABLE sources (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id      BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('STRAVA', 'PLEX', 'JELLYFIN', 'EMBY', 'STANDARD_WEBHOOKS', 'GITHUB')),
    -- Lowercase hex SHA-256 of the ingest URL's token: the token itself is never stored.
    token_hash      TEXT    NOT NULL UNIQUE,
    verify_token    TEXT,             -- STRAVA: the subscription handshake's hub.verify_token
    secret          TEXT,             -- signed kinds: what their signatures are checked with
    events          TEXT    NOT NULL, -- JSON array of the provider's event names or patterns
    allowed_users   TEXT    NOT NULL, -- JSON array; empty: everyone
    allowed_servers TEXT    NOT NULL, -- JSON array; empty: every server
    enabled         BOOLEAN NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX sources_by_channel ON sources (channel_id, id);

-- Every request a source received, and what herald did with it.
CREATE TABLE source_requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id   BIGINT  NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    received_at BIGINT  NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('ACCEPTED', 'DUPLICATE', 'FILTERED', 'REJECTED')),
    status      BIGINT  NOT NULL, -- the HTTP status answered
    message     TEXT    NOT NULL,
    event_id    BIGINT,           -- the event it became (events are never deleted)
    event_name  TEXT
);
CREATE INDEX source_requests_by_source ON source_requests (source_id, id);

-- What marks a request already accepted (Strava's five fields, a delivery id): one row per key
-- and source, written in the transaction that writes the event, so two copies of a request
-- arriving at once cannot both become events: the second insert finds the first's row.
CREATE TABLE source_keys (
    source_id  BIGINT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    dedupe_key TEXT   NOT NULL,
    PRIMARY KEY (source_id, dedupe_key)
);

-- A webhook's event-type filter: a JSON array of event names and `prefix*` patterns that an
-- event's name must match (on top of `events`); NULL lets every event of its subscriptions in.
ALTER TABLE webhooks ADD COLUMN event_types TEXT;
