//! Shop keys and customer tokens.
//!
//! A shop has a publishable key (`pk_…`, public, embedded in storefront pages) and a
//! secret key (`sk_…`, for the store's back end). Only the SHA-256 of the secret is
//! stored. The store's back end proves a shopper's identity to the widget with a
//! customer token: hex HMAC-SHA256 of the customer's external id keyed with the secret.
//!
//! A token may carry an expiry: `v2.<exp>.<hex HMAC-SHA256 of "v2.<exp>.<customer id>">`
//! (exp in unix seconds), refused once `exp` has passed. Tokens without the prefix (v1)
//! never expire and keep verifying unless the shop turns them off. During a secret-key
//! rotation's grace period tokens keyed with either key verify.
//!
//! On a host configured with a token secret (`PATRON_TOKEN_SECRET`), v2 tokens are keyed
//! with a per-shop token key derived from that secret and the stored hash ([`token_key`]),
//! so a copy of the database alone cannot forge them; v1 tokens, keyed with the secret
//! key whose hash is stored, can be, which is why a shop can refuse them.
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

/// Checks a customer token in constant time with the keys of a host without a token
/// secret: a v1 token (never expires) or a v2 token that has not expired.
pub fn verify_customer_token(secret_hash_hex: &str, customer_external_id: &str, token: &str) -> bool {
    let keys = TokenKeys::for_hashes(&[secret_hash_hex], None, true);
    check_customer_token(&keys, customer_external_id, token, chrono::Utc::now().timestamp()) == TokenCheck::Valid
}

/// What checking a customer token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    /// A v2 token whose signature verifies but whose expiry has passed.
    Expired,
    Invalid,
}

/// The prefix of a token that carries its expiry.
const V2_PREFIX: &str = "v2.";
/// What a token key is derived from, beside the stored secret hash.
const TOKEN_KEY_CONTEXT: &str = "patron token key v1:";

/// The token key of a shop on a host with a token secret: `tk_` + hex
/// HMAC-SHA256(token secret, context + stored secret hash). The host derives it on
/// every check; it is never stored, so a copy of the database without the host's
/// token secret cannot produce it.
pub fn token_key(token_secret: &[u8], secret_hash_hex: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token_secret).expect("HMAC takes any key length");
    mac.update(TOKEN_KEY_CONTEXT.as_bytes());
    mac.update(secret_hash_hex.as_bytes());
    format!("tk_{}", hex::encode(mac.finalize().into_bytes()))
}

/// The HMAC keys a shop's tokens may be signed with now.
#[derive(Clone, Default)]
pub struct TokenKeys {
    /// Keys of v1 tokens: the secret key (as its SHA-256, the same HMAC key).
    v1: Vec<Vec<u8>>,
    /// Keys of v2 tokens: the token key on a host with a token secret, else the secret key.
    v2: Vec<Vec<u8>>,
}

impl TokenKeys {
    /// The keys for these stored secret hashes (the current key's, and the previous
    /// one's during a rotation's grace period).
    pub fn for_hashes(secret_hashes: &[&str], token_secret: Option<&[u8]>, accept_v1: bool) -> Self {
        let mut keys = Self::default();
        for hash in secret_hashes {
            let Ok(hash_key) = hex::decode(hash) else { continue };
            match token_secret {
                Some(secret) => keys.v2.push(token_key(secret, hash).into_bytes()),
                None => keys.v2.push(hash_key.clone()),
            }
            if accept_v1 {
                keys.v1.push(hash_key);
            }
        }
        keys
    }
}

/// What a v2 token signs: `v2.<exp>.<customer id>`, so neither part can be swapped.
fn v2_message(exp: i64, customer_external_id: &str) -> String {
    format!("{V2_PREFIX}{exp}.{customer_external_id}")
}

