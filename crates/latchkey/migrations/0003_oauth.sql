-- OAuth2 / OpenID Connect sign-in.
-- A pending sign-in: only hashes of `state` and of the browser-binding cookie are kept. Single
-- use: the callback deletes the row as it reads it.
CREATE TABLE oauth_states (
    state_hash    BLOB PRIMARY KEY,
    provider      TEXT NOT NULL,
    binding_hash  BLOB NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect_to   TEXT NOT NULL,
    link_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);

-- A provider account linked to a user: one per (provider, subject), one per provider per user.
CREATE TABLE oauth_identities (
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE UNIQUE INDEX oauth_identities_user_provider ON oauth_identities(user_id, provider);

-- Auto-linking by verified email looks users up by email, without regard to ASCII case.
CREATE INDEX users_email ON users(email COLLATE NOCASE);
