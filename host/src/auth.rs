//! Shop keys and customer tokens.
//!
//! A shop has a publishable key (`pk_…`, public, embedded in storefront pages) and a
//! secret key (`sk_…`, for the store's back end). Only the SHA-256 of the secret is
//! stored. The store's back end proves a shopper's identity to the widget with a
//! customer token: hex HMAC-SHA256 of the customer's external id keyed with the secret.
//!
//! The secret is longer than SHA-256's 64-byte block, so HMAC itself first replaces the
//! key by its SHA-256 (RFC 2104 §2). HMAC keyed with the stored hash is therefore the
//! same function as HMAC keyed with the secret, and the host can verify tokens without
//! keeping the secret.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// SHA-256's block size: keys longer than this are hashed by HMAC.
const HMAC_BLOCK_BYTES: usize = 64;
const SECRET_RANDOM_BYTES: usize = 32;

/// The keys of a newly created shop; the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewShopKeys {
    pub publishable: String,
    pub secret: String,
}

impl NewShopKeys {
    pub fn generate() -> Self {
        let publishable = format!("pk_{}", random_hex(16));
        let secret = format!("sk_{}", random_hex(SECRET_RANDOM_BYTES));
        debug_assert!(secret.len() > HMAC_BLOCK_BYTES);
        Self { publishable, secret }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The stored form of a secret key: hex SHA-256.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn token_mac(secret_hash_hex: &str) -> Option<Hmac<Sha256>> {
    let key = hex::decode(secret_hash_hex).ok()?;
    Hmac::<Sha256>::new_from_slice(&key).ok()
}

/// The customer token the store's back end computes, from the shop's stored secret hash.
/// Returns `None` only when the stored hash is malformed.
pub fn customer_token(secret_hash_hex: &str, customer_external_id: &str) -> Option<String> {
    let mut mac = token_mac(secret_hash_hex)?;
    mac.update(customer_external_id.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

/// Checks a customer token in constant time.
pub fn verify_customer_token(secret_hash_hex: &str, customer_external_id: &str, token: &str) -> bool {
    let Ok(token) = hex::decode(token) else { return false };
    let Some(mut mac) = token_mac(secret_hash_hex) else { return false };
    mac.update(customer_external_id.as_bytes());
    mac.verify_slice(&token).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with_secret(secret: &str, id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn token_keyed_with_secret_verifies_against_stored_hash() {
        let keys = NewShopKeys::generate();
        let hash = secret_hash(&keys.secret);
        let token = token_with_secret(&keys.secret, "cust-42");
        assert!(verify_customer_token(&hash, "cust-42", &token));
        assert_eq!(customer_token(&hash, "cust-42").as_deref(), Some(token.as_str()));
    }

    #[test]
    fn forged_or_mismatched_tokens_fail() {
        let keys = NewShopKeys::generate();
        let other = NewShopKeys::generate();
        let hash = secret_hash(&keys.secret);
        let token = token_with_secret(&keys.secret, "cust-42");
        assert!(!verify_customer_token(&hash, "cust-43", &token));
        assert!(!verify_customer_token(&hash, "cust-42", &token_with_secret(&other.secret, "cust-42")));
        assert!(!verify_customer_token(&hash, "cust-42", "not-hex"));
        assert!(!verify_customer_token(&hash, "cust-42", ""));
    }
}
