//! Merging two customer records that are one person: everything keyed to the
//! merged-away customer moves to the survivor in one transaction, the merge is recorded,
//! and the merged-away id resolves to the survivor from then on.
//!
//! What moves, and how conflicts resolve:
//! - orders, events, identities, coupons, outbox messages: re-pointed.
//! - the points ledger: its rows are re-pointed (not summed into one new row), so a
//!   later refund of a merged-away order reverses exactly the points that order earned;
//!   the balance row is added to the survivor's.
//! - tags: the union. Segment stints: re-pointed; a stint the survivor holds too is
//!   closed at the merge on the merged-away side, and one identical to the survivor's
//!   (same segment and start, e.g. from one batch recompute) is dropped as a duplicate.
//! - tier: the survivor's is kept, else the merged-away one's; the API and CLI then let
//!   the loyalty plugins recompute it from the merged ledger and spend.
//! - coupon and reward redemptions: re-pointed unless the survivor has the same one.
//! - unsubscribes: an unsubscribe of either record holds for the survivor.
//! - queued journey jobs (triggers, timers): re-pointed, timer keys included, so the
//!   survivor's journeys can cancel them; a timer the survivor already has is dropped.
//! - consent: the later statement per purpose wins; the log moves with the person.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::customers::{customer_by_id, refresh_stats};
use super::{Db, StoreError, StoreResult, now_ms};

/// Why two records were merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeReason {
    /// The merchant asked (API or CLI).
    Manual,
    /// The back end sent an email that a record known only by that email holds.
    Email,
    /// Likewise for an E.164 phone number.
    Phone,
    /// A verified customer signed in on a browser linked to a record known only by email.
    Identify,
}

impl MergeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Identify => "identify",
        }
    }
}

/// How many rows of each kind moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Moved {
    pub orders: u64,
    pub events: u64,
    pub identities: u64,
    pub ledger_entries: u64,
    pub points: i64,
    pub coupons: u64,
    pub tags: u64,
    pub segment_stints: u64,
    pub messages: u64,
    pub jobs: u64,
    pub consent_records: u64,
    /// Plugin kv entries keyed to the merged-away record (`store::customer_kv`).
    #[serde(default)]
    pub kv_entries: u64,
}

/// What a merge request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MergeOutcome {
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    pub survivor_id: i64,
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    pub merged_id: i64,
    /// False when the two were already one customer: nothing moved.
    pub merged: bool,
    pub moved: Moved,
}

/// A recorded merge.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MergeRecord {
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    pub survivor_id: i64,
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    pub merged_id: i64,
    pub merged_external_id: Option<String>,
    pub reason: String,
    pub moved: Moved,
    pub merged_at: i64,
}

/// The customer `id` stands for now: itself, or the survivor it was merged into.
pub(crate) async fn resolve(conn: &mut AnyConnection, shop_id: i64, id: i64) -> StoreResult<Option<i64>> {
    let row: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, merged_into FROM customers WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(id, merged_into)| merged_into.unwrap_or(id)))
}

/// Locks a customer row until the transaction ends and returns the customer it stands
/// for now. A writer that found `id` before a concurrent merge committed waits here and
/// then sees the survivor, so nothing is written to a merged-away record.
pub(crate) async fn resolve_locked(conn: &mut AnyConnection, shop_id: i64, id: i64) -> StoreResult<i64> {
    let lock = super::for_update(conn);
    resolve_with(conn, shop_id, id, lock).await
}

/// [`resolve_locked`] for a writer that only adds rows pointing at the customer (events):
/// a shared lock on PostgreSQL, so such writers do not wait for each other, only for a
/// merge (which locks the row for update).
///
/// The survivor is locked too, so a merge of the survivor itself, running meanwhile,
/// also waits (or is waited for) instead of leaving the rows on a record it merges away.
pub(crate) async fn resolve_shared(conn: &mut AnyConnection, shop_id: i64, id: i64) -> StoreResult<i64> {
    let lock = super::for_share(conn);
    let mut current = id;
    // Each step follows a merge that committed meanwhile; merges are rare.
    for _ in 0..8 {
        let survivor = resolve_with(conn, shop_id, current, lock).await?;
        if survivor == current {
            break;
        }
        current = survivor;
    }
    Ok(current)
}

async fn resolve_with(conn: &mut AnyConnection, shop_id: i64, id: i64, lock: &str) -> StoreResult<i64> {
    let merged_into: Option<Option<i64>> =
        sqlx::query_scalar(&format!("SELECT merged_into FROM customers WHERE shop_id = $1 AND id = $2 {lock}"))
            .bind(shop_id)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(merged_into.flatten().unwrap_or(id))
}

