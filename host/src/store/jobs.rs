//! Durable jobs: scheduled work (points expiry, batch recomputes, model builds, journey
//! timers) as rows that workers lease. A lease expires, so a worker that crashes
//! mid-job leaves it to be retried; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets several
//! host replicas lease concurrently without ever taking the same job.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::bulk::{AnyQuery, BulkRow, insert_many};
use super::{Db, StoreResult, new_id, now_ms};

/// Which jobs a lease may take: one shop's or any, and only some kinds or all of them
/// (`kinds` empty) or all but some (`exclude_kinds`).
#[derive(Debug, Clone, Copy)]
pub struct JobScope<'a> {
    pub shop_id: Option<i64>,
    pub kinds: &'a [&'a str],
    pub exclude_kinds: bool,
}

impl JobScope<'_> {
    pub const ALL: JobScope<'static> = JobScope { shop_id: None, kinds: &[], exclude_kinds: false };

    /// The SQL this scope adds to a `WHERE`, its parameters numbered from `first`: the
    /// shop (when named), then the kinds.
    fn condition(&self, first: usize) -> String {
        let mut sql = String::new();
        let mut next = first;
        if self.shop_id.is_some() {
            sql.push_str(&format!(" AND jobs.shop_id = ${next}"));
            next += 1;
        }
        if !self.kinds.is_empty() {
            let not = if self.exclude_kinds { "NOT " } else { "" };
            let list = super::recommendations::placeholders(next, self.kinds.len());
            sql.push_str(&format!(" AND jobs.kind {not}IN ({list})"));
        }
        sql
    }

    /// Binds this scope's parameters in [`JobScope::condition`]'s order.
    fn bind<'q>(&self, query: AnyQuery<'q>) -> AnyQuery<'q>
    where
        Self: 'q,
    {
        let query = match self.shop_id {
            Some(shop_id) => query.bind(shop_id),
            None => query,
        };
        self.kinds.iter().fold(query, |query, kind| query.bind(*kind))
    }
}

/// A leased job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    #[serde(serialize_with = "crate::api::ids::string")]
    pub shop_id: i64,
    #[serde(serialize_with = "crate::api::ids::string")]
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub run_at: i64,
    pub attempts: i64,
}

/// The state of a job, for listings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub run_at: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// After this many failed attempts a job stays failed.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long a job waits after its first failed attempt; each further failure doubles it.
pub const RETRY_AFTER_MS: i64 = 60 * 1000;

/// When a job that failed its `attempts`-th attempt at `now` is tried again.
pub fn retry_at(now: i64, attempts: i64) -> i64 {
    now + (RETRY_AFTER_MS << (attempts - 1).clamp(0, 16))
}

fn payload_from_row(row: &AnyRow) -> StoreResult<serde_json::Value> {
    let payload: String = row.try_get("payload")?;
    serde_json::from_str(&payload).map_err(|e| super::StoreError::Corrupt(format!("job payload: {e}")))
}

fn job_from_row(row: &AnyRow) -> StoreResult<Job> {
    Ok(Job {
        shop_id: row.try_get("shop_id")?,
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: payload_from_row(row)?,
        run_at: row.try_get("run_at")?,
        attempts: row.try_get("attempts")?,
    })
}

/// A job queued already leased to the code that queued it, which runs it at once. If
/// that code dies first (or fails), the lease runs out and the scheduler runs the job.
#[derive(Debug, Clone)]
pub struct InlineJob {
    pub job: Job,
    pub owner: String,
}

/// How long the code that queued an [`InlineJob`] holds it before the scheduler may take
/// it over: well past how long its run takes when all is well.
pub const INLINE_LEASE_MS: i64 = 60 * 1000;

/// Queues a job unless one with the same `dedup_key` exists in the shop; `lease` (owner,
/// until) queues it already running, its first attempt. Returns the new job's id.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    shop_id: i64,
    kind: &str,
    payload: &serde_json::Value,
    run_at: i64,
    dedup_key: &str,
    lease: Option<(&str, i64)>,
) -> StoreResult<Option<i64>> {
    let (id, now) = (new_id(), now_ms());
    let inserted = sqlx::query(
        "INSERT INTO jobs (shop_id, id, kind, payload, dedup_key, run_at, status, attempts, lease_owner, lease_until, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
         ON CONFLICT (shop_id, dedup_key) DO NOTHING",
    )
    .bind(shop_id)
    .bind(id)
    .bind(kind)
    .bind(payload.to_string())
    .bind(dedup_key)
    .bind(run_at)
    .bind(if lease.is_some() { "running" } else { "queued" })
    .bind(i64::from(lease.is_some()))
    .bind(lease.map(|(owner, _)| owner))
    .bind(lease.map(|(_, until)| until))
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok((inserted == 1).then_some(id))
}

