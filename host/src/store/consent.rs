//! Consent kept on the server: a log of every statement (tracking, marketing) with its
//! source, time and the text version agreed to, and the current state per subject — a
//! customer or an anonymous browser. A customer's current marketing consent is also
//! kept on the customer row, which the delivery policy reads.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use super::{Db, StoreResult, new_id, now_ms};

/// Whose consent a record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Customer(i64),
    Anonymous(String),
}

impl Subject {
    fn parts(&self) -> (&'static str, String) {
        match self {
            Self::Customer(id) => ("customer", id.to_string()),
            Self::Anonymous(id) => ("anonymous", id.clone()),
        }
    }
}

/// Where a statement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The shopper, through the storefront widget's banner.
    Widget,
    /// The store's back end (secret key).
    Backend,
    /// A merchant import.
    Import,
    /// An unsubscribe link.
    Unsubscribe,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Widget => "widget",
            Self::Backend => "backend",
            Self::Import => "import",
            Self::Unsubscribe => "unsubscribe",
        }
    }
}

/// One statement: a purpose left `None` is not changed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    pub tracking: Option<bool>,
    pub marketing: Option<bool>,
    pub source: Source,
    pub text_version: Option<&'a str>,
}

/// The current consent of a subject; `None`: never stated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentState {
    pub tracking: Option<bool>,
    pub marketing: Option<bool>,
    pub text_version: Option<String>,
    pub source: Option<String>,
    pub updated_at: Option<i64>,
}

/// One row of the consent log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentRecord {
    pub subject_kind: String,
    pub subject: String,
    pub tracking: Option<bool>,
    pub marketing: Option<bool>,
    pub source: String,
    pub text_version: Option<String>,
    pub at: i64,
}

fn flag(value: Option<i64>) -> Option<bool> {
    value.map(|v| v != 0)
}

pub(crate) async fn state(conn: &mut AnyConnection, shop_id: i64, subject: &Subject) -> StoreResult<ConsentState> {
    let (kind, id) = subject.parts();
    let row = sqlx::query(
        "SELECT tracking, marketing, text_version, source, updated_at FROM consent_state \
         WHERE shop_id = $1 AND subject_kind = $2 AND subject = $3",
    )
    .bind(shop_id)
    .bind(kind)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(ConsentState::default()) };
    Ok(ConsentState {
        tracking: flag(row.try_get("tracking")?),
        marketing: flag(row.try_get("marketing")?),
        text_version: row.try_get("text_version")?,
        source: Some(row.try_get("source")?),
        updated_at: Some(row.try_get("updated_at")?),
    })
}

