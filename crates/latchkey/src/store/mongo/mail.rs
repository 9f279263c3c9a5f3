//! Email tokens and the outbox in MongoDB: a token is a document keyed by its hash
//! (`email_tokens`), a message a document keyed by its id (`mail_outbox`), both with a TTL
//! index on `expires_at`.
//!
//! Without multi-document transactions (a standalone server has none), every step is one
//! single-document operation, ordered so that an interruption fails closed:
//! - issuing stores the token, then the message: a token without its message is harmless (it
//!   expires unused; the user asks again), a message is never sent with a token not stored;
//! - using a token takes it with one `findOneAndDelete` (so it is used once) before its effect;
//!   an interruption in between loses the token, never grants twice;
//! - a reset ends the user's logins before it takes the token, then sets the password, then
//!   ends the logins again (any login made with the old password in between): an interruption
//!   before the password is set leaves the old password in place and the logins ended.
//!
//! A claim is one `findOneAndUpdate` per message whose filter holds "due and not leased", so
//! two instances never claim one message together.

use async_trait::async_trait;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{bin, bytes, count, date, hash, int, opt_text, text, time, uuid};
use super::{MongoStore, id, run};
use crate::store::{
    EmailPurpose, EmailTokenRecord, MailStore, OutboxMessage, StoreError, TokenHash,
};

fn token_doc(t: &EmailTokenRecord) -> Document {
    doc! {
        "_id": bin(&t.hash.0),
        "purpose": t.purpose.as_str(),
        "user_id": id(t.user_id),
        "email": &t.email,
        "created_at": date(t.created_at),
        "expires_at": date(t.expires_at),
    }
}

fn token_from(d: &Document) -> Result<EmailTokenRecord, StoreError> {
    Ok(EmailTokenRecord {
        hash: hash(&bytes(d, "_id")?, "_id")?,
        purpose: EmailPurpose::parse(&text(d, "purpose")?)?,
        user_id: uuid(d, "user_id")?,
        email: text(d, "email")?,
        created_at: time(d, "created_at")?,
        expires_at: time(d, "expires_at")?,
    })
}

fn message_doc(m: &OutboxMessage) -> Document {
    doc! {
        "_id": id(m.id),
        "recipient": &m.to,
        "subject": &m.subject,
        "body_text": &m.text,
        "body_html": &m.html,
        "created_at": date(m.created_at),
        "expires_at": date(m.expires_at),
        "attempts": int(u64::from(m.attempts)),
        "next_attempt_at": date(m.next_attempt_at),
        "lease_until": date(m.lease_until),
        "claim_id": m.claim_id.map_or(Bson::Null, id),
    }
}

fn message_from(d: &Document) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        id: uuid(d, "_id")?,
        to: text(d, "recipient")?,
        subject: text(d, "subject")?,
        text: text(d, "body_text")?,
        html: text(d, "body_html")?,
        created_at: time(d, "created_at")?,
        expires_at: time(d, "expires_at")?,
        attempts: u32::try_from(count(d, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: time(d, "next_attempt_at")?,
        lease_until: time(d, "lease_until")?,
        claim_id: opt_text(d, "claim_id")?
            .map(|c| Uuid::parse_str(&c).map_err(|_| StoreError::Corrupt("bad claim_id".into())))
            .transpose()?,
    })
}

impl MongoStore {
    /// Deletes and returns the token with this hash and purpose, alive or not.
    async fn take_token(
        &self,
        hash: TokenHash,
        purpose: EmailPurpose,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        let filter = doc! { "_id": bin(&hash.0), "purpose": purpose.as_str() };
        let taken = run(self.db()?.email_tokens.find_one_and_delete(filter)).await?;
        taken.as_ref().map(token_from).transpose()
    }

    /// Ends every login of the user: refresh families and cookie sessions.
    async fn end_all_logins(&self, user_id: Uuid) -> Result<(), StoreError> {
        let db = self.db()?;
        run(db.families.delete_many(doc! { "user_id": id(user_id) })).await?;
        run(db.sessions.delete_many(doc! { "user_id": id(user_id) })).await?;
        Ok(())
    }
}

#[async_trait]
impl MailStore for MongoStore {
    async fn issue_email_token(
        &self,
        token: &EmailTokenRecord,
        message: &OutboxMessage,
    ) -> Result<(), StoreError> {
        let db = self.db()?;
        let older = doc! { "user_id": id(token.user_id), "purpose": token.purpose.as_str() };
        run(db.email_tokens.delete_many(older)).await?;
        run(db.email_tokens.insert_one(token_doc(token))).await?;
        run(db.outbox.insert_one(message_doc(message))).await?;
        Ok(())
    }

