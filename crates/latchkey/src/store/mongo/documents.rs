//! Records as MongoDB documents: ids as UUID text in `_id`, times as BSON dates, token hashes
//! and key material as binary, counters as plain integers, so that documents read naturally
//! in `mongosh`. Readers accept what a hand edit produces (a double where an integer was,
//! a missing optional field) and refuse anything else as corrupt.

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{
    FactorRecord, FamilyRecord, IdentityRecord, MfaChallengeRecord, OAuthStateRecord, SecretRecord,
    SessionRecord, SigningKeyRecord, StoreError, ThrottleCount, TokenHash, UserRecord,
};

fn corrupt(what: &str, field: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} `{field}` is missing or has the wrong type"))
}

/// Bytes as BSON binary (generic subtype).
pub(super) fn bin(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

/// A time as a BSON date (millisecond precision, like the SQLite store).
pub(super) fn date(t: OffsetDateTime) -> Bson {
    let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    Bson::DateTime(DateTime::from_millis(ms))
}

/// A count as an `int` when it fits, else a `long`.
pub(super) fn int(value: u64) -> Bson {
    match i32::try_from(value) {
        Ok(v) => Bson::Int32(v),
        Err(_) => Bson::Int64(i64::try_from(value).unwrap_or(i64::MAX)),
    }
}

fn opt<T>(value: Option<T>, f: impl FnOnce(T) -> Bson) -> Bson {
    value.map_or(Bson::Null, f)
}

fn present<'d>(d: &'d Document, field: &str) -> Option<&'d Bson> {
    d.get(field).filter(|v| !matches!(v, Bson::Null))
}

pub(super) fn text(d: &Document, field: &str) -> Result<String, StoreError> {
    opt_text(d, field)?.ok_or_else(|| corrupt("text", field))
}

pub(super) fn opt_text(d: &Document, field: &str) -> Result<Option<String>, StoreError> {
    match present(d, field) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(corrupt("text", field)),
    }
}

pub(super) fn uuid(d: &Document, field: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&text(d, field)?).map_err(|_| corrupt("UUID", field))
}

pub(super) fn time(d: &Document, field: &str) -> Result<OffsetDateTime, StoreError> {
    opt_time(d, field)?.ok_or_else(|| corrupt("date", field))
}

pub(super) fn opt_time(d: &Document, field: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    match present(d, field) {
        None => Ok(None),
        Some(Bson::DateTime(t)) => {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_millis()) * 1_000_000)
                .map(Some)
                .map_err(|_| corrupt("date", field))
        }
        Some(_) => Err(corrupt("date", field)),
    }
}

pub(super) fn count(d: &Document, field: &str) -> Result<u64, StoreError> {
    let value = match present(d, field) {
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        #[allow(clippy::cast_possible_truncation)] // checked to be integral and in range
        Some(Bson::Double(v)) if v.fract() == 0.0 && v.abs() < 9.0e15 => *v as i64,
        _ => return Err(corrupt("integer", field)),
    };
    u64::try_from(value).map_err(|_| corrupt("integer", field))
}

pub(super) fn bytes(d: &Document, field: &str) -> Result<Vec<u8>, StoreError> {
    opt_bytes(d, field)?.ok_or_else(|| corrupt("binary", field))
}

pub(super) fn opt_bytes(d: &Document, field: &str) -> Result<Option<Vec<u8>>, StoreError> {
    match present(d, field) {
        None => Ok(None),
        Some(Bson::Binary(b)) => Ok(Some(b.bytes.clone())),
        Some(_) => Err(corrupt("binary", field)),
    }
}

pub(super) fn hash(raw: &[u8], field: &str) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(raw)
        .map(TokenHash)
        .map_err(|_| corrupt("token hash", field))
}

/// A user's fields, `_id` apart (for inserts and `$set`).
pub(super) fn user_fields(u: &UserRecord) -> Document {
    doc! {
        "username": &u.username,
        "username_key": &u.username_key,
        "email": opt(u.email.as_deref(), |e| Bson::String(e.to_owned())),
        // What the email is looked up by (OAuth auto-linking): ASCII case folded.
        "email_key": opt(u.email.as_deref(), |e| Bson::String(e.to_ascii_lowercase())),
        "password_hash": opt(u.password_hash.as_deref(), |h| Bson::String(h.to_owned())),
        "roles": &u.roles,
        "disabled": u.disabled,
        "email_verified": u.email_verified,
        "generation": i64::try_from(u.generation).unwrap_or(i64::MAX),
        "created_at": date(u.created_at),
    }
}

