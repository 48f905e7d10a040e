-- When each API token last authenticated a request (Unix ms, to the minute: herald writes it at
-- most once a minute per token), for `herald token list`. NULL: never, since this migration.
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
