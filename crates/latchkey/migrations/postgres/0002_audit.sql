-- The audit trail: one row per security event, kept until `expires_at` (the retention).
-- `id` is a UUIDv7, so ordering by id is ordering by creation. `webhook_due` is the webhook
-- outbox: set when a webhook is configured, cleared once delivered.
CREATE TABLE audit_events (
    id               uuid PRIMARY KEY,
    at               timestamptz NOT NULL,
    event            text COLLATE "C" NOT NULL,
    user_id          uuid,
    actor            text NOT NULL,
    ip               text,
    user_agent       text,
    outcome          text NOT NULL,
    details          text NOT NULL,
    expires_at       timestamptz NOT NULL,
    webhook_due      timestamptz,
    webhook_attempts integer NOT NULL DEFAULT 0
);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_event ON audit_events (event, id);
CREATE INDEX audit_events_expiry ON audit_events (expires_at);
CREATE INDEX audit_events_webhook ON audit_events (webhook_due) WHERE webhook_due IS NOT NULL;