/// Appends a statement to the log and folds it into the subject's current state (and,
/// for a customer's marketing consent, into the customer row the delivery policy reads).
pub(crate) async fn record(
    conn: &mut AnyConnection,
    shop_id: i64,
    subject: &Subject,
    statement: &Statement<'_>,
) -> StoreResult<ConsentState> {
    let (kind, id) = subject.parts();
    let at = now_ms();
    sqlx::query(
        "INSERT INTO consent_log (shop_id, id, subject_kind, subject, tracking, marketing, source, text_version, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(shop_id)
    .bind(new_id())
    .bind(kind)
    .bind(&id)
    .bind(statement.tracking.map(i64::from))
    .bind(statement.marketing.map(i64::from))
    .bind(statement.source.as_str())
    .bind(statement.text_version)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    let current = state(conn, shop_id, subject).await?;
    let next = ConsentState {
        tracking: statement.tracking.or(current.tracking),
        marketing: statement.marketing.or(current.marketing),
        text_version: statement.text_version.map(str::to_owned).or(current.text_version),
        source: Some(statement.source.as_str().to_owned()),
        updated_at: Some(at),
    };
    write_state(conn, shop_id, kind, &id, &next).await?;
    if let (Subject::Customer(customer_id), Some(marketing)) = (subject, statement.marketing) {
        sqlx::query("UPDATE customers SET marketing_consent = $3, updated_at = $4 WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(customer_id)
            .bind(i64::from(marketing))
            .bind(at)
            .execute(conn)
            .await?;
    }
    Ok(next)
}

async fn write_state(
    conn: &mut AnyConnection,
    shop_id: i64,
    kind: &str,
    id: &str,
    state: &ConsentState,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO consent_state (shop_id, subject_kind, subject, tracking, marketing, text_version, source, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (shop_id, subject_kind, subject) DO UPDATE SET \
         tracking = excluded.tracking, marketing = excluded.marketing, text_version = excluded.text_version, \
         source = excluded.source, updated_at = excluded.updated_at",
    )
    .bind(shop_id)
    .bind(kind)
    .bind(id)
    .bind(state.tracking.map(i64::from))
    .bind(state.marketing.map(i64::from))
    .bind(&state.text_version)
    .bind(state.source.as_deref().unwrap_or("backend"))
    .bind(state.updated_at.unwrap_or_else(now_ms))
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a merged-away customer's consent log to the survivor; per purpose, the later
/// statement of the two becomes the survivor's state. Returns the log rows moved.
pub(crate) async fn merge_subjects(
    conn: &mut AnyConnection,
    shop_id: i64,
    loser: i64,
    winner: i64,
) -> StoreResult<u64> {
    let (loser_s, winner_s) = (Subject::Customer(loser), Subject::Customer(winner));
    let (lost, kept) = (state(conn, shop_id, &loser_s).await?, state(conn, shop_id, &winner_s).await?);
    let moved = sqlx::query(
        "UPDATE consent_log SET subject = $3 WHERE shop_id = $1 AND subject_kind = 'customer' AND subject = $2",
    )
    .bind(shop_id)
    .bind(loser.to_string())
    .bind(winner.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if lost.updated_at.is_none() {
        return Ok(moved);
    }
    let (newer, older) = if lost.updated_at > kept.updated_at { (&lost, &kept) } else { (&kept, &lost) };
    let merged = ConsentState {
        tracking: newer.tracking.or(older.tracking),
        marketing: newer.marketing.or(older.marketing),
        text_version: newer.text_version.clone().or(older.text_version.clone()),
        source: newer.source.clone(),
        updated_at: newer.updated_at,
    };
    write_state(conn, shop_id, "customer", &winner.to_string(), &merged).await?;
    sqlx::query("DELETE FROM consent_state WHERE shop_id = $1 AND subject_kind = 'customer' AND subject = $2")
        .bind(shop_id)
        .bind(loser.to_string())
        .execute(&mut *conn)
        .await?;
    if let Some(marketing) = merged.marketing {
        sqlx::query("UPDATE customers SET marketing_consent = $3 WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(winner)
            .bind(i64::from(marketing))
            .execute(conn)
            .await?;
    }
    Ok(moved)
}

/// The consent log of a set of subjects, oldest first.
pub(crate) async fn log(
    conn: &mut AnyConnection,
    shop_id: i64,
    subjects: &[Subject],
) -> StoreResult<Vec<ConsentRecord>> {
    let mut records = Vec::new();
    for subject in subjects {
        let (kind, id) = subject.parts();
        let rows = sqlx::query(
            "SELECT subject_kind, subject, tracking, marketing, source, text_version, at FROM consent_log \
             WHERE shop_id = $1 AND subject_kind = $2 AND subject = $3 ORDER BY at, id",
        )
        .bind(shop_id)
        .bind(kind)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            records.push(ConsentRecord {
                subject_kind: row.try_get("subject_kind")?,
                subject: row.try_get("subject")?,
                tracking: flag(row.try_get("tracking")?),
                marketing: flag(row.try_get("marketing")?),
                source: row.try_get("source")?,
                text_version: row.try_get("text_version")?,
                at: row.try_get("at")?,
            });
        }
    }
    records.sort_by_key(|r| r.at);
    Ok(records)
}

/// Deletes the consent log and state of these subjects (erasure).
pub(crate) async fn forget(conn: &mut AnyConnection, shop_id: i64, subjects: &[Subject]) -> StoreResult<u64> {
    let mut deleted = 0;
    for subject in subjects {
        let (kind, id) = subject.parts();
        for table in ["consent_log", "consent_state"] {
            deleted +=
                sqlx::query(&format!("DELETE FROM {table} WHERE shop_id = $1 AND subject_kind = $2 AND subject = $3"))
                    .bind(shop_id)
                    .bind(kind)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
        }
    }
    Ok(deleted)
}

impl Db {
    /// Records a statement in its own transaction.
    pub async fn record_consent(
        &self,
        shop_id: i64,
        subject: &Subject,
        statement: &Statement<'_>,
    ) -> StoreResult<ConsentState> {
        let mut w = self.write_storefront().await?;
        let state = record(&mut w.tx, shop_id, subject, statement).await?;
        w.commit().await?;
        Ok(state)
    }

    pub async fn consent_state(&self, shop_id: i64, subject: &Subject) -> StoreResult<ConsentState> {
        let mut conn = self.pool().acquire().await?;
        state(&mut conn, shop_id, subject).await
    }

    /// Whether a browser (and the customer it speaks for, if any) explicitly agreed to
    /// tracking: `Some(true)` or `Some(false)` when either said so (a refusal wins),
    /// `None` when neither ever did.
    pub async fn tracking_consent(
        &self,
        shop_id: i64,
        anonymous_id: Option<&str>,
        customer_id: Option<i64>,
    ) -> StoreResult<Option<bool>> {
        let mut conn = self.pool().acquire().await?;
        let mut answer = None;
        let subjects = anonymous_id
            .map(|a| Subject::Anonymous(a.to_owned()))
            .into_iter()
            .chain(customer_id.map(Subject::Customer));
        for subject in subjects {
            match state(&mut conn, shop_id, &subject).await?.tracking {
                Some(false) => return Ok(Some(false)),
                Some(true) => answer = Some(true),
                None => {}
            }
        }
        Ok(answer)
    }

    /// The consent log of one customer, oldest first.
    pub async fn consent_log(&self, shop_id: i64, customer_id: i64) -> StoreResult<Vec<ConsentRecord>> {
        let mut conn = self.pool().acquire().await?;
        log(&mut conn, shop_id, &[Subject::Customer(customer_id)]).await
    }
}