async fn exec(conn: &mut AnyConnection, sql: &str, shop_id: i64, loser: i64, winner: i64) -> StoreResult<u64> {
    Ok(sqlx::query(sql).bind(shop_id).bind(loser).bind(winner).execute(conn).await?.rows_affected())
}

/// Folds `loser` into `winner` (both resolved through earlier merges first) inside the
/// caller's transaction. Merging two records that are already one is a no-op.
pub(crate) async fn merge(
    conn: &mut AnyConnection,
    shop_id: i64,
    winner: i64,
    loser: i64,
    reason: MergeReason,
) -> StoreResult<MergeOutcome> {
    let (mut winner, mut loser) = (winner, loser);
    for _ in 0..4 {
        let (Some(w), Some(l)) = (resolve(conn, shop_id, winner).await?, resolve(conn, shop_id, loser).await?) else {
            return Err(StoreError::NotFound("customer"));
        };
        if w == l {
            return Ok(MergeOutcome { survivor_id: w, merged_id: loser, merged: false, moved: Moved::default() });
        }
        // Both rows locked in id order, so two merges of the same pair wait for each
        // other instead of deadlocking; a record merged meanwhile is resolved again.
        let (first, second) = if w < l { (w, l) } else { (l, w) };
        let first_now = resolve_locked(conn, shop_id, first).await?;
        let second_now = resolve_locked(conn, shop_id, second).await?;
        (winner, loser) = (w, l);
        if first_now == first && second_now == second {
            return merge_locked(conn, shop_id, w, l, reason).await;
        }
    }
    Err(StoreError::Conflict("the customers kept being merged concurrently; try again".into()))
}