/// A whole user document.
pub(super) fn user_doc(u: &UserRecord) -> Document {
    let mut d = doc! { "_id": u.id.to_string() };
    d.extend(user_fields(u));
    d
}

/// An optional array of strings (missing: empty).
fn texts(d: &Document, field: &str) -> Result<Vec<String>, StoreError> {
    match present(d, field) {
        None => Ok(Vec::new()),
        Some(Bson::Array(items)) => items
            .iter()
            .map(|r| match r {
                Bson::String(s) => Ok(s.clone()),
                _ => Err(corrupt("text", field)),
            })
            .collect(),
        Some(_) => Err(corrupt("array", field)),
    }
}

/// A whole factor document.
pub(super) fn factor_doc(f: &FactorRecord) -> Document {
    doc! {
        "_id": f.id.to_string(),
        "user_id": f.user_id.to_string(),
        "kind": &f.kind,
        "secret": bin(f.secret.expose_secret()),
        "last_step": f.last_step,
        "confirmed_at": opt(f.confirmed_at, date),
        "created_at": date(f.created_at),
        "last_used_at": opt(f.last_used_at, date),
    }
}

/// Reads a factor document.
pub(super) fn factor_from(d: &Document) -> Result<FactorRecord, StoreError> {
    Ok(FactorRecord {
        id: uuid(d, "_id")?,
        user_id: uuid(d, "user_id")?,
        kind: text(d, "kind")?,
        secret: bytes(d, "secret")?.into(),
        last_step: i64::try_from(count(d, "last_step")?).unwrap_or(i64::MAX),
        confirmed_at: opt_time(d, "confirmed_at")?,
        created_at: time(d, "created_at")?,
        last_used_at: opt_time(d, "last_used_at")?,
    })
}

/// A whole pending second-factor login, keyed by the hash of its token.
pub(super) fn challenge_doc(c: &MfaChallengeRecord) -> Document {
    doc! {
        "_id": bin(&c.token_hash.0),
        "user_id": c.user_id.to_string(),
        "endpoint": &c.endpoint,
        "amr": &c.amr,
        "created_at": date(c.created_at),
        "expires_at": date(c.expires_at),
    }
}

/// Reads a pending second-factor login.
pub(super) fn challenge_from(d: &Document) -> Result<MfaChallengeRecord, StoreError> {
    Ok(MfaChallengeRecord {
        token_hash: hash(&bytes(d, "_id")?, "_id")?,
        user_id: uuid(d, "user_id")?,
        endpoint: text(d, "endpoint")?,
        amr: texts(d, "amr")?,
        created_at: time(d, "created_at")?,
        expires_at: time(d, "expires_at")?,
    })
}

