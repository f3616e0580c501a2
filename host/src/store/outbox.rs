//! Messages plugins asked the host to send, and what became of each: the outbox a
//! delivery worker leases from (`crate::delivery`), with every status a message went
//! through kept in `outbox_history`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::bulk::{AnyQuery, BulkRow, insert_many};
use super::recommendations::placeholders;
use super::{Backend, Db, StoreError, StoreResult, new_id, now_ms};

/// A message to queue.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxMessage {
    pub customer_id: i64,
    pub channel: String,
    pub template: String,
    /// A JSON document for the template. Its reserved keys `journey`, `step` and
    /// `purpose` are also stored in their own columns.
    pub data: String,
    pub source: String,
}

/// Marketing needs consent and counts against frequency caps; transactional does neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Marketing,
    Transactional,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "marketing",
            Self::Transactional => "transactional",
        }
    }

    /// Anything but `transactional` is marketing: a typo must not bypass consent.
    pub fn parse(text: &str) -> Self {
        if text == "transactional" { Self::Transactional } else { Self::Marketing }
    }
}

/// The reserved keys of a message's data: (journey, step, purpose).
fn reserved_keys(data: &str) -> (Option<String>, Option<String>, Purpose) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(data) else {
        return (None, None, Purpose::Marketing);
    };
    let text = |key: &str| map.get(key).and_then(|v| v.as_str()).map(|s| s.chars().take(64).collect::<String>());
    let purpose = text("purpose").map_or(Purpose::Marketing, |p| Purpose::parse(&p));
    (text("journey"), text("step"), purpose)
}

/// Queues a message, due now; returns its id.
pub(crate) async fn push(conn: &mut AnyConnection, shop_id: i64, message: &OutboxMessage) -> StoreResult<i64> {
    let (id, now) = (new_id(), now_ms());
    let (journey, step, purpose) = reserved_keys(&message.data);
    sqlx::query(
        "INSERT INTO outbox (shop_id, id, customer_id, channel, template, data, source, status, created_at, \
         journey, step, purpose, next_attempt_at, updated_at, history_len) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $8, $8, 1)",
    )
    .bind(shop_id)
    .bind(id)
    .bind(message.customer_id)
    .bind(&message.channel)
    .bind(&message.template)
    .bind(&message.data)
    .bind(&message.source)
    .bind(now)
    .bind(journey)
    .bind(step)
    .bind(purpose.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO outbox_history (shop_id, message_id, seq, at, status, reason) VALUES ($1, $2, 1, $3, 'queued', NULL)",
    )
    .bind(shop_id)
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// A stored message and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub shop_id: i64,
    pub id: i64,
    pub customer_id: i64,
    pub channel: String,
    pub template: String,
    pub data: serde_json::Value,
    pub source: String,
    pub journey: Option<String>,
    pub step: Option<String>,
    pub purpose: Purpose,
    /// queued, deferred, sending, sent, failed (dead-lettered) or suppressed.
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub updated_at: i64,
}

const MESSAGE_COLUMNS: &str = "shop_id, id, customer_id, channel, template, data, source, journey, step, purpose, \
     status, reason, attempts, next_attempt_at, created_at, sent_at, updated_at";

