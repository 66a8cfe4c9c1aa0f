//! Field-level protection of personal data on the bus.
//!
//! Contacts and names travel in events *sealed*: encrypted with the
//! deployment's contact key (ChaCha20-Poly1305), so services that must reach
//! the customer (intake, routing, notification) can open them and services
//! that must not (analytics) cannot. A keyed pseudonym (HMAC-SHA256) gives
//! every customer a stable id for counting distinct and repeat customers
//! without revealing who they are.

use std::fmt;

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why a key or a sealed value could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("contact key must be 32 bytes of standard base64 (got {0})")]
    BadKey(String),
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this key (wrong key or tampered)")]
    WrongKey,
}

/// The deployment's contact key. Never printed.
#[derive(Clone)]
pub struct ContactKey {
    seal: ChaCha20Poly1305,
    pseudonym_key: [u8; 32],
    rating_key: [u8; 32],
}

impl ContactKey {
    /// From 32 bytes encoded in standard base64 (how the env var holds it).
    pub fn from_base64(encoded: &str) -> Result<Self, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| SealError::BadKey(format!("not base64: {e}")))?;
        let raw: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| SealError::BadKey(format!("{} bytes", bytes.len())))?;
        Ok(Self::from_bytes(raw))
    }

    /// From raw key material; sealing and pseudonym keys are derived from it
    /// so one secret serves both without reuse.
    pub fn from_bytes(master: [u8; 32]) -> Self {
        let seal_key = derive(&master, b"kesu/v1/seal");
        let pseudonym_key = derive(&master, b"kesu/v1/pseudonym");
        let rating_key = derive(&master, b"kesu/v1/rating-token");
        Self { seal: ChaCha20Poly1305::new(Key::from_slice(&seal_key)), pseudonym_key, rating_key }
    }

    /// A fresh random key, base64-encoded (for `make run` and key rotation).
    pub fn generate_base64() -> String {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// Encrypts `clear`: version byte, random nonce, ciphertext with tag.
    pub fn seal(&self, clear: &str) -> Vec<u8> {
        self.seal_bytes(clear.as_bytes())
    }

    /// Encrypts arbitrary bytes (e.g. an original submission).
    pub fn seal_bytes(&self, clear: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self.seal.encrypt(&nonce, clear).expect("in-memory encryption cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts a value made by [`ContactKey::seal`].
    pub fn open(&self, sealed: &[u8]) -> Result<String, SealError> {
        String::from_utf8(self.open_bytes(sealed)?).map_err(|_| SealError::Malformed)
    }

    /// Decrypts bytes made by [`ContactKey::seal_bytes`].
    pub fn open_bytes(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return Err(SealError::Malformed);
        }
        let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        self.seal.decrypt(nonce, &sealed[1 + NONCE_LEN..]).map_err(|_| SealError::WrongKey)
    }

    /// A stable pseudonym for an identity string: 32 hex characters.
    pub fn pseudonym(&self, identity: &str) -> String {
        let digest = derive(&self.pseudonym_key, identity.as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The rating token of one satisfaction survey of a ticket: notification
    /// puts it in the survey link, routing checks it when the customer rates
    /// through an adapter, so nobody can rate someone else's ticket. `round`
    /// is the ticket's survey round (its reopen count), so a token of an
    /// earlier survey does not rate a later one. 22 URL-safe characters.
    pub fn rating_token(&self, ticket_id: &str, round: u32) -> String {
        let digest = derive(&self.rating_key, format!("{ticket_id}\u{0}{round}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    }

    /// Whether `token` is the rating token of `ticket_id` in `round`
    /// (compared in constant time).
    pub fn check_rating_token(&self, ticket_id: &str, round: u32, token: &str) -> bool {
        let expected = self.rating_token(ticket_id, round);
        expected.len() == token.len() && expected.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl fmt::Debug for ContactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContactKey(<redacted>)")
    }
}

fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rating_tokens_are_per_ticket_round_and_key() {
        let key = ContactKey::from_bytes([7; 32]);
        let token = key.rating_token("t-1", 0);
        assert_eq!(token.len(), 22);
        assert!(key.check_rating_token("t-1", 0, &token));
        assert!(!key.check_rating_token("t-2", 0, &token));
        assert!(!key.check_rating_token("t-1", 1, &token));
        assert!(!ContactKey::from_bytes([8; 32]).check_rating_token("t-1", 0, &token));
        assert!(!key.check_rating_token("t-1", 0, ""));
    }

    fn key() -> ContactKey {
        ContactKey::from_bytes([7; 32])
    }

    #[test]
    fn seals_and_opens() {
        let k = key();
        let sealed = k.seal("13812345678");
        assert!(!sealed.windows(11).any(|w| w == b"13812345678"));
        assert_eq!(k.open(&sealed).unwrap(), "13812345678");
        // Random nonces: sealing twice gives different bytes.
        assert_ne!(sealed, k.seal("13812345678"));
    }

    #[test]
    fn another_key_cannot_open() {
        let sealed = key().seal("secret");
        assert_eq!(ContactKey::from_bytes([8; 32]).open(&sealed), Err(SealError::WrongKey));
        assert_eq!(key().open(b"\x01short"), Err(SealError::Malformed));
    }

    #[test]
    fn pseudonyms_are_stable_and_keyed() {
        assert_eq!(key().pseudonym("phone:138"), key().pseudonym("phone:138"));
        assert_ne!(key().pseudonym("phone:138"), key().pseudonym("phone:139"));
        assert_ne!(key().pseudonym("phone:138"), ContactKey::from_bytes([8; 32]).pseudonym("phone:138"));
        assert_eq!(key().pseudonym("x").len(), 32);
    }

    #[test]
    fn base64_keys() {
        let encoded = ContactKey::generate_base64();
        assert!(ContactKey::from_base64(&encoded).is_ok());
        assert!(matches!(ContactKey::from_base64("c2hvcnQ="), Err(SealError::BadKey(_))));
        assert!(matches!(ContactKey::from_base64("%%%"), Err(SealError::BadKey(_))));
        assert_eq!(format!("{:?}", key()), "ContactKey(<redacted>)");
    }
}