/// Reads a user document.
pub(super) fn user_from(d: &Document) -> Result<UserRecord, StoreError> {
    let roles = match present(d, "roles") {
        None => Vec::new(),
        Some(Bson::Array(items)) => items
            .iter()
            .map(|r| match r {
                Bson::String(s) => Ok(s.clone()),
                _ => Err(corrupt("role", "roles")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(corrupt("array", "roles")),
    };
    let disabled = match present(d, "disabled") {
        None => false,
        Some(Bson::Boolean(b)) => *b,
        Some(_) => return Err(corrupt("boolean", "disabled")),
    };
    let email_verified = match present(d, "email_verified") {
        None => false,
        Some(Bson::Boolean(b)) => *b,
        Some(_) => return Err(corrupt("boolean", "email_verified")),
    };
    let generation = match present(d, "generation") {
        None => 0,
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
        Some(_) => return Err(corrupt("integer", "generation")),
    };
    Ok(UserRecord {
        id: uuid(d, "_id")?,
        username: text(d, "username")?,
        username_key: text(d, "username_key")?,
        email: opt_text(d, "email")?,
        password_hash: opt_text(d, "password_hash")?,
        roles,
        disabled,
        email_verified,
        generation,
        created_at: time(d, "created_at")?,
    })
}

/// A family's fields, `_id` apart.
pub(super) fn family_fields(f: &FamilyRecord) -> Document {
    doc! {
        "user_id": f.user_id.to_string(),
        "current_hash": bin(&f.current_hash.0),
        "previous_hash": opt(f.previous_hash, |h| bin(&h.0)),
        "generation": int(f.generation),
        "rotated_at": opt(f.rotated_at, date),
        "token_expires_at": date(f.token_expires_at),
        "expires_at": date(f.expires_at),
        "created_at": date(f.created_at),
        "last_used_at": date(f.last_used_at),
        "user_agent": opt(f.user_agent.as_deref(), |s| Bson::String(s.to_owned())),
        "ip": opt(f.ip.as_deref(), |s| Bson::String(s.to_owned())),
        "amr": &f.amr,
    }
}

/// A whole family document.
pub(super) fn family_doc(f: &FamilyRecord) -> Document {
    let mut d = doc! { "_id": f.id.to_string() };
    d.extend(family_fields(f));
    d
}

/// Reads a family document.
pub(super) fn family_from(d: &Document) -> Result<FamilyRecord, StoreError> {
    Ok(FamilyRecord {
        id: uuid(d, "_id")?,
        user_id: uuid(d, "user_id")?,
        current_hash: hash(&bytes(d, "current_hash")?, "current_hash")?,
        previous_hash: opt_bytes(d, "previous_hash")?
            .map(|b| hash(&b, "previous_hash"))
            .transpose()?,
        generation: count(d, "generation")?,
        rotated_at: opt_time(d, "rotated_at")?,
        token_expires_at: time(d, "token_expires_at")?,
        expires_at: time(d, "expires_at")?,
        created_at: time(d, "created_at")?,
        last_used_at: time(d, "last_used_at")?,
        user_agent: opt_text(d, "user_agent")?,
        ip: opt_text(d, "ip")?,
        amr: texts(d, "amr")?,
    })
}

/// A signing key's fields, `_id` (the kid) apart.
pub(super) fn key_fields(k: &SigningKeyRecord) -> Document {
    doc! {
        "alg": &k.alg,
        "private_der": bin(k.private_der.expose_secret()),
        "created_at": date(k.created_at),
        "activates_at": date(k.activates_at),
        "retired_at": opt(k.retired_at, date),
        "revoked_at": opt(k.revoked_at, date),
    }
}

/// Reads a signing key document.
pub(super) fn key_from(d: &Document) -> Result<SigningKeyRecord, StoreError> {
    let created_at = time(d, "created_at")?;
    Ok(SigningKeyRecord {
        kid: text(d, "_id")?,
        alg: text(d, "alg")?,
        private_der: bytes(d, "private_der")?.into(),
        created_at,
        // Keys stored before rollover existed signed from their creation.
        activates_at: opt_time(d, "activates_at")?.unwrap_or(created_at),
        retired_at: opt_time(d, "retired_at")?,
        revoked_at: opt_time(d, "revoked_at")?,
    })
}

/// Reads a server secret document.
pub(super) fn secret_from(d: &Document) -> Result<SecretRecord, StoreError> {
    Ok(SecretRecord {
        name: text(d, "_id")?,
        value: bytes(d, "value")?.into(),
        created_at: time(d, "created_at")?,
    })
}

/// Reads a secret's value only.
pub(super) fn secret_value(d: &Document) -> Result<Vec<u8>, StoreError> {
    bytes(d, "value")
}

/// Reads a throttle counter document.
pub(super) fn throttle_from(d: &Document) -> Result<ThrottleCount, StoreError> {
    Ok(ThrottleCount {
        failures: u32::try_from(count(d, "failures")?).unwrap_or(u32::MAX),
        window_ends_at: time(d, "window_ends_at")?,
    })
}

/// A session's fields, `_id` apart. The application's data is kept as JSON text, so any JSON
/// object round-trips exactly, whatever its keys or numbers.
pub(super) fn session_fields(s: &SessionRecord) -> Document {
    doc! {
        "token_hash": bin(&s.token_hash.0),
        "user_id": s.user_id.to_string(),
        "data": s.data.to_string(),
        "csrf_token": &s.csrf_token,
        "created_at": date(s.created_at),
        "last_used_at": date(s.last_used_at),
        "idle_expires_at": date(s.idle_expires_at),
        "absolute_expires_at": date(s.absolute_expires_at),
        "user_agent": opt(s.user_agent.as_deref(), |s| Bson::String(s.to_owned())),
        "ip": opt(s.ip.as_deref(), |s| Bson::String(s.to_owned())),
        "amr": &s.amr,
    }
}

/// Reads a session document.
pub(super) fn session_from(d: &Document) -> Result<SessionRecord, StoreError> {
    let data = match opt_text(d, "data")? {
        Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("JSON", "data"))?,
        None => serde_json::json!({}),
    };
    Ok(SessionRecord {
        id: uuid(d, "_id")?,
        token_hash: hash(&bytes(d, "token_hash")?, "token_hash")?,
        user_id: uuid(d, "user_id")?,
        data,
        csrf_token: text(d, "csrf_token")?,
        created_at: time(d, "created_at")?,
        last_used_at: time(d, "last_used_at")?,
        idle_expires_at: time(d, "idle_expires_at")?,
        absolute_expires_at: time(d, "absolute_expires_at")?,
        user_agent: opt_text(d, "user_agent")?,
        ip: opt_text(d, "ip")?,
        amr: texts(d, "amr")?,
    })
}

/// A whole pending OAuth sign-in document, keyed by the hash of its `state`.
pub(super) fn state_doc(s: &OAuthStateRecord) -> Document {
    doc! {
        "_id": bin(&s.state_hash.0),
        "provider": &s.provider,
        "binding_hash": bin(&s.binding_hash.0),
        "nonce": &s.nonce,
        "pkce_verifier": s.pkce_verifier.expose_secret(),
        "redirect_to": &s.redirect_to,
        "link_user_id": opt(s.link_user_id, |u| Bson::String(u.to_string())),
        "created_at": date(s.created_at),
        "expires_at": date(s.expires_at),
    }
}

/// Reads a pending OAuth sign-in document.
pub(super) fn state_from(d: &Document) -> Result<OAuthStateRecord, StoreError> {
    let link_user_id = opt_text(d, "link_user_id")?
        .map(|u| Uuid::parse_str(&u).map_err(|_| corrupt("UUID", "link_user_id")))
        .transpose()?;
    Ok(OAuthStateRecord {
        state_hash: hash(&bytes(d, "_id")?, "_id")?,
        provider: text(d, "provider")?,
        binding_hash: hash(&bytes(d, "binding_hash")?, "binding_hash")?,
        nonce: text(d, "nonce")?,
        pkce_verifier: SecretString::from(text(d, "pkce_verifier")?),
        redirect_to: text(d, "redirect_to")?,
        link_user_id,
        created_at: time(d, "created_at")?,
        expires_at: time(d, "expires_at")?,
    })
}

/// An identity as an element of its user's `identities` array.
pub(super) fn identity_element(i: &IdentityRecord) -> Document {
    doc! {
        "provider": &i.provider,
        "subject": &i.subject,
        "email": opt(i.email.as_deref(), |s| Bson::String(s.to_owned())),
        "created_at": date(i.created_at),
    }
}

/// The identities of a user document, oldest first (ties by provider).
pub(super) fn identities_of(user: &Document) -> Result<Vec<IdentityRecord>, StoreError> {
    let user_id = uuid(user, "_id")?;
    let items = match present(user, "identities") {
        None => return Ok(Vec::new()),
        Some(Bson::Array(items)) => items,
        Some(_) => return Err(corrupt("array", "identities")),
    };
    let mut identities = items
        .iter()
        .map(|item| {
            let Bson::Document(d) = item else {
                return Err(corrupt("document", "identities"));
            };
            Ok(IdentityRecord {
                provider: text(d, "provider")?,
                subject: text(d, "subject")?,
                user_id,
                email: opt_text(d, "email")?,
                created_at: time(d, "created_at")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    identities.sort_by(|a, b| (a.created_at, &a.provider).cmp(&(b.created_at, &b.provider)));
    Ok(identities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_survives_the_round_trip_and_hand_edits_stay_readable() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let family = FamilyRecord {
            id: Uuid::new_v4(),
            user_id: Uuid::now_v7(),
            current_hash: TokenHash([1; 32]),
            previous_hash: None,
            generation: 3,
            rotated_at: Some(now),
            token_expires_at: now,
            expires_at: now,
            created_at: now,
            last_used_at: now,
            user_agent: None,
            ip: Some("127.0.0.1".into()),
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        };
        let mut d = family_doc(&family);
        assert_eq!(family_from(&d).unwrap(), family);
        d.insert("generation", 3.0_f64);
        d.insert("added_by_hand", "kept");
        d.remove("user_agent");
        assert_eq!(family_from(&d).unwrap(), family);
        d.insert("current_hash", "not binary");
        assert!(matches!(family_from(&d), Err(StoreError::Corrupt(_))));
    }
}
