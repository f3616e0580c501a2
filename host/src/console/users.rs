//! Console users' passwords (argon2id) and creating users, for `patron admin
//! create-user`, `serve --demo` and the owner's users page.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::store::console::{ConsoleUser, Role};
use crate::store::shops::Shop;
use crate::store::{Db, StoreError};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (hashing cost grows with length).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The email of the demo shop's owner that `serve --demo` creates.
pub const DEMO_OWNER_EMAIL: &str = "owner@demo.patron.test";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("the password must have at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, UserError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| UserError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash no password of a real user produces; verified against when an email is unknown,
/// so that answering takes as long as for a known one.
static DECOY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("decoy password never issued").unwrap_or_default());

/// Spends the time a password check takes, without any user.
pub fn verify_decoy(password: &str) {
    let _ = verify_password(password, &DECOY_HASH);
}

/// Runs [`verify_password`] off the async threads (argon2 takes tens of milliseconds).
pub async fn verify_password_blocking(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false)
}

fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UserError::PasswordTooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(UserError::PasswordTooLong);
    }
    Ok(())
}

/// Creates a console user of `shop_id` (or resets the role and password of the user with
/// that email, ending their sessions). Returns the user and whether it is new.
pub async fn create_user(
    db: &Db,
    shop_id: i64,
    email: &str,
    role: Role,
    password: &str,
) -> Result<(ConsoleUser, bool), UserError> {
    check_password(password)?;
    let owned = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&owned))
        .await
        .map_err(|e| UserError::Hash(e.to_string()))??;
    Ok(db.upsert_console_user(shop_id, email, role, &hash).await?)
}

/// A random password of 16 characters from an alphabet without look-alikes.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..16).map(|_| char::from(ALPHABET[rand::random::<usize>() % ALPHABET.len()])).collect()
}

/// Gives the demo shop an owner with a fresh password (each start of `serve --demo`
/// prints it); returns the email and password.
pub async fn demo_owner(db: &Db, shop: &Shop) -> Result<(String, String), UserError> {
    let password = generate_password();
    create_user(db, shop.id, DEMO_OWNER_EMAIL, Role::Owner, &password).await?;
    Ok((DEMO_OWNER_EMAIL.to_owned(), password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterz", &a));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn passwords_are_checked_and_generated_long_enough() {
        assert!(matches!(check_password("short"), Err(UserError::PasswordTooShort)));
        assert!(check_password(&generate_password()).is_ok());
        assert_ne!(generate_password(), generate_password());
    }
}