/// A v2 customer token signed with `key` (the token key, or the secret key on a host
/// without a token secret): `v2.<exp>.<hex HMAC-SHA256(key, "v2.<exp>.<customer id>")>`,
/// valid until `exp` (unix seconds).
pub fn customer_token_v2(key: &[u8], customer_external_id: &str, exp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(v2_message(exp, customer_external_id).as_bytes());
    format!("{V2_PREFIX}{exp}.{}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a token against `keys` at `now` (unix seconds), in constant time per key.
pub fn check_customer_token(keys: &TokenKeys, customer_external_id: &str, token: &str, now: i64) -> TokenCheck {
    let (message, exp, signature, candidates) = match token.strip_prefix(V2_PREFIX) {
        Some(rest) => {
            let Some((exp, signature)) = rest.split_once('.') else { return TokenCheck::Invalid };
            let Ok(exp) = exp.parse::<i64>() else { return TokenCheck::Invalid };
            (v2_message(exp, customer_external_id), Some(exp), signature, &keys.v2)
        }
        None => (customer_external_id.to_owned(), None, token, &keys.v1),
    };
    let Ok(signature) = hex::decode(signature) else { return TokenCheck::Invalid };
    let verified = candidates.iter().any(|key| {
        Hmac::<Sha256>::new_from_slice(key).is_ok_and(|mut mac| {
            mac.update(message.as_bytes());
            mac.verify_slice(&signature).is_ok()
        })
    });
    match (verified, exp) {
        (false, _) => TokenCheck::Invalid,
        (true, Some(exp)) if exp <= now => TokenCheck::Expired,
        (true, _) => TokenCheck::Valid,
    }
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
    fn v2_tokens_carry_an_expiry_that_cannot_be_moved() {
        let keys = NewShopKeys::generate();
        let hash = secret_hash(&keys.secret);
        let shop_keys = TokenKeys::for_hashes(&[&hash], None, true);
        // What a store's back end computes with the secret key itself.
        let token = customer_token_v2(keys.secret.as_bytes(), "cust-42", 2_000);
        assert!(token.starts_with("v2.2000."));
        assert_eq!(format!("v2.2000.{}", token_with_secret(&keys.secret, "v2.2000.cust-42")), token);
        assert_eq!(check_customer_token(&shop_keys, "cust-42", &token, 1_999), TokenCheck::Valid);
        assert_eq!(check_customer_token(&shop_keys, "cust-42", &token, 2_000), TokenCheck::Expired);
        let moved = token.replacen("v2.2000.", "v2.9000.", 1);
        assert_eq!(check_customer_token(&shop_keys, "cust-42", &moved, 1_999), TokenCheck::Invalid);
        assert_eq!(check_customer_token(&shop_keys, "cust-43", &token, 1_999), TokenCheck::Invalid);
        // A v1 token still verifies, against either key of a rotation.
        let other = secret_hash(&NewShopKeys::generate().secret);
        let v1 = token_with_secret(&keys.secret, "cust-42");
        let both = TokenKeys::for_hashes(&[&other, &hash], None, true);
        assert_eq!(check_customer_token(&both, "cust-42", &v1, 0), TokenCheck::Valid);
        let only_other = TokenKeys::for_hashes(&[&other], None, true);
        assert_eq!(check_customer_token(&only_other, "cust-42", &v1, 0), TokenCheck::Invalid);
    }

    #[test]
    fn with_a_token_secret_the_stored_hash_alone_cannot_sign_v2_tokens() {
        let keys = NewShopKeys::generate();
        let hash = secret_hash(&keys.secret);
        let server = b"server-side token secret";
        let shop_keys = TokenKeys::for_hashes(&[&hash], Some(server), false);
        let tk = token_key(server, &hash);
        let good = customer_token_v2(tk.as_bytes(), "c", 2_000);
        assert_eq!(check_customer_token(&shop_keys, "c", &good, 1_000), TokenCheck::Valid);
        // What a leaked database allows: the stored hash (= the secret key for HMAC).
        let from_hash = customer_token_v2(&hex::decode(&hash).expect("hex"), "c", 2_000);
        assert_eq!(check_customer_token(&shop_keys, "c", &from_hash, 1_000), TokenCheck::Invalid);
        let v1 = customer_token(&hash, "c").expect("v1");
        assert_eq!(check_customer_token(&shop_keys, "c", &v1, 1_000), TokenCheck::Invalid, "v1 turned off");
        assert_ne!(token_key(b"another host", &hash), tk);
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
