//! Refresh-token values: `base64url(family id ‖ generation ‖ HMAC-SHA-256(key, family id ‖
//! generation))`.
//!
//! Deriving the token from (family, generation) with a server key (the approach of Supabase
//! Auth's v2 refresh tokens) lets the store keep only hashes and still hand the *same* current
//! token again to a tab that presents its immediate predecessor within the reuse interval.
//! The MAC is 256 bits of keyed pseudo-randomness, so tokens cannot be guessed or forged
//! without the key; it is checked in constant time before the store is touched.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::TokenHash;

const MAC_LEN: usize = 32;
const RAW_LEN: usize = 16 + 8 + MAC_LEN;

/// Mints and checks refresh tokens with one server key.
pub struct RefreshCodec {
    mac: Hmac<Sha256>,
}

/// A refresh token that passed its MAC check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedRefresh {
    /// The family it belongs to.
    pub family_id: Uuid,
    /// Its generation in the family.
    pub generation: u64,
}

impl RefreshCodec {
    /// A codec keyed with `key` (32 random bytes kept in the store).
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        #[allow(clippy::expect_used)] // HMAC accepts keys of any length
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        Self { mac }
    }

    fn tag(&self, family_id: Uuid, generation: u64) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(b"latchkey refresh v1");
        mac.update(family_id.as_bytes());
        mac.update(&generation.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The token of `generation` in `family_id`, and its hash.
    #[must_use]
    pub fn mint(&self, family_id: Uuid, generation: u64) -> (String, TokenHash) {
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.extend_from_slice(family_id.as_bytes());
        raw.extend_from_slice(&generation.to_be_bytes());
        raw.extend_from_slice(&self.tag(family_id, generation));
        let token = URL_SAFE_NO_PAD.encode(raw);
        let hash = hash_token(&token);
        (token, hash)
    }

    /// Checks a presented token's shape and MAC (in constant time).
    #[must_use]
    pub fn parse(&self, token: &str) -> Option<ParsedRefresh> {
        if token.len() > 128 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() != RAW_LEN {
            return None;
        }
        let (family, rest) = raw.split_at(16);
        let (generation, tag) = rest.split_at(8);
        let family_id = Uuid::from_slice(family).ok()?;
        let generation = u64::from_be_bytes(generation.try_into().ok()?);
        let mut mac = self.mac.clone();
        mac.update(b"latchkey refresh v1");
        mac.update(family_id.as_bytes());
        mac.update(&generation.to_be_bytes());
        mac.verify_slice(tag).ok()?;
        Some(ParsedRefresh {
            family_id,
            generation,
        })
    }
}

/// SHA-256 of a token: the only form in which a token is stored.
#[must_use]
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_parses_back() {
        let codec = RefreshCodec::new(&[7; 32]);
        let family = Uuid::new_v4();
        let (token, hash) = codec.mint(family, 3);
        assert_eq!(
            codec.parse(&token),
            Some(ParsedRefresh {
                family_id: family,
                generation: 3
            })
        );
        assert_eq!(hash, hash_token(&token));
        assert_eq!(codec.mint(family, 3).0, token, "minting is deterministic");
        assert_ne!(codec.mint(family, 4).0, token);
    }

    #[test]
    fn forged_or_foreign_tokens_are_refused() {
        let codec = RefreshCodec::new(&[7; 32]);
        let (token, _) = codec.mint(Uuid::new_v4(), 0);
        assert_eq!(RefreshCodec::new(&[8; 32]).parse(&token), None);
        let mut tampered = token.into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(codec.parse(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(codec.parse("garbage"), None);
        assert_eq!(codec.parse(""), None);
    }
}
