-- Second factors (issue 12): TOTP authenticators and recovery codes, one row per credential
-- (WebAuthn credentials will be rows of another kind). A TOTP secret is stored sealed with a
-- server key (AES-256-GCM), a recovery code as its SHA-256; neither ever in the clear.
CREATE TABLE mfa_factors (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    secret       BLOB NOT NULL,
    -- The last accepted TOTP time step: a code is accepted once (conditional update).
    last_step    INTEGER NOT NULL DEFAULT 0,
    confirmed_at INTEGER,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX mfa_factors_user ON mfa_factors(user_id, kind);

-- A login waiting for its second factor: only the hash of the mfa_token is kept. Single use:
-- completing the login deletes the row as it reads it.
CREATE TABLE mfa_challenges (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint   TEXT NOT NULL,
    amr        TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges(expires_at);

-- How each login authenticated (RFC 8176 `amr` values, a JSON array), kept through rotations.
ALTER TABLE refresh_families ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
