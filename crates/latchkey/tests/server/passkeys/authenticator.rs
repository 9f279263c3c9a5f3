//! A software WebAuthn authenticator (ES256 with `p256`) that forges what a browser sends:
//! `clientDataJSON`, authenticator data, a `none` attestation, assertion signatures. Each
//! field can be bent for the negative cases (another origin, another challenge, flags,
//! counters).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const ORIGIN: &str = "http://latchkey.test";
pub const RP_ID: &str = "latchkey.test";

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// One passkey held by the software authenticator.
pub struct SoftKey {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub origin: String,
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// CBOR major type + length head.
fn head(major: u8, len: usize, out: &mut Vec<u8>) {
    let m = major << 5;
    match len {
        0..=23 => out.push(m | u8::try_from(len).unwrap()),
        24..=255 => out.extend([m | 24, u8::try_from(len).unwrap()]),
        _ => {
            out.push(m | 25);
            out.extend(u16::try_from(len).unwrap().to_be_bytes());
        }
    }
}

fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len(), out);
    out.extend(b);
}

fn cbor_text(t: &str, out: &mut Vec<u8>) {
    head(3, t.len(), out);
    out.extend(t.as_bytes());
}

fn cbor_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        head(0, usize::try_from(i).unwrap(), out);
    } else {
        head(1, usize::try_from(-1 - i).unwrap(), out);
    }
}

impl SoftKey {
    pub fn new() -> Self {
        let mut credential_id = vec![0u8; 32];
        getrandom::fill(&mut credential_id).unwrap();
        Self {
            key: SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
            credential_id,
            user_handle: Vec::new(),
            counter: 0,
            backup_eligible: true,
            backup_state: false,
            origin: ORIGIN.to_owned(),
        }
    }

    fn flags(&self, extra: u8) -> u8 {
        let mut f = UP | UV | extra;
        if self.backup_eligible {
            f |= BE;
        }
        if self.backup_state {
            f |= BS;
        }
        f
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut out = Vec::new();
        head(5, 5, &mut out);
        cbor_int(1, &mut out);
        cbor_int(2, &mut out); // kty: EC2
        cbor_int(3, &mut out);
        cbor_int(-7, &mut out); // alg: ES256
        cbor_int(-1, &mut out);
        cbor_int(1, &mut out); // crv: P-256
        cbor_int(-2, &mut out);
        cbor_bytes(point.x().unwrap(), &mut out);
        cbor_int(-3, &mut out);
        cbor_bytes(point.y().unwrap(), &mut out);
        out
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })
            .to_string()
            .into_bytes()
    }

    /// Answers `navigator.credentials.create()` for `options` (the server's JSON options).
    pub fn register(&mut self, options: &Value) -> Value {
        let challenge = options["challenge"].as_str().unwrap();
        let rp_id = options["rp"]["id"].as_str().unwrap();
        self.user_handle = B64.decode(options["user"]["id"].as_str().unwrap()).unwrap();
        let client_data = self.client_data("webauthn.create", challenge);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(AT));
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend(
            u16::try_from(self.credential_id.len())
                .unwrap()
                .to_be_bytes(),
        );
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = Vec::new();
        head(5, 3, &mut attestation);
        cbor_text("fmt", &mut attestation);
        cbor_text("none", &mut attestation);
        cbor_text("attStmt", &mut attestation);
        head(5, 0, &mut attestation);
        cbor_text("authData", &mut attestation);
        cbor_bytes(&auth_data, &mut attestation);
        let spki = self.key.verifying_key().to_public_key_der().unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "authenticatorData": b64(&auth_data),
                "transports": ["internal", "hybrid"],
                "publicKey": b64(spki.as_bytes()),
                "publicKeyAlgorithm": -7,
            },
        })
    }

    /// Answers `navigator.credentials.get()` for a challenge (base64url) with the next
    /// counter value (`counter` as it is, when it is 0: synced passkeys report 0).
    pub fn assert(&mut self, challenge: &str) -> Value {
        if self.counter != 0 {
            self.counter += 1;
        }
        let client_data = self.client_data("webauthn.get", challenge);
        let mut auth_data = Sha256::digest(RP_ID.as_bytes()).to_vec();
        auth_data.push(self.flags(0));
        auth_data.extend(self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
        })
    }
}
