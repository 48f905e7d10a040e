-- The dashboard (kept in lock-step with migrations/postgres/).

-- Signed-in dashboard sessions. Only a hash of the session id is kept: a copy of the database
-- does not sign anyone in. A session belongs to the API token it was opened with, and ends
-- with it: a revoked token's sessions are refused (checked on every request).
CREATE TABLE dashboard_sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Lowercase hex SHA-256 of the session id in the cookie.
    session_hash TEXT    NOT NULL UNIQUE,
    token_id     BIGINT  NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);

-- The webhooks page tallies each webhook's attempts of the last day: it reads the attempts
-- since a time through this index rather than the whole log.
CREATE INDEX delivery_attempts_by_time ON delivery_attempts (at);
