-- Passkeys (WebAuthn credentials) and pending WebAuthn ceremonies. A ceremony's id is a
-- secret handed to the client: only its SHA-256 is stored, and finishing deletes it.
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id   BLOB NOT NULL UNIQUE,
    public_key      BLOB NOT NULL,
    state           BLOB NOT NULL,
    sign_count      INTEGER NOT NULL,
    transports      TEXT NOT NULL DEFAULT '',
    backup_eligible INTEGER NOT NULL,
    backup_state    INTEGER NOT NULL,
    name            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX passkeys_user ON passkeys(user_id, created_at);

CREATE TABLE webauthn_ceremonies (
    id_hash    BLOB PRIMARY KEY,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    state      BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies(expires_at);
