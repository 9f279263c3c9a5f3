-- Passkeys (WebAuthn credentials) and pending WebAuthn ceremonies (see ../0011_passkeys.sql).
CREATE TABLE passkeys (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   bytea NOT NULL,
    public_key      bytea NOT NULL,
    state           bytea NOT NULL,
    sign_count      bigint NOT NULL,
    transports      text[] NOT NULL DEFAULT '{}',
    backup_eligible boolean NOT NULL,
    backup_state    boolean NOT NULL,
    name            text NOT NULL,
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    CONSTRAINT passkeys_credential_id_unique UNIQUE (credential_id)
);
CREATE INDEX passkeys_user ON passkeys (user_id, created_at);

CREATE TABLE webauthn_ceremonies (
    id_hash    bytea PRIMARY KEY,
    kind       text NOT NULL,
    user_id    uuid,
    state      bytea NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
