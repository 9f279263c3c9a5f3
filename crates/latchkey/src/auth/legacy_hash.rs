//! Password hashes imported from other systems (`latchkey user import`): bcrypt, PHC PBKDF2 and
//! passport-local-mongoose's PBKDF2. They are verified as they are and replaced by Argon2id at
//! the first successful login (the caller sees `needs_rehash`).
//!
//! Formats:
//! - bcrypt: `$2a$`, `$2b$`, `$2y$` + cost + 53 characters (cost 4 to [`MAX_BCRYPT_COST`]).
//! - PHC PBKDF2: `$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>` or `$pbkdf2-sha512$...`, salt and
//!   hash in unpadded base64 (standard, or passlib's `.` for `+`); passlib's bare-number form
//!   `$pbkdf2-sha256$29000$<salt>$<hash>` too. `l` defaults to the hash's length.
//! - passport-local-mongoose, stored by the import as
//!   `$plm-pbkdf2$d=sha256,i=25000,l=512$<salt>$<hash hex>`: the salt exactly as the library
//!   keeps it (a hex string whose UTF-8 bytes are the PBKDF2 salt) and the derived key in hex,
//!   both copied verbatim from the `users` document; `d` is `sha1`, `sha256` or `sha512`.
//!
//! Cost bound: PBKDF2 is accepted only up to [`MAX_PBKDF2_WORK`] iterations × output blocks (the
//! library defaults, 25,000 × 16 blocks of SHA-256 = 400,000, pass; OWASP's 600,000 × 1 passes),
//! so a crafted import cannot make one login cost more than about a second of one core.

use hmac::Hmac;
use subtle::ConstantTimeEq;

/// The highest bcrypt cost accepted (2^14 rounds, about one second per login).
pub const MAX_BCRYPT_COST: u32 = 14;
/// The most PBKDF2 work accepted: iterations × ceil(key length / digest length).
pub const MAX_PBKDF2_WORK: u64 = 1_000_000;
/// The longest salt or derived key accepted, in bytes.
const MAX_PBKDF2_BYTES: usize = 1024;

/// A PBKDF2 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Sha1,
    Sha256,
    Sha512,
}

impl Digest {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    fn derive(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) -> bool {
        match self {
            Self::Sha1 => pbkdf2::pbkdf2::<Hmac<sha1::Sha1>>(password, salt, rounds, out).is_ok(),
            Self::Sha256 => {
                pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(password, salt, rounds, out).is_ok()
            }
            Self::Sha512 => {
                pbkdf2::pbkdf2::<Hmac<sha2::Sha512>>(password, salt, rounds, out).is_ok()
            }
        }
    }
}

/// A parsed PBKDF2 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pbkdf2Hash {
    digest: Digest,
    rounds: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

/// Checks `password` against a legacy hash: `None` when `stored` is not one of the formats
/// above (an Argon2 PHC string, say), `Some(false)` for a wrong password or a malformed or
/// too costly hash. Comparisons are constant-time.
#[must_use]
pub fn verify_legacy(password: &[u8], stored: &str) -> Option<bool> {
    if is_bcrypt(stored) {
        return Some(
            bcrypt_cost(stored).is_some() && bcrypt::verify(password, stored).unwrap_or(false),
        );
    }
    if !is_pbkdf2(stored) {
        return None;
    }
    let Ok(hash) = parse_pbkdf2(stored) else {
        return Some(false);
    };
    let mut out = vec![0u8; hash.expected.len()];
    if !hash
        .digest
        .derive(password, &hash.salt, hash.rounds, &mut out)
    {
        return Some(false);
    }
    Some(bool::from(out.as_slice().ct_eq(&hash.expected)))
}

/// Whether `stored` is in one of the legacy formats (well-formed or not).
#[must_use]
pub fn is_legacy(stored: &str) -> bool {
    is_bcrypt(stored) || is_pbkdf2(stored)
}