/// A queued job to insert with others in one statement ([`enqueue_many`]).
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub kind: &'static str,
    /// Serialized JSON.
    pub payload: String,
    pub dedup_key: String,
    pub run_at: i64,
}

impl BulkRow for NewJob {
    const TABLE: &'static str = "jobs";
    const COLUMNS: &'static [&'static str] =
        &["shop_id", "id", "kind", "payload", "dedup_key", "run_at", "status", "attempts", "created_at", "updated_at"];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let now = now_ms();
        query
            .bind(shop_id)
            .bind(new_id())
            .bind(self.kind)
            .bind(self.payload.as_str())
            .bind(self.dedup_key.as_str())
            .bind(self.run_at)
            .bind("queued")
            .bind(0_i64)
            .bind(now)
            .bind(now)
    }
}

/// Queues many jobs with as few statements as the parameter limit allows, skipping those
/// whose `dedup_key` exists in the shop (or repeats in `jobs`); returns how many were new.
pub(crate) async fn enqueue_many(conn: &mut AnyConnection, shop_id: i64, jobs: &[NewJob]) -> StoreResult<u64> {
    insert_many(conn, shop_id, jobs).await
}

/// Queues a job due now, leased for [`INLINE_LEASE_MS`] to a new owner the caller holds,
/// unless one with the same `dedup_key` exists.
pub(crate) async fn enqueue_inline(
    conn: &mut AnyConnection,
    shop_id: i64,
    kind: &str,
    payload: &serde_json::Value,
    dedup_key: &str,
) -> StoreResult<Option<InlineJob>> {
    let (now, owner) = (now_ms(), format!("inline-{}", new_id()));
    let lease = Some((owner.as_str(), now + INLINE_LEASE_MS));
    let Some(id) = enqueue(conn, shop_id, kind, payload, now, dedup_key, lease).await? else { return Ok(None) };
    let job = Job { shop_id, id, kind: kind.to_owned(), payload: payload.clone(), run_at: now, attempts: 1 };
    Ok(Some(InlineJob { job, owner }))
}

