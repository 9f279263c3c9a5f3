-- The audit trail: one row per security event, kept until `expires_at` (the retention).
-- `id` is a UUIDv7 (text), so ordering by id is ordering by creation. `webhook_due` is the
-- webhook outbox: set when a webhook is configured, cleared once delivered.
CREATE TABLE audit_events (
    id               TEXT PRIMARY KEY,
    at               INTEGER NOT NULL,
    event            TEXT NOT NULL,
    user_id          TEXT,
    actor            TEXT NOT NULL,
    ip               TEXT,
    user_agent       TEXT,
    outcome          TEXT NOT NULL,
    details          TEXT NOT NULL,
    expires_at       INTEGER NOT NULL,
    webhook_due      INTEGER,
    webhook_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_event ON audit_events (event, id);
CREATE INDEX audit_events_expiry ON audit_events (expires_at);
CREATE INDEX audit_events_webhook ON audit_events (webhook_due) WHERE webhook_due IS NOT NULL;
