-- What the API needs to answer as Rewatch's schema does: when a user last changed
-- (`User.updatedAt`), who uploaded a video (`Video.uploader`), and the visibility `LINK_ONLY`.
-- Kept in lock-step with migrations/sqlite/0010_rewatch_schema.sql.

ALTER TABLE users ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE users SET updated_at = created_at;

ALTER TABLE videos DROP CONSTRAINT videos_visibility_check;
ALTER TABLE videos ADD CONSTRAINT videos_visibility_check
    CHECK (visibility IN ('ON_CHANNEL', 'LINK_ONLY', 'PRIVATE'));
ALTER TABLE videos ADD COLUMN uploader_id BIGINT REFERENCES users (id) ON DELETE SET NULL;
