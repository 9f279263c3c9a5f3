-- Whether Latchkey itself verified the user's email (only such an email may be auto-linked to
-- a provider sign-in), and the user's login generation: bumped by a password change and by
-- logout-all, and sealed into stateless session cookies, which die when it moves on.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
