-- Email: single-use tokens (only their SHA-256) and the outbox of messages waiting to be sent.
-- Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE email_tokens (
    hash       BLOB PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX email_tokens_user ON email_tokens(user_id, purpose);
CREATE INDEX email_tokens_expiry ON email_tokens(expires_at);

-- A rendered message (it may hold a token in its body: see store/mail.rs), deleted once sent.
-- `lease_until` equals `created_at` until a worker claims the message.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL,
    claim_id        TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at);
