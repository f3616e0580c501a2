//! The console's own rows: its users per shop, their server-side sessions, and the audit
//! log of changes made through it. Passwords arrive here already hashed.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::customers::InvalidInput;
use super::{Db, StoreError, StoreResult, new_id, now_ms};

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users, the audit log, keys and plugins.
    Owner,
    /// Segments, journeys, coupons and tags; sees personal data.
    Marketer,
    /// Reads figures only; emails and phones are masked.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Marketer, Role::Analyst];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Marketer => "marketer",
            Self::Analyst => "analyst",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Whether this role sees emails and phones unmasked.
    pub fn sees_personal_data(self) -> bool {
        self != Self::Analyst
    }

    /// Whether this role may change customers (tags), segments, journeys and coupons.
    pub fn may_edit(self) -> bool {
        self != Self::Analyst
    }

    /// Whether this role manages users and reads the audit log.
    pub fn is_owner(self) -> bool {
        self == Self::Owner
    }
}

/// A console user as the console sees one (never the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleUser {
    pub shop_id: i64,
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
}

/// A user found by email at sign-in, with what sign-in needs.
#[derive(Debug, Clone)]
pub struct SignInCandidate {
    pub user: ConsoleUser,
    pub password_hash: String,
    pub throttled_until: i64,
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: ConsoleUser,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
}

/// Failed sign-ins in a row after which an account is throttled.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long a throttled account refuses sign-ins.
pub const THROTTLE_MS: i64 = 15 * 60 * 1000;

/// A user's email as stored: trimmed and lower-cased, and checked to look like one.
pub fn normalize_email(email: &str) -> Result<String, InvalidInput> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 255
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid { Ok(email) } else { Err(InvalidInput::new("email", format!("`{email}` is not an email address"))) }
}

fn user_from_row(row: &AnyRow) -> StoreResult<ConsoleUser> {
    let role: String = row.try_get("role")?;
    Ok(ConsoleUser {
        shop_id: row.try_get("shop_id")?,
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("console user role `{role}`")))?,
        created_at: row.try_get("created_at")?,
    })
}