fn message_from_row(row: &AnyRow) -> StoreResult<Message> {
    let data: String = row.try_get("data")?;
    Ok(Message {
        shop_id: row.try_get("shop_id")?,
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        channel: row.try_get("channel")?,
        template: row.try_get("template")?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
        source: row.try_get("source")?,
        journey: row.try_get("journey")?,
        step: row.try_get("step")?,
        purpose: Purpose::parse(&row.try_get::<String, _>("purpose")?),
        status: row.try_get("status")?,
        reason: row.try_get("reason")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// One status a message went through.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub at: i64,
    pub status: String,
    pub reason: Option<String>,
}

/// Which messages a listing returns.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub customer_id: Option<i64>,
    pub status: Option<String>,
    pub limit: i64,
}

/// Leases the messages due at `now` to `owner` until `lease_until`, in one statement:
/// queued or deferred ones whose time has come, and ones left `sending` by a worker
/// whose lease ran out. On PostgreSQL `SKIP LOCKED` keeps two workers off one message;
/// on SQLite the write transaction already does. Each comes back with the status it had.
pub(crate) async fn lease_due(
    conn: &mut AnyConnection,
    backend: Backend,
    now: i64,
    owner: &str,
    lease_until: i64,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let lock = backend.lease_lock();
    let rows = sqlx::query(&format!(
        "UPDATE outbox SET lease_owner = $3, lease_until = $4 WHERE (shop_id, id) IN (\
         SELECT shop_id, id FROM outbox WHERE \
         (status IN ('queued', 'deferred') AND next_attempt_at <= $1) OR (status = 'sending' AND lease_until < $1) \
         ORDER BY next_attempt_at LIMIT $2 {lock}) RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(now)
    .bind(limit)
    .bind(owner)
    .bind(lease_until)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(message_from_row).collect()
}

/// Most ids bound in one `IN (…)` list.
const IDS_PER_STATEMENT: usize = 500;

/// What the contact policy needs to know of one shop's recipients in a batch, read with
/// one query per kind of fact instead of one per message.
#[derive(Debug, Default)]
pub(crate) struct RecipientFacts {
    /// (customer, channel) → marketing messages sent (or being sent) since the window
    /// opened, and the latest send.
    sends: HashMap<(i64, String), (i64, Option<i64>)>,
    unsubscribed: HashSet<i64>,
}

impl RecipientFacts {
    pub(crate) async fn read(
        conn: &mut AnyConnection,
        shop_id: i64,
        customer_ids: &[i64],
        since: i64,
    ) -> StoreResult<Self> {
        let mut facts = Self::default();
        for chunk in customer_ids.chunks(IDS_PER_STATEMENT) {
            let ids = placeholders(3, chunk.len());
            let sql = format!(
                "SELECT customer_id, channel, COUNT(*) AS n, MAX(sent_at) AS latest FROM outbox \
                 WHERE shop_id = $1 AND sent_at >= $2 AND customer_id IN ({ids}) \
                 AND purpose = 'marketing' AND status IN ('sending', 'sent') GROUP BY customer_id, channel"
            );
            let mut query = sqlx::query(&sql).bind(shop_id).bind(since);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let key = (row.try_get("customer_id")?, row.try_get("channel")?);
                facts.sends.insert(key, (row.try_get("n")?, row.try_get("latest")?));
            }
            let sql = format!("SELECT customer_id FROM unsubscribes WHERE shop_id = $1 AND customer_id IN ({})", {
                placeholders(2, chunk.len())
            });
            let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(shop_id);
            for id in chunk {
                query = query.bind(*id);
            }
            facts.unsubscribed.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(facts)
    }

    /// Marketing messages on `channel` to the customer in the window, and the latest.
    pub(crate) fn marketing_sends(&self, customer_id: i64, channel: &str) -> (i64, Option<i64>) {
        self.sends.get(&(customer_id, channel.to_owned())).copied().unwrap_or((0, None))
    }

    /// Counts a marketing message marked `sending` at `at` by this batch, as the next
    /// message's read would have seen it. A resend was already counted.
    pub(crate) fn note_marketing_send(&mut self, customer_id: i64, channel: &str, at: i64, resend: bool) {
        let entry = self.sends.entry((customer_id, channel.to_owned())).or_insert((0, None));
        if !resend {
            entry.0 += 1;
        }
        entry.1 = Some(entry.1.map_or(at, |latest| latest.max(at)));
    }

    pub(crate) fn unsubscribed(&self, customer_id: i64) -> bool {
        self.unsubscribed.contains(&customer_id)
    }
}

/// A change of a message's status, applied only while `owner` holds its lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Transition<'a> {
    pub(crate) status: &'static str,
    pub(crate) reason: Option<Cow<'a, str>>,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) sent_at: Option<i64>,
    /// Keeps the lease (while sending) instead of releasing it.
    pub(crate) lease_until: Option<i64>,
    pub(crate) count_attempt: bool,
}

/// One `outbox_history` row.
struct HistoryRow<'a> {
    message_id: i64,
    seq: i64,
    at: i64,
    status: &'static str,
    reason: Option<&'a str>,
}

impl BulkRow for HistoryRow<'_> {
    const TABLE: &'static str = "outbox_history";
    const COLUMNS: &'static [&'static str] = &["shop_id", "message_id", "seq", "at", "status", "reason"];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query.bind(shop_id).bind(self.message_id).bind(self.seq).bind(self.at).bind(self.status).bind(self.reason)
    }
}

