//! Tags and segment membership. Membership keeps its history — each stint is a row with
//! `joined_at` and, once over, `left_at` — so sizes over time can be answered.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Db, StoreResult, now_ms};

/// What a membership update changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MembershipChange {
    pub joined: Vec<String>,
    pub left: Vec<String>,
}

/// Makes `segments` the customer's current segments from `source` (a plugin install):
/// stints of segments no longer held end now, new ones begin.
pub(crate) async fn set_segments(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    source: &str,
    segments: &BTreeSet<String>,
    at: i64,
) -> StoreResult<MembershipChange> {
    let current: BTreeSet<String> = sqlx::query_scalar(
        "SELECT segment FROM segment_memberships WHERE shop_id = $1 AND customer_id = $2 AND source = $3 AND left_at IS NULL",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(source)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let change = MembershipChange {
        joined: segments.difference(&current).cloned().collect(),
        left: current.difference(segments).cloned().collect(),
    };
    for segment in &change.left {
        end_stint(conn, shop_id, customer_id, source, segment, at).await?;
    }
    for segment in &change.joined {
        sqlx::query(
            "INSERT INTO segment_memberships (shop_id, segment, customer_id, source, joined_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (shop_id, segment, customer_id, joined_at) DO NOTHING",
        )
        .bind(shop_id)
        .bind(segment)
        .bind(customer_id)
        .bind(source)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    crate::journeys::triggers::segments_changed_one(conn, shop_id, customer_id, &change, at).await?;
    Ok(change)
}

/// Ends a customer's current stint in `segment` from `source` at `at`.
async fn end_stint(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    source: &str,
    segment: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE segment_memberships SET left_at = $5 WHERE shop_id = $1 AND customer_id = $2 AND source = $3 \
         AND segment = $4 AND left_at IS NULL",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(source)
    .bind(segment)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn add_tag(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    tag: &str,
    source: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO customer_tags (shop_id, customer_id, tag, source, added_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (shop_id, customer_id, tag) DO NOTHING",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(tag)
    .bind(source)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn remove_tag(conn: &mut AnyConnection, shop_id: i64, customer_id: i64, tag: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM customer_tags WHERE shop_id = $1 AND customer_id = $2 AND tag = $3")
        .bind(shop_id)
        .bind(customer_id)
        .bind(tag)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes `tags` the customer's tags from `source` (an import): tags missing are added,
/// tags `source` gave before and `tags` no longer lists are removed; a tag the customer
/// holds from another source is left as it is. Returns whether anything changed.
pub(crate) async fn set_tags_from(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    source: &str,
    tags: &BTreeSet<String>,
) -> StoreResult<bool> {
    let held: Vec<(String, String)> =
        sqlx::query_as("SELECT tag, source FROM customer_tags WHERE shop_id = $1 AND customer_id = $2")
            .bind(shop_id)
            .bind(customer_id)
            .fetch_all(&mut *conn)
            .await?;
    let mut changed = false;
    for (tag, from) in &held {
        if from == source && !tags.contains(tag) {
            remove_tag(conn, shop_id, customer_id, tag).await?;
            changed = true;
        }
    }
    for tag in tags {
        if !held.iter().any(|(t, _)| t == tag) {
            add_tag(conn, shop_id, customer_id, tag, source).await?;
            changed = true;
        }
    }
    Ok(changed)
}

/// A segment's size at one moment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SegmentSize {
    pub segment: String,
    pub members: i64,
}

/// Adds (customer id, value) rows to each customer's list, in row order.
fn group_by_customer(grouped: &mut HashMap<i64, Vec<String>>, rows: Vec<(i64, String)>) {
    for (customer_id, value) in rows {
        grouped.entry(customer_id).or_default().push(value);
    }
}

impl Db {
    pub async fn set_segments(
        &self,
        shop_id: i64,
        customer_id: i64,
        source: &str,
        segments: &BTreeSet<String>,
    ) -> StoreResult<MembershipChange> {
        let mut w = self.write().await?;
        let change = set_segments(&mut w.tx, shop_id, customer_id, source, segments, now_ms()).await?;
        w.commit().await?;
        Ok(change)
    }

    pub async fn tags(&self, shop_id: i64, customer_id: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT tag FROM customer_tags WHERE shop_id = $1 AND customer_id = $2 ORDER BY tag")
            .bind(shop_id)
            .bind(customer_id)
            .fetch_all(self.pool())
            .await?)
    }

    pub async fn current_segments(&self, shop_id: i64, customer_id: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT segment FROM segment_memberships WHERE shop_id = $1 AND customer_id = $2 AND left_at IS NULL \
             ORDER BY segment",
        )
        .bind(shop_id)
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The tags of each of these customers (only those with any), each list sorted.
    pub async fn tags_of_customers(&self, shop_id: i64, ids: &[i64]) -> StoreResult<HashMap<i64, Vec<String>>> {
        self.strings_of_customers(shop_id, ids, "SELECT customer_id, tag FROM customer_tags WHERE shop_id = $1", "tag")
            .await
    }

    /// The segments each of these customers is in now (only those in any), each list sorted.
    pub async fn current_segments_of_customers(
        &self,
        shop_id: i64,
        ids: &[i64],
    ) -> StoreResult<HashMap<i64, Vec<String>>> {
        let select =
            "SELECT DISTINCT customer_id, segment FROM segment_memberships WHERE shop_id = $1 AND left_at IS NULL";
        self.strings_of_customers(shop_id, ids, select, "segment").await
    }

    /// Runs `select` (whose `$1` is the shop) for these customers and groups column
    /// `column` by customer, sorted as [`Self::tags`] and [`Self::current_segments`] sort.
    async fn strings_of_customers(
        &self,
        shop_id: i64,
        ids: &[i64],
        select: &str,
        column: &str,
    ) -> StoreResult<HashMap<i64, Vec<String>>> {
        let mut grouped: HashMap<i64, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(1_000) {
            let sql = format!(
                "{select} AND customer_id IN ({}) ORDER BY customer_id, {column}",
                super::recommendations::placeholders(2, chunk.len())
            );
            let mut query = sqlx::query_as(&sql).bind(shop_id);
            for id in chunk {
                query = query.bind(*id);
            }
            group_by_customer(&mut grouped, query.fetch_all(self.pool()).await?);
        }
        Ok(grouped)
    }

    /// Segment sizes as they were at `at` (now, or any moment in the past).
    pub async fn segment_sizes(&self, shop_id: i64, at: i64) -> StoreResult<Vec<SegmentSize>> {
        let rows = sqlx::query(
            "SELECT segment, COUNT(DISTINCT customer_id) AS members FROM segment_memberships \
             WHERE shop_id = $1 AND joined_at <= $2 AND (left_at IS NULL OR left_at > $2) \
             GROUP BY segment ORDER BY segment",
        )
        .bind(shop_id)
        .bind(at)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(SegmentSize { segment: r.try_get("segment")?, members: r.try_get("members")? }))
            .collect()
    }

    /// Tags of the customers whose ids are in `first..=last`, by customer.
    pub async fn tags_in_range(&self, shop_id: i64, first: i64, last: i64) -> StoreResult<HashMap<i64, Vec<String>>> {
        self.grouped(
            "SELECT customer_id, tag FROM customer_tags WHERE shop_id = $1 AND customer_id >= $2 AND customer_id <= $3 ORDER BY tag",
            shop_id,
            first,
            last,
        )
        .await
    }

    /// Current segments (from any source) of the customers whose ids are in `first..=last`.
    pub async fn segments_in_range(
        &self,
        shop_id: i64,
        first: i64,
        last: i64,
    ) -> StoreResult<HashMap<i64, Vec<String>>> {
        self.grouped(
            "SELECT DISTINCT customer_id, segment FROM segment_memberships WHERE shop_id = $1 AND customer_id >= $2 \
             AND customer_id <= $3 AND left_at IS NULL ORDER BY segment",
            shop_id,
            first,
            last,
        )
        .await
    }

    /// Current segments from one source (plugin install) of the customers whose ids are
    /// in `first..=last`.
    pub async fn segments_in_range_from(
        &self,
        shop_id: i64,
        first: i64,
        last: i64,
        source: &str,
    ) -> StoreResult<HashMap<i64, BTreeSet<String>>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT customer_id, segment FROM segment_memberships WHERE shop_id = $1 AND customer_id >= $2 \
             AND customer_id <= $3 AND source = $4 AND left_at IS NULL",
        )
        .bind(shop_id)
        .bind(first)
        .bind(last)
        .bind(source)
        .fetch_all(self.pool())
        .await?;
        let mut grouped: HashMap<i64, BTreeSet<String>> = HashMap::new();
        for (customer_id, segment) in rows {
            grouped.entry(customer_id).or_default().insert(segment);
        }
        Ok(grouped)
    }

    /// Applies many customers' membership changes from one source in one transaction:
    /// stints that end are closed one by one (rare after a first pass), new stints are
    /// written with multi-row inserts.
    pub async fn apply_membership_changes(
        &self,
        shop_id: i64,
        source: &str,
        changes: &[(i64, MembershipChange)],
    ) -> StoreResult<()> {
        /// Rows per INSERT: 5 parameters each stays far below both backends' limits.
        const ROWS_PER_INSERT: usize = 1_000;
        let joins: Vec<(i64, &String)> = changes
            .iter()
            .flat_map(|(customer_id, change)| change.joined.iter().map(move |s| (*customer_id, s)))
            .collect();
        if joins.is_empty() && changes.iter().all(|(_, change)| change.left.is_empty()) {
            return Ok(());
        }
        let now = now_ms();
        let numbered = self.backend() == super::Backend::Postgres;
        let mut w = self.write().await?;
        for (customer_id, change) in changes {
            for segment in &change.left {
                end_stint(&mut w.tx, shop_id, *customer_id, source, segment, now).await?;
            }
        }
        for chunk in joins.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO segment_memberships (shop_id, segment, customer_id, source, joined_at) VALUES {} \
                 ON CONFLICT (shop_id, segment, customer_id, joined_at) DO NOTHING",
                super::bulk::value_tuples(numbered, chunk.len(), 5)
            );
            let mut query = sqlx::query(&sql);
            for (customer_id, segment) in chunk {
                query = query.bind(shop_id).bind(*segment).bind(*customer_id).bind(source).bind(now);
            }
            query.execute(&mut *w.tx).await?;
        }
        let listeners = crate::journeys::listeners::load(&mut w.tx, shop_id).await?;
        if !listeners.is_empty() {
            for (customer_id, change) in changes {
                crate::journeys::triggers::segments_changed(&mut w.tx, shop_id, &listeners, *customer_id, change, now)
                    .await?;
            }
        }
        w.commit().await
    }

    /// Refreshes the planner's statistics of the membership table (PostgreSQL; SQLite
    /// plans these lookups well without them).
    pub async fn analyze_memberships(&self) -> StoreResult<()> {
        if self.backend() == super::Backend::Postgres {
            sqlx::query("ANALYZE segment_memberships").execute(self.pool()).await?;
        }
        Ok(())
    }

    async fn grouped(&self, sql: &str, shop_id: i64, first: i64, last: i64) -> StoreResult<HashMap<i64, Vec<String>>> {
        let rows = sqlx::query_as(sql).bind(shop_id).bind(first).bind(last).fetch_all(self.pool()).await?;
        let mut grouped = HashMap::new();
        group_by_customer(&mut grouped, rows);
        Ok(grouped)
    }

    /// Current members of a segment after customer id `after`, in id order.
    pub async fn segment_members(
        &self,
        shop_id: i64,
        segment: &str,
        after: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT customer_id FROM segment_memberships WHERE shop_id = $1 AND segment = $2 AND left_at IS NULL \
             AND customer_id > $3 ORDER BY customer_id LIMIT $4",
        )
        .bind(shop_id)
        .bind(segment)
        .bind(after.unwrap_or(-1))
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
