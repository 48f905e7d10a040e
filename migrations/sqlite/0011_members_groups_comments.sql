-- Members who are invited, join and are deactivated; user groups, which collections may name as
-- admins and members; comments and highlights on videos; Rewatch's sharing settings of a video.
-- Kept in lock-step with migrations/postgres/0011_members_groups_comments.sql.

ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE'
    CHECK (status IN ('INVITED', 'ACTIVE', 'DEACTIVATED'));

ALTER TABLE videos ADD COLUMN external_sharing_enabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE videos ADD COLUMN show_comments_to_external_viewers BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE user_groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id  BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    description TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX user_groups_by_channel ON user_groups (channel_id, id);

CREATE TABLE user_group_members (
    group_id BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE collection_admin_groups (
    collection_id BIGINT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    group_id      BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    position      BIGINT NOT NULL,
    PRIMARY KEY (collection_id, group_id)
);
CREATE INDEX collection_admin_groups_by_group ON collection_admin_groups (group_id);

CREATE TABLE collection_member_groups (
    collection_id BIGINT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    group_id      BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    position      BIGINT NOT NULL,
    PRIMARY KEY (collection_id, group_id)
);
CREATE INDEX collection_member_groups_by_group ON collection_member_groups (group_id);

-- A titled part of a video, from `start_ms` to `end_ms` milliseconds into it.
CREATE TABLE highlights (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    video_id   BIGINT  NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    creator_id BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    title      TEXT    NOT NULL,
    start_ms   BIGINT  NOT NULL,
    end_ms     BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX highlights_by_video ON highlights (video_id, id);

-- A comment on a video, made on one of its highlights or not. A removed highlight leaves its
-- comments on the video.
CREATE TABLE comments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id   BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    video_id     BIGINT  NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    highlight_id BIGINT  REFERENCES highlights (id) ON DELETE SET NULL,
    author_id    BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    body         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX comments_by_video ON comments (video_id, id);
CREATE INDEX comments_by_highlight ON comments (highlight_id);