/// Checks that a hash about to be imported is well-formed and within the cost bounds.
///
/// # Errors
/// What is wrong with it, for the import report (never the hash itself).
pub fn validate_legacy(stored: &str) -> Result<(), String> {
    if is_bcrypt(stored) {
        if stored.len() != 60 || !stored.is_ascii() {
            return Err("bcrypt hash must be 60 characters".into());
        }
        return match bcrypt_cost(stored) {
            Some(_) => Ok(()),
            None => Err(format!("bcrypt cost must be 4 to {MAX_BCRYPT_COST}")),
        };
    }
    if is_pbkdf2(stored) {
        return parse_pbkdf2(stored).map(|_| ());
    }
    Err("not a bcrypt or PBKDF2 hash".into())
}

/// The passport-local-mongoose hash of `salt` and `hash` (hex), in the stored form above.
///
/// # Errors
/// What is wrong with the parameters.
pub fn passport_local_mongoose(
    salt: &str,
    hash_hex: &str,
    digest: &str,
    iterations: u32,
    keylen: usize,
) -> Result<String, String> {
    if salt.is_empty() || salt.contains('$') || salt.chars().any(|c| c.is_whitespace()) {
        return Err(
            "passport_local_mongoose.salt must be a non-empty string without `$` or spaces".into(),
        );
    }
    let bytes =
        hex::decode(hash_hex).map_err(|_| "passport_local_mongoose.hash must be hex".to_owned())?;
    if bytes.len() != keylen {
        return Err(format!(
            "passport_local_mongoose.hash is {} bytes, keylen says {keylen}",
            bytes.len()
        ));
    }
    let stored = format!(
        "$plm-pbkdf2$d={digest},i={iterations},l={keylen}${salt}${}",
        hash_hex.to_ascii_lowercase()
    );
    parse_pbkdf2(&stored)?;
    Ok(stored)
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

fn is_pbkdf2(stored: &str) -> bool {
    ["$pbkdf2-sha256$", "$pbkdf2-sha512$", "$plm-pbkdf2$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

fn bcrypt_cost(stored: &str) -> Option<u32> {
    let cost: u32 = stored.get(4..6)?.parse().ok()?;
    (4..=MAX_BCRYPT_COST).contains(&cost).then_some(cost)
}

/// Decodes unpadded base64, standard alphabet or passlib's (`.` for `+`).
fn b64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let normalized: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| if c == '.' { '+' } else { c })
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(normalized)
        .map_err(|_| "salt and hash must be base64".to_owned())
}

fn parse_pbkdf2(stored: &str) -> Result<Pbkdf2Hash, String> {
    let fields: Vec<&str> = stored.split('$').collect();
    let [_, ident, params, salt, hash] = fields.as_slice() else {
        return Err("PBKDF2 hash must be $id$params$salt$hash".into());
    };
    let plm = *ident == "plm-pbkdf2";
    let mut digest = match *ident {
        "pbkdf2-sha256" => Some(Digest::Sha256),
        "pbkdf2-sha512" => Some(Digest::Sha512),
        _ => None,
    };
    let (mut rounds, mut keylen) = (None, None);
    if let Ok(n) = params.parse::<u32>() {
        rounds = Some(n);
    } else {
        for param in params.split(',') {
            let (key, value) = param.split_once('=').ok_or("bad PBKDF2 parameters")?;
            match key {
                "i" => rounds = Some(value.parse::<u32>().map_err(|_| "bad i")?),
                "l" => keylen = Some(value.parse::<usize>().map_err(|_| "bad l")?),
                "d" if plm => {
                    digest = Some(Digest::parse(value).ok_or("d must be sha1, sha256 or sha512")?);
                }
                _ => return Err(format!("unknown PBKDF2 parameter `{key}`")),
            }
        }
    }
    let digest = digest.ok_or("the digest is missing")?;
    let rounds = rounds.filter(|r| *r > 0).ok_or("iterations missing or 0")?;
    let (salt, expected) = if plm {
        let h = hex::decode(hash).map_err(|_| "hash must be hex".to_owned())?;
        (salt.as_bytes().to_vec(), h)
    } else {
        (b64(salt)?, b64(hash)?)
    };
    if keylen.is_some_and(|l| l != expected.len()) {
        return Err("l does not match the hash's length".into());
    }
    if salt.is_empty() || expected.is_empty() {
        return Err("salt and hash must not be empty".into());
    }
    if salt.len() > MAX_PBKDF2_BYTES || expected.len() > MAX_PBKDF2_BYTES {
        return Err(format!(
            "salt and hash must be at most {MAX_PBKDF2_BYTES} bytes"
        ));
    }
    let blocks = expected.len().div_ceil(digest.len()) as u64;
    if u64::from(rounds).saturating_mul(blocks) > MAX_PBKDF2_WORK {
        return Err(format!(
            "PBKDF2 work (iterations × output blocks) above the bound of {MAX_PBKDF2_WORK}"
        ));
    }
    Ok(Pbkdf2Hash {
        digest,
        rounds,
        salt,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_verify_in_every_prefix() {
        let hash = bcrypt::hash_with_result("hunter2 but longer", 4).unwrap();
        for v in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let stored = hash.format_for_version(v);
            validate_legacy(&stored).unwrap();
            assert_eq!(verify_legacy(b"hunter2 but longer", &stored), Some(true));
            assert_eq!(verify_legacy(b"hunter3 but longer", &stored), Some(false));
        }
    }

    #[test]
    fn too_costly_bcrypt_is_refused() {
        let stored = "$2b$15$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
        assert!(validate_legacy(stored).is_err());
        assert_eq!(verify_legacy(b"x", stored), Some(false));
    }

    #[test]
    fn phc_pbkdf2_verifies() {
        use base64::Engine;
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(b"pw", b"saltsalt", 1000, &mut out).unwrap();
        let e = base64::engine::general_purpose::STANDARD_NO_PAD;
        let stored = format!(
            "$pbkdf2-sha256$i=1000,l=32${}${}",
            e.encode(b"saltsalt"),
            e.encode(out)
        );
        validate_legacy(&stored).unwrap();
        assert_eq!(verify_legacy(b"pw", &stored), Some(true));
        assert_eq!(verify_legacy(b"pW", &stored), Some(false));
        let passlib = format!(
            "$pbkdf2-sha256$1000${}${}",
            e.encode(b"saltsalt"),
            e.encode(out)
        );
        assert_eq!(verify_legacy(b"pw", &passlib.replace('+', ".")), Some(true));
    }

    #[test]
    fn passport_local_mongoose_defaults_verify() {
        // The library's shape (512-byte key, the hex salt used as text) with fewer iterations
        // than its 25,000 to keep debug test runs short; tests/api/import.rs uses the defaults.
        let salt = "a3f1";
        let mut out = vec![0u8; 512];
        pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(b"pw", salt.as_bytes(), 250, &mut out).unwrap();
        let stored = passport_local_mongoose(salt, &hex::encode(&out), "sha256", 250, 512).unwrap();
        assert!(stored.starts_with("$plm-pbkdf2$d=sha256,i=250,l=512$a3f1$"));
        assert_eq!(verify_legacy(b"pw", &stored), Some(true));
        assert_eq!(verify_legacy(b"px", &stored), Some(false));
    }

    #[test]
    fn costly_or_broken_pbkdf2_is_refused() {
        let big = format!("$plm-pbkdf2$d=sha256,i=2000000,l=32$aa${}", "00".repeat(32));
        assert!(validate_legacy(&big).is_err());
        assert_eq!(verify_legacy(b"x", &big), Some(false));
        let wide = format!(
            "$plm-pbkdf2$d=sha256,i=40000,l=1024$aa${}",
            "00".repeat(1024)
        );
        assert!(
            validate_legacy(&wide).is_err(),
            "40,000 × 32 blocks is over the bound"
        );
        assert!(validate_legacy("$pbkdf2-sha256$i=10$$").is_err());
        assert!(validate_legacy("$pbkdf2-md5$i=10$YQ$YQ").is_err());
        assert_eq!(
            verify_legacy(b"x", "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"),
            None
        );
    }
}
