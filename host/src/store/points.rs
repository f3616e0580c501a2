//! The points ledger: append-only rows per customer (earn, redeem, expire, adjust,
//! reverse). The balance is the sum of the ledger, kept alongside in `points_balances`
//! in the same transaction so an overspend is refused by one conditional UPDATE — which
//! holds under concurrent redemptions on both backends.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Db, StoreError, StoreResult, new_id, now_ms};

/// Why a ledger row exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Earn,
    Redeem,
    Expire,
    Adjust,
    Reverse,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earn => "earn",
            Self::Redeem => "redeem",
            Self::Expire => "expire",
            Self::Adjust => "adjust",
            Self::Reverse => "reverse",
        }
    }
}

/// A row to append. `idempotency_key` makes the append happen at most once.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub customer_id: i64,
    pub delta: i64,
    pub kind: EntryKind,
    pub reason: &'a str,
    pub order_id: Option<&'a str>,
    pub source: &'a str,
    pub idempotency_key: String,
    pub expires_at: Option<i64>,
}

/// A stored ledger row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerRow {
    pub delta: i64,
    pub kind: String,
    pub reason: String,
    pub order_id: Option<String>,
    pub source: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PointsError {
    #[error("insufficient points: the balance is {balance}, {wanted} were asked for")]
    Insufficient { balance: i64, wanted: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PointsError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

impl From<PointsError> for StoreError {
    fn from(error: PointsError) -> Self {
        match error {
            PointsError::Store(error) => error,
            insufficient => StoreError::Conflict(insufficient.to_string()),
        }
    }
}

pub(crate) async fn balance(conn: &mut AnyConnection, shop_id: i64, customer_id: i64) -> StoreResult<i64> {
    let balance: Option<i64> =
        sqlx::query_scalar("SELECT balance FROM points_balances WHERE shop_id = $1 AND customer_id = $2")
            .bind(shop_id)
            .bind(customer_id)
            .fetch_optional(conn)
            .await?;
    Ok(balance.unwrap_or(0))
}

/// Appends `entry` unless its idempotency key was used; returns whether it was appended.
/// A debit larger than the balance is refused, and nothing is written.
/// Locks a customer's balance row until the transaction ends (PostgreSQL), so spends of
/// one customer run one after the other and each sees what the one before it did.
pub(crate) async fn lock_balance(conn: &mut AnyConnection, shop_id: i64, customer_id: i64) -> StoreResult<()> {
    sqlx::query(&format!(
        "SELECT balance FROM points_balances WHERE shop_id = $1 AND customer_id = $2 {}",
        super::for_update(conn)
    ))
    .bind(shop_id)
    .bind(customer_id)
    .fetch_optional(conn)
    .await?;
    Ok(())
}

pub(crate) async fn append(conn: &mut AnyConnection, shop_id: i64, entry: &Entry<'_>) -> Result<bool, PointsError> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT id FROM points_ledger WHERE shop_id = $1 AND idempotency_key = $2")
            .bind(shop_id)
            .bind(&entry.idempotency_key)
            .fetch_optional(&mut *conn)
            .await?;
    if exists.is_some() || entry.delta == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO points_balances (shop_id, customer_id, balance) VALUES ($1, $2, 0) \
         ON CONFLICT (shop_id, customer_id) DO NOTHING",
    )
    .bind(shop_id)
    .bind(entry.customer_id)
    .execute(&mut *conn)
    .await?;
    let updated = sqlx::query(
        "UPDATE points_balances SET balance = balance + $3 WHERE shop_id = $1 AND customer_id = $2 AND balance + $3 >= 0",
    )
    .bind(shop_id)
    .bind(entry.customer_id)
    .bind(entry.delta)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        let balance = balance(conn, shop_id, entry.customer_id).await?;
        return Err(PointsError::Insufficient { balance, wanted: -entry.delta });
    }
    sqlx::query(
        "INSERT INTO points_ledger (shop_id, id, customer_id, delta, kind, reason, order_id, source, idempotency_key, \
         expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(shop_id)
    .bind(new_id())
    .bind(entry.customer_id)
    .bind(entry.delta)
    .bind(entry.kind.as_str())
    .bind(entry.reason)
    .bind(entry.order_id)
    .bind(entry.source)
    .bind(&entry.idempotency_key)
    .bind(entry.expires_at)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(true)
}

/// Reverses the points an order earned, in proportion to how much of it was refunded
/// (all of them for a full refund), never taking the balance below zero. Idempotent:
/// the reversal due is recomputed from the ledger each time, with the customer's balance
/// locked first, so two reversals of one order (two refunds heard at once) run one after
/// the other and the second sees what the first took back.
pub(crate) async fn reverse_for_order(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    order_id: &str,
    refunded_fraction: (i64, i64),
    source: &str,
) -> StoreResult<i64> {
    lock_balance(conn, shop_id, customer_id).await?;
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'earn' THEN delta ELSE 0 END), 0) AS BIGINT) AS earned, \
                CAST(COALESCE(SUM(CASE WHEN kind = 'reverse' THEN -delta ELSE 0 END), 0) AS BIGINT) AS reversed \
         FROM points_ledger WHERE shop_id = $1 AND order_id = $2 AND customer_id = $3",
    )
    .bind(shop_id)
    .bind(order_id)
    .bind(customer_id)
    .fetch_one(&mut *conn)
    .await?;
    let earned: i64 = row.try_get("earned")?;
    let reversed: i64 = row.try_get("reversed")?;
    let (refunded, total) = refunded_fraction;
    let due = if total <= 0 || refunded >= total {
        earned
    } else {
        // In i128 the product cannot overflow; the quotient is below `earned`, so it fits.
        i64::try_from(i128::from(earned) * i128::from(refunded) / i128::from(total)).unwrap_or(earned)
    };
    let available = balance(conn, shop_id, customer_id).await?;
    let amount = (due - reversed).min(available);
    if amount <= 0 {
        return Ok(0);
    }
    let entry = Entry {
        customer_id,
        delta: -amount,
        kind: EntryKind::Reverse,
        reason: "order refunded",
        order_id: Some(order_id),
        source,
        idempotency_key: format!("reverse:{order_id}:{}", reversed + amount),
        expires_at: None,
    };
    append(conn, shop_id, &entry).await?;
    Ok(amount)
}

