//! Email: the single-use tokens that emails carry (address verification, password reset), the
//! outbox of messages waiting to be sent, and the [`MailStore`] capability.
//!
//! # Tokens
//! Only the SHA-256 of a token is stored ([`TokenHash`]). Using one is a single atomic step that
//! consumes it and applies its effect ([`MailStore::verify_email_with_token`],
//! [`MailStore::reset_password_with_token`]): of two concurrent uses, one succeeds.
//!
//! # The outbox
//! A message is stored before anything is sent ([`MailStore::issue_email_token`] stores the
//! token and its message together), so a restart or an SMTP outage loses none. A worker
//! claims due messages with a lease ([`MailStore::claim_mail`]: a claimed message is invisible
//! to other claims until the lease ends, so two instances never send it both), sends, and
//! deletes the message ([`MailStore::delete_mail`]), or puts it back with a later attempt time
//! ([`MailStore::retry_mail`]). A message is also dropped once its token has expired
//! ([`OutboxMessage::expires_at`]): a dead link is not worth sending.
//!
//! The rendered message is stored as it will be sent, so it holds the token in clear text for
//! the seconds between the request and the send. Encrypting it with a server secret would not
//! protect it from whoever reads the database: that reader finds the secret in the same
//! database (`server_secrets`), and could write a password hash directly anyway. What limits
//! the exposure is the residency: a message is deleted as soon as it is sent, and dropped
//! unsent when its token expires.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TokenHash};

/// What an email token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailPurpose {
    /// Proves that the user receives mail at the address (sets `email_verified`).
    Verify,
    /// Sets a new password without the old one.
    Reset,
}

impl EmailPurpose {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
        }
    }

    /// The purpose with this stored name.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an unknown name.
    pub fn parse(name: &str) -> Result<Self, StoreError> {
        match name {
            "verify" => Ok(Self::Verify),
            "reset" => Ok(Self::Reset),
            other => Err(StoreError::Corrupt(format!(
                "unknown email token purpose `{other}`"
            ))),
        }
    }
}

/// A single-use email token as stored: its hash only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTokenRecord {
    /// SHA-256 of the token (the key).
    pub hash: TokenHash,
    /// What it is for.
    pub purpose: EmailPurpose,
    /// The user it acts on.
    pub user_id: Uuid,
    /// The address it was sent to: a verification holds only while the user's address is
    /// still this one (compared without regard to ASCII case).
    pub email: String,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// After this it is as good as absent.
    pub expires_at: OffsetDateTime,
}

/// A message in the outbox, rendered as it will be sent.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Id (UUIDv7: claims take the oldest first among equally due ones).
    pub id: Uuid,
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body (may hold a token: never logged).
    pub text: String,
    /// The HTML body (may hold a token: never logged).
    pub html: String,
    /// When it was enqueued.
    pub created_at: OffsetDateTime,
    /// Dropped unsent after this (its token's expiry).
    pub expires_at: OffsetDateTime,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not to be tried before this.
    pub next_attempt_at: OffsetDateTime,
    /// Claimed until this (equal to `created_at` while unclaimed): no other claim sees it
    /// before.
    pub lease_until: OffsetDateTime,
    /// The claim that holds the lease, if any.
    pub claim_id: Option<Uuid>,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("subject", &self.subject)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl OutboxMessage {
    /// A new, unclaimed message due at `now`.
    #[must_use]
    pub fn new(
        to: String,
        subject: String,
        text: String,
        html: String,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            to,
            subject,
            text,
            html,
            created_at: now,
            expires_at,
            attempts: 0,
            next_attempt_at: now,
            lease_until: now,
            claim_id: None,
        }
    }
}

/// Email tokens, the verification flag they set, and the outbox. Every method is one atomic
/// operation (see each for what it covers).
#[async_trait]
pub trait MailStore: Send + Sync + 'static {
    /// Stores `token` and enqueues `message` (which carries it), both or neither, after
    /// deleting the user's earlier tokens of the same purpose (only the newest link works).
    async fn issue_email_token(
        &self,
        token: &EmailTokenRecord,
        message: &OutboxMessage,
    ) -> Result<(), StoreError>;
    /// The live token with this hash and purpose, without using it (to refuse a dead token
    /// before costly work such as hashing a new password).
    async fn find_email_token(
        &self,
        hash: TokenHash,
        purpose: EmailPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<EmailTokenRecord>, StoreError>;
    /// Consumes the verification token with this hash and, when it was alive and its address is
    /// still the user's, marks the user's email verified; returns the user. One atomic step:
    /// a token verifies once. A dead or foreign token is deleted and answered `None`.
    async fn verify_email_with_token(
        &self,
        hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError>;
    /// Consumes the live reset token with this hash and, in the same atomic step, sets the
    /// user's password hash, moves the login generation on, deletes the user's other reset
    /// tokens and ends every login of the user (refresh families and cookie sessions); returns
    /// the user. `None` (and no change) for a dead or unknown token.
    async fn reset_password_with_token(
        &self,
        hash: TokenHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError>;
    /// Sets (or clears) a user's `email_verified`; false when the user does not exist.
    async fn set_email_verified(&self, user_id: Uuid, verified: bool) -> Result<bool, StoreError>;
    /// Enqueues a message that carries no token.
    async fn enqueue_mail(&self, message: &OutboxMessage) -> Result<(), StoreError>;
    /// Claims up to `limit` messages due at `now` (`next_attempt_at` and `lease_until` not
    /// after `now`), oldest due first: each gets `claim_id` and `lease_until`, and no other claim
    /// returns it before `lease_until`. Returns them as claimed.
    async fn claim_mail(
        &self,
        now: OffsetDateTime,
        claim_id: Uuid,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Deletes a message (sent, or given up); true when it was there.
    async fn delete_mail(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Puts a message claimed by `claim_id` back for another attempt at `next_attempt_at`, with
    /// `attempts` failures counted; false when the claim no longer holds it.
    async fn retry_mail(
        &self,
        id: Uuid,
        claim_id: Uuid,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// How many messages wait in the outbox (claimed or not).
    async fn count_mail(&self) -> Result<u64, StoreError>;
    /// Deletes the tokens and the unsent messages expired at `now`; returns how many (part of
    /// [`Store::purge_expired`](super::Store::purge_expired)).
    async fn purge_expired_mail(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
