-- What the API needs to answer as Rewatch's schema does: when a user last changed
-- (`User.updatedAt`), who uploaded a video (`Video.uploader`), and the visibility `LINK_ONLY`.
-- Kept in lock-step with migrations/postgres/0010_rewatch_schema.sql.

ALTER TABLE users ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE users SET updated_at = created_at;

-- SQLite cannot change a CHECK constraint in place, so `videos` is written anew. Its two link
-- tables are written anew first, pointing at the new table: dropping the old `videos` then
-- deletes no rows through their ON DELETE CASCADE (migrations run with foreign keys on, and
-- in a transaction, where they cannot be turned off).
CREATE TABLE videos_next (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id   BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    slug         TEXT    NOT NULL, -- fixed at creation: URLs survive renames
    summary      TEXT    NOT NULL,
    visibility   TEXT    NOT NULL CHECK (visibility IN ('ON_CHANNEL', 'LINK_ONLY', 'PRIVATE')),
    presented_at BIGINT,
    duration     DOUBLE PRECISION,
    draft        BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    uploader_id  BIGINT  REFERENCES users (id) ON DELETE SET NULL
);
INSERT INTO videos_next (id, channel_id, title, slug, summary, visibility, presented_at, duration, draft, created_at, updated_at)
    SELECT id, channel_id, title, slug, summary, visibility, presented_at, duration, draft, created_at, updated_at FROM videos;
-- AUTOINCREMENT never hands out an id again, even one whose video was deleted: carry the
-- counter over rather than restart it from the highest id left.
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'videos')
    WHERE name = 'videos_next' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'videos');
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'videos_next', seq FROM sqlite_sequence WHERE name = 'videos'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'videos_next');

CREATE TABLE video_collections_next (
    video_id      BIGINT NOT NULL REFERENCES videos_next (id) ON DELETE CASCADE,
    collection_id BIGINT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    position      BIGINT  NOT NULL,
    PRIMARY KEY (video_id, collection_id)
);
INSERT INTO video_collections_next SELECT video_id, collection_id, position FROM video_collections;

CREATE TABLE video_tagged_users_next (
    video_id BIGINT NOT NULL REFERENCES videos_next (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position BIGINT  NOT NULL,
    PRIMARY KEY (video_id, user_id)
);
INSERT INTO video_tagged_users_next SELECT video_id, user_id, position FROM video_tagged_users;

DROP TABLE video_collections;
DROP TABLE video_tagged_users;
DROP TABLE videos;
-- Renaming also renames the references to it in the link tables.
ALTER TABLE videos_next RENAME TO videos;
ALTER TABLE video_collections_next RENAME TO video_collections;
ALTER TABLE video_tagged_users_next RENAME TO video_tagged_users;
CREATE INDEX videos_by_channel ON videos (channel_id, id);
CREATE INDEX video_collections_by_collection ON video_collections (collection_id);