/// Removes queued jobs whose dedup key starts with `prefix`; returns how many.
pub(crate) async fn cancel_queued(conn: &mut AnyConnection, shop_id: i64, prefix: &str) -> StoreResult<u64> {
    let pattern = format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    Ok(sqlx::query("DELETE FROM jobs WHERE shop_id = $1 AND status = 'queued' AND dedup_key LIKE $2 ESCAPE '\\'")
        .bind(shop_id)
        .bind(pattern)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Marks a job done in the caller's transaction (the one applying what the job did),
/// if `owner` still holds it; returns false, and changes nothing, if another worker
/// took it over or finished it.
pub(crate) async fn settle(conn: &mut AnyConnection, job: &Job, owner: &str) -> StoreResult<bool> {
    Ok(settle_many(conn, job.shop_id, &[job], owner).await?.contains(&job.id))
}

/// [`settle`] for many jobs of one shop in one statement; returns the ids of those
/// `owner` still held (now done). The others are left as they are.
pub(crate) async fn settle_many(
    conn: &mut AnyConnection,
    shop_id: i64,
    jobs: &[&Job],
    owner: &str,
) -> StoreResult<std::collections::HashSet<i64>> {
    let mut settled = std::collections::HashSet::with_capacity(jobs.len());
    for chunk in jobs.chunks(1_000) {
        let sql = format!(
            "UPDATE jobs SET status = 'done', updated_at = $3 WHERE shop_id = $1 AND lease_owner = $2 \
             AND status = 'running' AND id IN ({}) RETURNING id",
            super::recommendations::placeholders(4, chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(shop_id).bind(owner).bind(now_ms());
        for job in chunk {
            query = query.bind(job.id);
        }
        settled.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(settled)
}

impl Db {
    /// Queues a job unless one with the same `dedup_key` exists in the shop; returns
    /// whether it was queued.
    pub async fn enqueue_job(
        &self,
        shop_id: i64,
        kind: &str,
        payload: &serde_json::Value,
        run_at: i64,
        dedup_key: &str,
    ) -> StoreResult<bool> {
        let mut w = self.write().await?;
        let queued = enqueue(&mut w.tx, shop_id, kind, payload, run_at, dedup_key, None).await?;
        w.commit().await?;
        Ok(queued.is_some())
    }

    /// Queues a job due now unless a job of the same kind is already queued and due in
    /// the shop (a second one would redo the same work); returns whether it was queued.
    pub async fn enqueue_job_unless_due(
        &self,
        shop_id: i64,
        kind: &str,
        payload: &serde_json::Value,
        dedup_key: &str,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut w = self.write().await?;
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE shop_id = $1 AND kind = $2 AND status = 'queued' AND run_at <= $3 LIMIT 1",
        )
        .bind(shop_id)
        .bind(kind)
        .bind(now)
        .fetch_optional(&mut *w.tx)
        .await?;
        let queued = match pending {
            Some(_) => None,
            None => enqueue(&mut w.tx, shop_id, kind, payload, now, dedup_key, None).await?,
        };
        w.commit().await?;
        Ok(queued.is_some())
    }

    /// Leases the most overdue job (queued, or running with an expired lease) to `owner`
    /// until `lease_ms` from now.
    pub async fn lease_job(&self, owner: &str, lease_ms: i64) -> StoreResult<Option<Job>> {
        self.lease_job_at(owner, now_ms(), lease_ms).await
    }

    /// [`Db::lease_job`] as if it were `now`.
    pub async fn lease_job_at(&self, owner: &str, now: i64, lease_ms: i64) -> StoreResult<Option<Job>> {
        self.lease_job_in(JobScope::ALL, owner, now, lease_ms).await
    }

    /// [`Db::lease_job_at`] among the jobs `scope` names.
    pub async fn lease_job_in(
        &self,
        scope: JobScope<'_>,
        owner: &str,
        now: i64,
        lease_ms: i64,
    ) -> StoreResult<Option<Job>> {
        let lock = self.backend().lease_lock();
        let mut w = self.write().await?;
        // A worker that died in a job's last attempt left it running; it will not be
        // leased again, so it fails for good here (and can be retried by the merchant).
        sqlx::query(
            "UPDATE jobs SET status = 'failed', updated_at = $1, \
             last_error = 'its worker stopped during the last attempt' \
             WHERE status = 'running' AND lease_until < $1 AND attempts >= $2",
        )
        .bind(now)
        .bind(MAX_ATTEMPTS)
        .execute(&mut *w.tx)
        .await?;
        let sql = format!(
            "SELECT shop_id, id FROM jobs WHERE run_at <= $1 AND attempts < $2 \
             AND (status = 'queued' OR (status = 'running' AND lease_until < $1)){} \
             ORDER BY run_at LIMIT 1 {lock}",
            scope.condition(3)
        );
        let candidate = scope.bind(sqlx::query(&sql).bind(now).bind(MAX_ATTEMPTS)).fetch_optional(&mut *w.tx).await?;
        let Some(candidate) = candidate else {
            w.commit().await?;
            return Ok(None);
        };
        let (shop_id, id): (i64, i64) = (candidate.try_get("shop_id")?, candidate.try_get("id")?);
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', lease_owner = $3, lease_until = $4, attempts = attempts + 1, \
             updated_at = $5 WHERE shop_id = $1 AND id = $2 \
             RETURNING shop_id, id, kind, payload, run_at, attempts",
        )
        .bind(shop_id)
        .bind(id)
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        job_from_row(&row).map(Some)
    }

    /// Leases up to `limit` more queued jobs of `kind` of one shop due at `now` to
    /// `owner`, oldest first, with one statement: the rest of a batch whose first job the
    /// worker already holds.
    pub async fn lease_more(
        &self,
        shop_id: i64,
        kind: &str,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Job>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let lock = self.backend().lease_lock();
        let mut w = self.write().await?;
        let rows = sqlx::query(&format!(
            "UPDATE jobs SET status = 'running', lease_owner = $3, lease_until = $4, attempts = attempts + 1, \
             updated_at = $5 WHERE (shop_id, id) IN (SELECT shop_id, id FROM jobs WHERE shop_id = $1 AND kind = $2 \
             AND status = 'queued' AND run_at <= $5 AND attempts < $7 ORDER BY run_at LIMIT $6 {lock}) \
             RETURNING shop_id, id, kind, payload, run_at, attempts"
        ))
        .bind(shop_id)
        .bind(kind)
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit)
        .bind(MAX_ATTEMPTS)
        .fetch_all(&mut *w.tx)
        .await?;
        w.commit().await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<StoreResult<Vec<_>>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    /// Shops other than `except` with a queued job in `scope` due at `now`, in id order
    /// (at most `limit`): whose turn it is when one shop has had the worker for a while.
    pub async fn shops_with_due_jobs(
        &self,
        scope: JobScope<'_>,
        except: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<i64>> {
        let sql = format!(
            "SELECT s.id FROM shops s WHERE s.id <> $1 AND EXISTS (SELECT 1 FROM jobs WHERE jobs.shop_id = s.id \
             AND jobs.status = 'queued' AND jobs.run_at <= $2{}) ORDER BY s.id LIMIT {limit}",
            JobScope { shop_id: None, ..scope }.condition(3)
        );
        let query = sqlx::query_scalar::<_, i64>(&sql).bind(except).bind(now);
        let query = scope.kinds.iter().fold(query, |query, kind| query.bind(*kind));
        Ok(query.fetch_all(self.pool()).await?)
    }

    /// Extends `owner`'s lease of a running job to `until` (a heartbeat, so a job longer
    /// than a lease is not taken over by another worker); returns whether `owner` still
    /// held it.
    pub async fn renew_lease(&self, job: &Job, owner: &str, until: i64) -> StoreResult<bool> {
        let mut w = self.write().await?;
        let renewed = sqlx::query(
            "UPDATE jobs SET lease_until = $4, updated_at = $5 \
             WHERE shop_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'running'",
        )
        .bind(job.shop_id)
        .bind(job.id)
        .bind(owner)
        .bind(until)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(renewed == 1)
    }

    /// Marks a job done, if `owner` still holds its lease; returns whether it did.
    pub async fn complete_job(&self, job: &Job, owner: &str) -> StoreResult<bool> {
        self.finish_job(job, owner, "done", None).await
    }

    /// Records a failure; the job is retried at [`retry_at`] (its lease is cut short or
    /// drawn out to then), until it has failed [`MAX_ATTEMPTS`] times and stays failed.
    pub async fn fail_job(&self, job: &Job, owner: &str, error: &str) -> StoreResult<bool> {
        let status = if job.attempts >= MAX_ATTEMPTS { "failed" } else { "running" };
        self.finish_job(job, owner, status, Some(error)).await
    }

    async fn finish_job(&self, job: &Job, owner: &str, status: &str, error: Option<&str>) -> StoreResult<bool> {
        let now = now_ms();
        let mut w = self.write().await?;
        let updated = sqlx::query(
            "UPDATE jobs SET status = $4, last_error = COALESCE($5, last_error), updated_at = $6, \
             lease_until = COALESCE($7, lease_until) WHERE shop_id = $1 AND id = $2 AND lease_owner = $3",
        )
        .bind(job.shop_id)
        .bind(job.id)
        .bind(owner)
        .bind(status)
        .bind(error)
        .bind(now)
        .bind(error.map(|_| retry_at(now, job.attempts)))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(updated == 1)
    }

    /// Gives a job that failed for good its attempts back, due now: for after the merchant
    /// fixed what made it fail. Refused for a job that has not failed for good.
    pub async fn retry_failed_job(&self, shop_id: i64, id: i64) -> StoreResult<()> {
        let now = now_ms();
        let mut w = self.write().await?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM jobs WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(id)
            .fetch_optional(&mut *w.tx)
            .await?;
        match status.as_deref() {
            None => return Err(super::StoreError::NotFound("job")),
            Some("failed") => {}
            Some(other) => return Err(super::StoreError::Conflict(format!("job {id} is {other}, not failed"))),
        }
        sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $3, lease_owner = NULL, lease_until = NULL, \
             updated_at = $3 WHERE shop_id = $1 AND id = $2",
        )
        .bind(shop_id)
        .bind(id)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(())
    }

    pub async fn jobs(&self, shop_id: i64, limit: i64) -> StoreResult<Vec<JobStatus>> {
        self.jobs_where(shop_id, "", limit).await
    }

    /// The shop's jobs that failed for good, newest first.
    pub async fn failed_jobs(&self, shop_id: i64, limit: i64) -> StoreResult<Vec<JobStatus>> {
        self.jobs_where(shop_id, "AND status = 'failed'", limit).await
    }

    async fn jobs_where(&self, shop_id: i64, condition: &str, limit: i64) -> StoreResult<Vec<JobStatus>> {
        let rows = sqlx::query(&format!(
            "SELECT id, kind, payload, status, run_at, attempts, last_error FROM jobs WHERE shop_id = $1 {condition} \
             ORDER BY run_at DESC LIMIT $2"
        ))
        .bind(shop_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobStatus {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    payload: payload_from_row(r)?,
                    status: r.try_get("status")?,
                    run_at: r.try_get("run_at")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}
