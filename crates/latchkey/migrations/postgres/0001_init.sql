-- Latchkey's PostgreSQL schema: the SQLite schema (../0001_init.sql to ../0007_*.sql) as it
-- stands, in native types. Times are `timestamptz` (written at millisecond precision, like
-- the other stores); ids are `uuid`; token hashes are the 32 bytes of a SHA-256. Names that
-- are compared or sorted use the "C" collation, so that uniqueness and order are the bytes'
-- (as on SQLite and MongoDB), whatever the database's locale.
-- Applied once per database under sqlx's advisory lock, so instances may start together.

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    username       text NOT NULL,
    username_key   text COLLATE "C" NOT NULL,
    email          text COLLATE "C",
    password_hash  text,
    roles          text[] NOT NULL DEFAULT '{}',
    disabled       boolean NOT NULL DEFAULT false,
    email_verified boolean NOT NULL DEFAULT false,
    generation     bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    CONSTRAINT users_username_key_unique UNIQUE (username_key)
);
-- Auto-linking by verified email looks users up by email without regard to ASCII case
-- (lower() under "C" folds ASCII only, like SQLite's NOCASE).
CREATE INDEX users_email ON users (lower(email));

-- One row per login ("session family"): only hashes of refresh tokens are kept.
CREATE TABLE refresh_families (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    current_hash     bytea NOT NULL,
    previous_hash    bytea,
    generation       bigint NOT NULL,
    rotated_at       timestamptz,
    token_expires_at timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    last_used_at     timestamptz NOT NULL,
    user_agent       text,
    ip               text
);
CREATE INDEX refresh_families_user ON refresh_families (user_id, created_at DESC);
CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);
CREATE INDEX refresh_families_token_expiry ON refresh_families (token_expires_at);

CREATE TABLE signing_keys (
    kid          text COLLATE "C" PRIMARY KEY,
    alg          text NOT NULL,
    private_der  bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    activates_at timestamptz NOT NULL,
    retired_at   timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE server_secrets (
    name       text COLLATE "C" PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE login_throttle (
    key            text COLLATE "C" PRIMARY KEY,
    failures       integer NOT NULL,
    window_ends_at timestamptz NOT NULL
);
CREATE INDEX login_throttle_expiry ON login_throttle (window_ends_at);

-- Server-side sessions. The cookie holds a secret id; only its SHA-256 is stored. `id` is the
-- public handle shown in /auth/sessions. `data` is the application's JSON object as text, so
-- it reads back exactly as written.
CREATE TABLE sessions (
    id                  uuid PRIMARY KEY,
    token_hash          bytea NOT NULL,
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    data                text NOT NULL DEFAULT '{}',
    csrf_token          text NOT NULL,
    created_at          timestamptz NOT NULL,
    last_used_at        timestamptz NOT NULL,
    idle_expires_at     timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    user_agent          text,
    ip                  text,
    CONSTRAINT sessions_token_hash_unique UNIQUE (token_hash)
);
CREATE INDEX sessions_user ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_absolute_expiry ON sessions (absolute_expires_at);

-- A pending OAuth sign-in: single use, the callback deletes the row as it reads it.
CREATE TABLE oauth_states (
    state_hash    bytea PRIMARY KEY,
    provider      text NOT NULL,
    binding_hash  bytea NOT NULL,
    nonce         text NOT NULL,
    pkce_verifier text NOT NULL,
    redirect_to   text NOT NULL,
    link_user_id  uuid REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

-- A provider account linked to a user: one per (provider, subject), one per provider per user.
CREATE TABLE oauth_identities (
    provider   text COLLATE "C" NOT NULL,
    subject    text COLLATE "C" NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (provider, subject),
    CONSTRAINT oauth_identities_user_provider UNIQUE (user_id, provider)
);
