-- Server-side sessions (passport / express-session style). The cookie holds a secret id;
-- only its SHA-256 is stored. `id` is the public handle shown in /auth/sessions.
CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    token_hash          BLOB NOT NULL UNIQUE,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    data                TEXT NOT NULL DEFAULT '{}',
    csrf_token          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    last_used_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    user_agent          TEXT,
    ip                  TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(idle_expires_at);
