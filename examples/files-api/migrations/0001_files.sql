-- The files example's schema. Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    content    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX files_owner ON files(owner);

-- Who else may use a file, and how.
CREATE TABLE shares (
    file_id    TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    permission TEXT NOT NULL CHECK (permission IN ('read', 'write')),
    PRIMARY KEY (file_id, user_id)
);
CREATE INDEX shares_user ON shares(user_id);
