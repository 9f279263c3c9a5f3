-- Second factors (issue 12): see ../0010_mfa.sql.
CREATE TABLE mfa_factors (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text COLLATE "C" NOT NULL,
    secret       bytea NOT NULL,
    last_step    bigint NOT NULL DEFAULT 0,
    confirmed_at timestamptz,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id, kind);

CREATE TABLE mfa_challenges (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint   text NOT NULL,
    amr        text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);

ALTER TABLE refresh_families ADD COLUMN amr text[] NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{}';