/// Points that have expired by `at` but are not yet written off, counting debits
/// against the earliest-expiring credits first.
pub(crate) async fn expirable(conn: &mut AnyConnection, shop_id: i64, customer_id: i64, at: i64) -> StoreResult<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN delta > 0 AND expires_at IS NOT NULL AND expires_at <= $3 THEN delta ELSE 0 END), 0) AS BIGINT) AS due, \
                CAST(COALESCE(SUM(CASE WHEN delta < 0 AND kind <> 'expire' THEN -delta ELSE 0 END), 0) AS BIGINT) AS spent, \
                CAST(COALESCE(SUM(CASE WHEN kind = 'expire' THEN -delta ELSE 0 END), 0) AS BIGINT) AS expired \
         FROM points_ledger WHERE shop_id = $1 AND customer_id = $2",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(at)
    .fetch_one(&mut *conn)
    .await?;
    let due: i64 = row.try_get("due")?;
    let spent: i64 = row.try_get("spent")?;
    let expired: i64 = row.try_get("expired")?;
    let available = balance(conn, shop_id, customer_id).await?;
    Ok(((due - spent).max(0) - expired).clamp(0, available))
}

impl Db {
    pub async fn points_balance(&self, shop_id: i64, customer_id: i64) -> StoreResult<i64> {
        let mut conn = self.pool().acquire().await?;
        balance(&mut conn, shop_id, customer_id).await
    }

    /// Appends one ledger row in its own transaction.
    pub async fn append_points(&self, shop_id: i64, entry: &Entry<'_>) -> Result<bool, PointsError> {
        let mut w = self.write().await?;
        match append(&mut w.tx, shop_id, entry).await {
            Ok(appended) => {
                w.commit().await?;
                Ok(appended)
            }
            Err(refused) => {
                w.rollback().await?;
                Err(refused)
            }
        }
    }

    /// The ledger's sum, computed from the rows (the balance table must always agree).
    pub async fn ledger_sum(&self, shop_id: i64, customer_id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_ledger WHERE shop_id = $1 AND customer_id = $2",
        )
        .bind(shop_id)
        .bind(customer_id)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn ledger(&self, shop_id: i64, customer_id: i64, limit: i64) -> StoreResult<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT delta, kind, reason, order_id, source, expires_at, created_at FROM points_ledger \
             WHERE shop_id = $1 AND customer_id = $2 ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LedgerRow {
                    delta: r.try_get("delta")?,
                    kind: r.try_get("kind")?,
                    reason: r.try_get("reason")?,
                    order_id: r.try_get("order_id")?,
                    source: r.try_get("source")?,
                    expires_at: r.try_get("expires_at")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// When the next unexpired credit of a customer expires.
    pub async fn next_points_expiry(&self, shop_id: i64, customer_id: i64, now: i64) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(expires_at) FROM points_ledger WHERE shop_id = $1 AND customer_id = $2 AND delta > 0 AND expires_at > $3",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    /// Points that will expire by `at` unless spent first.
    pub async fn points_expiring_by(&self, shop_id: i64, customer_id: i64, at: i64) -> StoreResult<i64> {
        let mut conn = self.pool().acquire().await?;
        expirable(&mut conn, shop_id, customer_id, at).await
    }

    /// Writes off every customer's expired points as of `at`; running it again for the
    /// same `at` writes nothing. Returns (customers touched, points expired).
    pub async fn expire_points(&self, shop_id: i64, at: i64) -> StoreResult<(u64, i64)> {
        let customers: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT customer_id FROM points_ledger WHERE shop_id = $1 AND expires_at IS NOT NULL AND expires_at <= $2",
        )
        .bind(shop_id)
        .bind(at)
        .fetch_all(self.pool())
        .await?;
        let (mut touched, mut total) = (0, 0);
        for customer_id in customers {
            let mut w = self.write().await?;
            let amount = expirable(&mut w.tx, shop_id, customer_id, at).await?;
            if amount > 0 {
                let entry = Entry {
                    customer_id,
                    delta: -amount,
                    kind: EntryKind::Expire,
                    reason: "points expired",
                    order_id: None,
                    source: "host",
                    idempotency_key: format!("expire:{customer_id}:{at}"),
                    expires_at: None,
                };
                if append(&mut w.tx, shop_id, &entry).await? {
                    touched += 1;
                    total += amount;
                }
            }
            w.commit().await?;
        }
        Ok((touched, total))
    }
}