impl Db {
    /// Creates a console user of `shop_id`, or gives an existing one (same email) the new
    /// role and password hash. Returns the user and whether it was created.
    pub async fn upsert_console_user(
        &self,
        shop_id: i64,
        email: &str,
        role: Role,
        password_hash: &str,
    ) -> StoreResult<(ConsoleUser, bool)> {
        let email = normalize_email(email)?;
        let mut w = self.write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM console_users WHERE shop_id = $1 AND email = $2")
                .bind(shop_id)
                .bind(&email)
                .fetch_optional(&mut *w.tx)
                .await?;
        let created = existing.is_none();
        let id = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE console_users SET role = $3, password_hash = $4, failed_logins = 0, throttled_until = 0 \
                     WHERE shop_id = $1 AND id = $2",
                )
                .bind(shop_id)
                .bind(id)
                .bind(role.as_str())
                .bind(password_hash)
                .execute(&mut *w.tx)
                .await?;
                // A new password ends the sessions opened with the old one.
                sqlx::query("DELETE FROM console_sessions WHERE shop_id = $1 AND user_id = $2")
                    .bind(shop_id)
                    .bind(id)
                    .execute(&mut *w.tx)
                    .await?;
                id
            }
            None => {
                let id = new_id();
                sqlx::query(
                    "INSERT INTO console_users (shop_id, id, email, role, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(shop_id)
                .bind(id)
                .bind(&email)
                .bind(role.as_str())
                .bind(password_hash)
                .bind(now_ms())
                .execute(&mut *w.tx)
                .await?;
                id
            }
        };
        w.commit().await?;
        let user = self.console_user(shop_id, id).await?.ok_or(StoreError::NotFound("console user"))?;
        Ok((user, created))
    }

    pub async fn console_user(&self, shop_id: i64, id: i64) -> StoreResult<Option<ConsoleUser>> {
        let row = sqlx::query(
            "SELECT shop_id, id, email, role, created_at FROM console_users WHERE shop_id = $1 AND id = $2",
        )
        .bind(shop_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn console_users(&self, shop_id: i64) -> StoreResult<Vec<ConsoleUser>> {
        let rows = sqlx::query(
            "SELECT shop_id, id, email, role, created_at FROM console_users WHERE shop_id = $1 ORDER BY email",
        )
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Every shop's user with this email (sign-in happens before the shop is known).
    pub async fn console_sign_in_candidates(&self, email: &str) -> StoreResult<Vec<SignInCandidate>> {
        let rows = sqlx::query(
            "SELECT shop_id, id, email, role, created_at, password_hash, throttled_until FROM console_users \
             WHERE email = $1 ORDER BY shop_id",
        )
        .bind(email.trim().to_lowercase())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SignInCandidate {
                    user: user_from_row(row)?,
                    password_hash: row.try_get("password_hash")?,
                    throttled_until: row.try_get("throttled_until")?,
                })
            })
            .collect()
    }

    /// Counts a wrong password; the [`MAX_FAILED_LOGINS`]th in a row (and every one after)
    /// throttles the account for [`THROTTLE_MS`]. Returns the time it is throttled until.
    pub async fn record_failed_sign_in(&self, shop_id: i64, user_id: i64, now: i64) -> StoreResult<i64> {
        let mut w = self.write().await?;
        sqlx::query(
            "UPDATE console_users SET failed_logins = failed_logins + 1, \
             throttled_until = CASE WHEN failed_logins + 1 >= $3 THEN $4 ELSE throttled_until END \
             WHERE shop_id = $1 AND id = $2",
        )
        .bind(shop_id)
        .bind(user_id)
        .bind(MAX_FAILED_LOGINS)
        .bind(now + THROTTLE_MS)
        .execute(&mut *w.tx)
        .await?;
        let until: i64 = sqlx::query_scalar("SELECT throttled_until FROM console_users WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(user_id)
            .fetch_one(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(until)
    }

    /// Opens a session for a user who gave the right password, resetting the failure count.
    pub async fn open_console_session(
        &self,
        user: &ConsoleUser,
        token_hash: &str,
        csrf_token: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut w = self.write().await?;
        sqlx::query("UPDATE console_users SET failed_logins = 0, throttled_until = 0 WHERE shop_id = $1 AND id = $2")
            .bind(user.shop_id)
            .bind(user.id)
            .execute(&mut *w.tx)
            .await?;
        // Expired sessions of this user go when a new one opens.
        sqlx::query("DELETE FROM console_sessions WHERE shop_id = $1 AND user_id = $2 AND expires_at <= $3")
            .bind(user.shop_id)
            .bind(user.id)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (shop_id, token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.shop_id)
        .bind(token_hash)
        .bind(user.id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// The live (unexpired at `now`) session with this token hash, and its user.
    pub async fn console_session(&self, shop_id: i64, token_hash: &str, now: i64) -> StoreResult<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT u.shop_id, u.id, u.email, u.role, u.created_at, s.csrf_token, s.expires_at \
             FROM console_sessions s JOIN console_users u ON u.shop_id = s.shop_id AND u.id = s.user_id \
             WHERE s.shop_id = $1 AND s.token_hash = $2 AND s.expires_at > $3",
        )
        .bind(shop_id)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(SessionRow {
                user: user_from_row(&row)?,
                csrf_token: row.try_get("csrf_token")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Moves a live session's expiry to `expires_at`.
    pub async fn extend_console_session(&self, shop_id: i64, token_hash: &str, expires_at: i64) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE console_sessions SET expires_at = $3 WHERE shop_id = $1 AND token_hash = $2")
            .bind(shop_id)
            .bind(token_hash)
            .bind(expires_at)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub async fn close_console_session(&self, shop_id: i64, token_hash: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM console_sessions WHERE shop_id = $1 AND token_hash = $2")
            .bind(shop_id)
            .bind(token_hash)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Records a change made through the console.
    pub async fn audit(
        &self,
        shop_id: i64,
        user: Option<&ConsoleUser>,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: &str,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO console_audit (shop_id, id, at, user_id, actor, action, target, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(shop_id)
        .bind(new_id())
        .bind(now_ms())
        .bind(user.map(|u| u.id))
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// The latest `limit` audit entries, newest first.
    pub async fn audit_log(&self, shop_id: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, detail FROM console_audit WHERE shop_id = $1 \
             ORDER BY at DESC, id LIMIT $2",
        )
        .bind(shop_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}