/// Applies each transition to its message while `owner` still holds it, and records
/// it in the message's history: one UPDATE per shop and distinct transition, one
/// multi-row INSERT of history per shop. Returns the ids of the messages it changed.
pub(crate) async fn apply_transitions(
    conn: &mut AnyConnection,
    owner: &str,
    now: i64,
    changes: &[(&Message, Transition<'_>)],
) -> StoreResult<HashSet<i64>> {
    let mut groups: HashMap<(i64, &Transition<'_>), Vec<i64>> = HashMap::new();
    for (message, transition) in changes {
        groups.entry((message.shop_id, transition)).or_default().push(message.id);
    }
    let mut applied = HashSet::with_capacity(changes.len());
    let mut history: HashMap<i64, Vec<HistoryRow<'_>>> = HashMap::new();
    for ((shop_id, transition), ids) in groups {
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "UPDATE outbox SET status = $4, reason = $5, next_attempt_at = COALESCE($6, next_attempt_at), \
                 sent_at = $7, lease_until = $8, lease_owner = CASE WHEN $8 IS NULL THEN NULL ELSE lease_owner END, \
                 attempts = attempts + $9, updated_at = $3, history_len = history_len + 1 \
                 WHERE shop_id = $1 AND lease_owner = $2 AND id IN ({}) RETURNING id, history_len",
                placeholders(10, chunk.len())
            );
            let mut query = sqlx::query(&sql)
                .bind(shop_id)
                .bind(owner)
                .bind(now)
                .bind(transition.status)
                .bind(transition.reason.as_deref())
                .bind(transition.next_attempt_at)
                .bind(transition.sent_at)
                .bind(transition.lease_until)
                .bind(i64::from(transition.count_attempt));
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let (message_id, seq): (i64, i64) = (row.try_get("id")?, row.try_get("history_len")?);
                applied.insert(message_id);
                history.entry(shop_id).or_default().push(HistoryRow {
                    message_id,
                    seq,
                    at: now,
                    status: transition.status,
                    reason: transition.reason.as_deref(),
                });
            }
        }
    }
    for (shop_id, rows) in history {
        insert_many(conn, shop_id, &rows).await?;
    }
    Ok(applied)
}

impl Db {
    /// Queues a message as a plugin's `send-message` action would; returns its id.
    pub async fn queue_message(&self, shop_id: i64, message: &OutboxMessage) -> StoreResult<i64> {
        let mut w = self.write().await?;
        let id = push(&mut w.tx, shop_id, message).await?;
        w.commit().await?;
        Ok(id)
    }

    /// A shop's messages, newest first.
    pub async fn messages(&self, shop_id: i64, filter: &MessageFilter) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE shop_id = $1 AND ($2 IS NULL OR customer_id = $2) \
             AND ($3 IS NULL OR status = $3) ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(shop_id)
        .bind(filter.customer_id)
        .bind(filter.status.as_deref())
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    pub async fn message(&self, shop_id: i64, id: i64) -> StoreResult<Option<Message>> {
        let row = sqlx::query(&format!("SELECT {MESSAGE_COLUMNS} FROM outbox WHERE shop_id = $1 AND id = $2"))
            .bind(shop_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    /// Every status a message went through, oldest first.
    pub async fn message_history(&self, shop_id: i64, id: i64) -> StoreResult<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT at, status, reason FROM outbox_history WHERE shop_id = $1 AND message_id = $2 ORDER BY seq",
        )
        .bind(shop_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry { at: r.try_get("at")?, status: r.try_get("status")?, reason: r.try_get("reason")? })
            })
            .collect()
    }

    /// Records a click on a tracked link of a message of the shop.
    pub async fn record_click(&self, shop_id: i64, message_id: i64, url: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query("INSERT INTO message_clicks (shop_id, id, message_id, url, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(shop_id)
            .bind(new_id())
            .bind(message_id)
            .bind(url)
            .bind(now_ms())
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(())
    }

    pub async fn message_clicks(&self, shop_id: i64, message_id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM message_clicks WHERE shop_id = $1 AND message_id = $2")
            .bind(shop_id)
            .bind(message_id)
            .fetch_one(self.pool())
            .await?)
    }

    /// Unsubscribes a message's recipient from marketing: clears their consent and
    /// remembers why. Returns the customer, `NotFound` for no such message.
    pub async fn unsubscribe(&self, shop_id: i64, message_id: i64) -> StoreResult<i64> {
        let now = now_ms();
        let mut w = self.write().await?;
        let customer_id: i64 = sqlx::query_scalar("SELECT customer_id FROM outbox WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(message_id)
            .fetch_optional(&mut *w.tx)
            .await?
            .ok_or(StoreError::NotFound("message"))?;
        sqlx::query("UPDATE customers SET marketing_consent = 0, updated_at = $3 WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(customer_id)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query(
            "INSERT INTO unsubscribes (shop_id, customer_id, message_id, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (shop_id, customer_id) DO UPDATE SET message_id = $3, at = $4",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(message_id)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(customer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_read_and_anything_but_transactional_is_marketing() {
        let (journey, step, purpose) = reserved_keys(r#"{"journey":"welcome","step":"1","purpose":"transactional"}"#);
        assert_eq!(
            (journey.as_deref(), step.as_deref(), purpose),
            (Some("welcome"), Some("1"), Purpose::Transactional)
        );
        assert_eq!(reserved_keys(r#"{"purpose":"Transactional "}"#).2, Purpose::Marketing);
        assert_eq!(reserved_keys("not json"), (None, None, Purpose::Marketing));
    }
}
