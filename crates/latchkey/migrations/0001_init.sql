-- Latchkey's embedded schema. Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    email         TEXT,
    password_hash TEXT,
    roles         TEXT NOT NULL DEFAULT '[]',
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- One row per login ("session family"): only hashes of refresh tokens are kept.
CREATE TABLE refresh_families (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    current_hash     BLOB NOT NULL,
    previous_hash    BLOB,
    generation       INTEGER NOT NULL,
    rotated_at       INTEGER,
    token_expires_at INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL,
    user_agent       TEXT,
    ip               TEXT
);
CREATE INDEX refresh_families_user ON refresh_families(user_id);
CREATE INDEX refresh_families_expiry ON refresh_families(expires_at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_der BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE login_throttle (
    key            TEXT PRIMARY KEY,
    failures       INTEGER NOT NULL,
    window_ends_at INTEGER NOT NULL
);
CREATE INDEX login_throttle_expiry ON login_throttle(window_ends_at);