/// [`merge`] once both records are locked and known to be survivors.
async fn merge_locked(
    conn: &mut AnyConnection,
    shop_id: i64,
    winner: i64,
    loser: i64,
    reason: MergeReason,
) -> StoreResult<MergeOutcome> {
    let now = now_ms();
    let mut moved = Moved::default();
    let repoint = "UPDATE {t} SET customer_id = $3 WHERE shop_id = $1 AND customer_id = $2";
    moved.orders = exec(conn, &repoint.replace("{t}", "orders"), shop_id, loser, winner).await?;
    moved.events = exec(conn, &repoint.replace("{t}", "events"), shop_id, loser, winner).await?;
    moved.identities = exec(conn, &repoint.replace("{t}", "identities"), shop_id, loser, winner).await?;
    moved.coupons = exec(conn, &repoint.replace("{t}", "coupons"), shop_id, loser, winner).await?;
    moved.messages = exec(conn, &repoint.replace("{t}", "outbox"), shop_id, loser, winner).await?;

    // The ledger: rows move, the balance follows them.
    super::points::lock_balance(conn, shop_id, winner).await?;
    super::points::lock_balance(conn, shop_id, loser).await?;
    moved.points = super::points::balance(conn, shop_id, loser).await?;
    moved.ledger_entries = exec(conn, &repoint.replace("{t}", "points_ledger"), shop_id, loser, winner).await?;
    exec(
        conn,
        "INSERT INTO points_balances (shop_id, customer_id, balance) \
         SELECT shop_id, $3, 0 FROM points_balances WHERE shop_id = $1 AND customer_id = $2 \
         ON CONFLICT (shop_id, customer_id) DO NOTHING",
        shop_id,
        loser,
        winner,
    )
    .await?;
    sqlx::query("UPDATE points_balances SET balance = balance + $3 WHERE shop_id = $1 AND customer_id = $2")
        .bind(shop_id)
        .bind(winner)
        .bind(moved.points)
        .execute(&mut *conn)
        .await?;
    delete_for(conn, "points_balances", shop_id, loser).await?;

    // Redemptions keyed by customer: moved unless the survivor has the same one.
    for (table, key) in [("coupon_redemptions", "code"), ("reward_redemptions", "idempotency_key")] {
        exec(
            conn,
            &format!(
                "UPDATE {table} SET customer_id = $3 WHERE shop_id = $1 AND customer_id = $2 AND NOT EXISTS \
                 (SELECT 1 FROM {table} w WHERE w.shop_id = $1 AND w.customer_id = $3 AND w.{key} = {table}.{key})"
            ),
            shop_id,
            loser,
            winner,
        )
        .await?;
    }

    // Tags: the union.
    moved.tags =
        copy_unless_present(conn, "customer_tags", "tag, source, added_at", "tag", shop_id, loser, winner).await?;

    // Segment stints, history kept.
    sqlx::query(
        "UPDATE segment_memberships SET left_at = $4 WHERE shop_id = $1 AND customer_id = $2 AND left_at IS NULL \
         AND EXISTS (SELECT 1 FROM segment_memberships w WHERE w.shop_id = $1 AND w.customer_id = $3 \
         AND w.segment = segment_memberships.segment AND w.source = segment_memberships.source AND w.left_at IS NULL)",
    )
    .bind(shop_id)
    .bind(loser)
    .bind(winner)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    moved.segment_stints = exec(
        conn,
        "UPDATE segment_memberships SET customer_id = $3 WHERE shop_id = $1 AND customer_id = $2 AND NOT EXISTS \
         (SELECT 1 FROM segment_memberships w WHERE w.shop_id = $1 AND w.customer_id = $3 \
         AND w.segment = segment_memberships.segment AND w.joined_at = segment_memberships.joined_at)",
        shop_id,
        loser,
        winner,
    )
    .await?;
    delete_for(conn, "segment_memberships", shop_id, loser).await?;

    // Tier: the survivor's, else the merged-away record's.
    copy_unless_present(conn, "members", "tier, tier_since", "", shop_id, loser, winner).await?;
    // Tier moves stay in the history (they happened), as the survivor's.
    exec(
        conn,
        "UPDATE tier_changes SET customer_id = $3 WHERE shop_id = $1 AND customer_id = $2",
        shop_id,
        loser,
        winner,
    )
    .await?;

    // Predictions: the survivor's, else the merged-away record's, until the next fit
    // sees the merged history.
    let predictions = "plugin, predicted_at, p_alive, purchases_30, purchases_90, purchases_365, \
                       expected_order_value, clv";
    copy_unless_present(conn, "customer_predictions", predictions, "plugin", shop_id, loser, winner).await?;

    // Unsubscribes hold for the survivor.
    copy_unless_present(conn, "unsubscribes", "message_id, at", "", shop_id, loser, winner).await?;

    moved.jobs = move_jobs(conn, shop_id, loser, winner).await?;
    moved.consent_records = super::consent::merge_subjects(conn, shop_id, loser, winner).await?;
    moved.kv_entries = super::customer_kv::merge(conn, shop_id, loser, winner).await?;

    // The profile: the survivor's fields, gaps filled from the merged-away record.
    let loser_row = customer_by_id(conn, shop_id, loser).await?.ok_or(StoreError::NotFound("customer"))?;
    sqlx::query(
        "UPDATE customers SET email = COALESCE(email, $3), phone = COALESCE(phone, $4), \
         first_name = COALESCE(first_name, $5), last_name = COALESCE(last_name, $6), \
         birthday = COALESCE(birthday, $7), created_at = CASE WHEN $8 < created_at THEN $8 ELSE created_at END, \
         updated_at = $9 WHERE shop_id = $1 AND id = $2",
    )
    .bind(shop_id)
    .bind(winner)
    .bind(&loser_row.email)
    .bind(&loser_row.phone)
    .bind(&loser_row.first_name)
    .bind(&loser_row.last_name)
    .bind(&loser_row.birthday)
    .bind(loser_row.created_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE customers SET merged_into = $3, email = NULL, phone = NULL, marketing_consent = 0, order_count = 0, \
         total_spent = 0, first_order_at = NULL, last_order_at = NULL, updated_at = $4 \
         WHERE shop_id = $1 AND (id = $2 OR merged_into = $2)",
    )
    .bind(shop_id)
    .bind(loser)
    .bind(winner)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    super::rollups::refresh_customer(conn, shop_id, loser).await?;
    exec(
        conn,
        "UPDATE customer_merges SET survivor_id = $3 WHERE shop_id = $1 AND survivor_id = $2",
        shop_id,
        loser,
        winner,
    )
    .await?;
    let moved_json = serde_json::to_string(&moved).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO customer_merges (shop_id, merged_id, survivor_id, merged_external_id, reason, moved, merged_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(shop_id)
    .bind(loser)
    .bind(winner)
    .bind(&loser_row.external_id)
    .bind(reason.as_str())
    .bind(moved_json)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    refresh_stats(conn, shop_id, winner).await?;
    Ok(MergeOutcome { survivor_id: winner, merged_id: loser, merged: true, moved })
}

/// Copies the merged-away record's rows of `table` (its `columns` besides the shop and
/// customer) to the survivor, except those whose key — the customer, then `key` when not
/// empty — the survivor already has, then deletes the merged-away rows; returns how many
/// were copied.
async fn copy_unless_present(
    conn: &mut AnyConnection,
    table: &str,
    columns: &str,
    key: &str,
    shop_id: i64,
    loser: i64,
    winner: i64,
) -> StoreResult<u64> {
    let conflict = if key.is_empty() { String::new() } else { format!(", {key}") };
    let sql = format!(
        "INSERT INTO {table} (shop_id, customer_id, {columns}) SELECT shop_id, $3, {columns} FROM {table} \
         WHERE shop_id = $1 AND customer_id = $2 ON CONFLICT (shop_id, customer_id{conflict}) DO NOTHING"
    );
    let copied = exec(conn, &sql, shop_id, loser, winner).await?;
    delete_for(conn, table, shop_id, loser).await?;
    Ok(copied)
}

async fn delete_for(conn: &mut AnyConnection, table: &str, shop_id: i64, customer_id: i64) -> StoreResult<()> {
    sqlx::query(&format!("DELETE FROM {table} WHERE shop_id = $1 AND customer_id = $2"))
        .bind(shop_id)
        .bind(customer_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Re-points the merged-away customer's queued journey jobs (triggers and timers).
async fn move_jobs(conn: &mut AnyConnection, shop_id: i64, loser: i64, winner: i64) -> StoreResult<u64> {
    let rows = sqlx::query(
        "SELECT id, kind, payload, dedup_key FROM jobs WHERE shop_id = $1 AND status = 'queued' AND payload LIKE $2",
    )
    .bind(shop_id)
    .bind(format!("%\"customer_id\":{loser}%"))
    .fetch_all(&mut *conn)
    .await?;
    let mut moved = 0;
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let payload: String = row.try_get("payload")?;
        let dedup_key: String = row.try_get("dedup_key")?;
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&payload) else { continue };
        if value["customer_id"].as_i64() != Some(loser) {
            continue;
        }
        value["customer_id"] = winner.into();
        // Timer keys are `timer:<install>:<customer>:<name>:<at>`, trigger keys name the
        // cause with the customer in it: the customer's segment is rewritten in both.
        let new_key = dedup_key
            .split(':')
            .map(|part| if part == loser.to_string() { winner.to_string() } else { part.to_owned() })
            .collect::<Vec<_>>()
            .join(":");
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE shop_id = $1 AND dedup_key = $2")
            .bind(shop_id)
            .bind(&new_key)
            .fetch_optional(&mut *conn)
            .await?;
        if taken.is_some_and(|other| other != id) {
            sqlx::query("DELETE FROM jobs WHERE shop_id = $1 AND id = $2")
                .bind(shop_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            continue;
        }
        sqlx::query("UPDATE jobs SET payload = $3, dedup_key = $4, updated_at = $5 WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(id)
            .bind(value.to_string())
            .bind(new_key)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        moved += 1;
    }
    Ok(moved)
}

impl Db {
    /// Merges `loser` into `winner` in one transaction; a transaction that lost a race
    /// (a deadlock broken by PostgreSQL, a concurrent first insert) runs again and then
    /// finds the merge done.
    pub async fn merge_customers(
        &self,
        shop_id: i64,
        winner: i64,
        loser: i64,
        reason: MergeReason,
    ) -> StoreResult<MergeOutcome> {
        super::retrying(super::WRITE_ATTEMPTS * 2, || async {
            let mut w = self.write().await?;
            let outcome = merge(&mut w.tx, shop_id, winner, loser, reason).await?;
            w.commit().await?;
            Ok(outcome)
        })
        .await
    }

    /// The customer an internal id stands for now (following merges).
    pub async fn resolve_customer(&self, shop_id: i64, id: i64) -> StoreResult<Option<i64>> {
        let mut conn = self.pool().acquire().await?;
        resolve(&mut conn, shop_id, id).await
    }

    /// The merges that folded records into `survivor_id`, oldest first.
    pub async fn merges_into(&self, shop_id: i64, survivor_id: i64) -> StoreResult<Vec<MergeRecord>> {
        let rows = sqlx::query(
            "SELECT survivor_id, merged_id, merged_external_id, reason, moved, merged_at FROM customer_merges \
             WHERE shop_id = $1 AND survivor_id = $2 ORDER BY merged_at, merged_id",
        )
        .bind(shop_id)
        .bind(survivor_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let moved: String = row.try_get("moved")?;
                Ok(MergeRecord {
                    survivor_id: row.try_get("survivor_id")?,
                    merged_id: row.try_get("merged_id")?,
                    merged_external_id: row.try_get("merged_external_id")?,
                    reason: row.try_get("reason")?,
                    moved: serde_json::from_str(&moved)
                        .map_err(|e| StoreError::Corrupt(format!("merge moved: {e}")))?,
                    merged_at: row.try_get("merged_at")?,
                })
            })
            .collect()
    }
}