    async fn find_email_token(
        &self,
        hash: TokenHash,
        purpose: EmailPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        let filter = doc! {
            "_id": bin(&hash.0),
            "purpose": purpose.as_str(),
            "expires_at": { "$gt": date(now) },
        };
        let found = run(self.db()?.email_tokens.find_one(filter)).await?;
        found.as_ref().map(token_from).transpose()
    }

    async fn verify_email_with_token(
        &self,
        hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let Some(token) = self.take_token(hash, EmailPurpose::Verify).await? else {
            return Ok(None);
        };
        if token.expires_at <= now {
            return Ok(None);
        }
        let filter = doc! {
            "_id": id(token.user_id),
            "email_key": token.email.to_ascii_lowercase(),
        };
        let update = doc! { "$set": { "email_verified": true } };
        let done = run(self.db()?.users.update_one(filter, update)).await?;
        Ok((done.matched_count == 1).then_some(token.user_id))
    }

    async fn reset_password_with_token(
        &self,
        hash: TokenHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let Some(token) = self
            .find_email_token(hash, EmailPurpose::Reset, now)
            .await?
        else {
            return Ok(None);
        };
        self.end_all_logins(token.user_id).await?;
        match self.take_token(hash, EmailPurpose::Reset).await? {
            Some(taken) if taken.expires_at > now => {}
            _ => return Ok(None), // used concurrently, or expired meanwhile
        }
        let db = self.db()?;
        let update = doc! {
            "$set": { "password_hash": password_hash },
            "$inc": { "generation": 1_i64 },
        };
        let done = run(db
            .users
            .update_one(doc! { "_id": id(token.user_id) }, update))
        .await?;
        if done.matched_count != 1 {
            return Ok(None);
        }
        let others = doc! { "user_id": id(token.user_id), "purpose": EmailPurpose::Reset.as_str() };
        run(db.email_tokens.delete_many(others)).await?;
        self.end_all_logins(token.user_id).await?;
        Ok(Some(token.user_id))
    }

    async fn set_email_verified(&self, user_id: Uuid, verified: bool) -> Result<bool, StoreError> {
        let update = doc! { "$set": { "email_verified": verified } };
        let done = run(self
            .db()?
            .users
            .update_one(doc! { "_id": id(user_id) }, update))
        .await?;
        Ok(done.matched_count == 1)
    }

    async fn enqueue_mail(&self, message: &OutboxMessage) -> Result<(), StoreError> {
        run(self.db()?.outbox.insert_one(message_doc(message))).await?;
        Ok(())
    }

    async fn claim_mail(
        &self,
        now: OffsetDateTime,
        claim_id: Uuid,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let outbox = &self.db()?.outbox;
        let mut claimed = Vec::new();
        for _ in 0..limit {
            let filter = doc! {
                "next_attempt_at": { "$lte": date(now) },
                "lease_until": { "$lte": date(now) },
            };
            let update =
                doc! { "$set": { "claim_id": id(claim_id), "lease_until": date(lease_until) } };
            let taken = run(outbox
                .find_one_and_update(filter, update)
                .sort(doc! { "next_attempt_at": 1, "_id": 1 })
                .return_document(ReturnDocument::After))
            .await?;
            match taken {
                Some(document) => claimed.push(message_from(&document)?),
                None => break,
            }
        }
        Ok(claimed)
    }

    async fn delete_mail(&self, message_id: Uuid) -> Result<bool, StoreError> {
        let done = run(self.db()?.outbox.delete_one(doc! { "_id": id(message_id) })).await?;
        Ok(done.deleted_count == 1)
    }

    async fn retry_mail(
        &self,
        message_id: Uuid,
        claim_id: Uuid,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let outbox = &self.db()?.outbox;
        let filter = doc! { "_id": id(message_id), "claim_id": id(claim_id) };
        let Some(message) = run(outbox.find_one(filter.clone())).await? else {
            return Ok(false);
        };
        let created_at = time(&message, "created_at")?;
        let update = doc! { "$set": {
            "attempts": int(u64::from(attempts)),
            "next_attempt_at": date(next_attempt_at),
            "lease_until": date(created_at),
            "claim_id": Bson::Null,
        } };
        let done = run(outbox.update_one(filter, update)).await?;
        Ok(done.matched_count == 1)
    }

    async fn count_mail(&self) -> Result<u64, StoreError> {
        run(self.db()?.outbox.count_documents(doc! {})).await
    }

    async fn purge_expired_mail(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let db = self.db()?;
        let expired = doc! { "expires_at": { "$lte": date(now) } };
        let tokens = run(db.email_tokens.delete_many(expired.clone())).await?;
        let messages = run(db.outbox.delete_many(expired)).await?;
        Ok(tokens.deleted_count + messages.deleted_count)
    }
}
