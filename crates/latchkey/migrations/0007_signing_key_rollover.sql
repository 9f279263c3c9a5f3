-- Key rollover: a key is published from its creation but signs only from `activates_at`
-- (a publication delay later), and `keys rotate --now` withdraws the old keys at once.
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
UPDATE signing_keys SET activates_at = created_at;
ALTER TABLE signing_keys ADD COLUMN revoked_at INTEGER;
