//! The scheduler: durable jobs leased from the store and run by whichever host replica
//! gets them first (points expiry, segment recomputes, daily birthday checks,
//! recommendation training, predictor refits, repurchase intervals, journey timers and
//! triggers, order changes the loyalty plugins have not yet all heard of). A job whose
//! worker dies is retried once its lease runs out, one that fails after a backoff that
//! doubles, up to `MAX_ATTEMPTS` in all; recurring jobs queue their next run under a
//! dedup key, so replicas never queue one twice.
//!
//! Each process runs two workers: one for the quick jobs a shopper or merchant waits on
//! ([`QUICK_KINDS`]) and one for nightly batch runs, so a long recompute never delays a
//! cart reminder. Within a worker, shops take turns once one shop has had
//! [`FAIR_STREAK`] jobs in a row, so a shop with a backlog does not hold up the others.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use patron_runtime::World;

use crate::journeys::birthdays::{self, BIRTHDAY_JOB};
use crate::journeys::{self, TRIGGER_JOB};
use crate::plugins::actions::TIMER_JOB;
use crate::plugins::{PluginHost, lock};
use crate::store::jobs::{Job, JobScope};
use crate::store::order_hooks::LOYALTY_JOB;
use crate::store::shops::Shop;
use crate::store::{Db, StoreError, StoreResult, now_ms};

pub const EXPIRE_POINTS: &str = "points.expire";
pub const RECOMPUTE_SEGMENTS: &str = "segments.recompute";
/// Deletes the shop's raw events older than its retention, in batches.
pub const RETAIN_EVENTS: &str = "events.retain";
/// Events deleted per transaction by [`RETAIN_EVENTS`].
const RETENTION_BATCH: i64 = 5_000;
/// Rebuilds the recommendation model of every enabled recommender install.
pub const TRAIN_RECS: &str = "recs.train";
/// Refits every enabled predictor install and refreshes customers' predictions.
pub const FIT_PREDICTIONS: &str = "predictions.fit";
/// Learns how long each product lasts, for the replenishment journey.
pub const LEARN_INTERVALS: &str = "products.intervals";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// How long a worker holds a job before another may take it over.
const LEASE_MS: i64 = 15 * 60 * 1000;
/// How often an idle worker looks for due jobs.
const POLL: Duration = Duration::from_secs(1);
/// Jobs one shop may get in a row before the shops with due jobs waiting behind it get
/// one each.
pub const FAIR_STREAK: u32 = 8;
/// Due journey timers of one shop fired together (one instance per install, one
/// transaction).
pub const TIMER_BATCH: i64 = 200;
/// Shops given a turn at once at most.
const TURNS_AT_ONCE: i64 = 256;

/// The job kinds that answer a shopper or a merchant soon after they act (journey
/// triggers and timers, order changes for loyalty, the daily birthday check). They have
/// their own worker, so an hour-long recompute or training run never holds them up.
pub const QUICK_KINDS: [&str; 4] = [TRIGGER_JOB, TIMER_JOB, LOYALTY_JOB, BIRTHDAY_JOB];

/// A worker's share of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Every job (what tests and `run_once` take).
    All,
    /// [`QUICK_KINDS`].
    Quick,
    /// Everything else: nightly batch runs.
    Batch,
}

impl Lane {
    fn scope(self) -> JobScope<'static> {
        match self {
            Self::All => JobScope::ALL,
            Self::Quick => JobScope { shop_id: None, kinds: &QUICK_KINDS, exclude_kinds: false },
            Self::Batch => JobScope { shop_id: None, kinds: &QUICK_KINDS, exclude_kinds: true },
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Whose turn it is in one lane: the shop served last, how many jobs in a row it had,
/// and the shops waiting for one job each.
#[derive(Debug, Default)]
struct Turns {
    last_shop: Option<i64>,
    streak: u32,
    waiting: VecDeque<i64>,
}

/// Runs due jobs: one quick and one batch worker per host process.
#[derive(Clone)]
pub struct Scheduler {
    db: Db,
    plugins: PluginHost,
    worker: String,
    turns: Arc<[Mutex<Turns>; 3]>,
    timer_batch: i64,
}

/// What running one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Nothing,
    Done { kind: String },
    Failed { kind: String, error: String },
}

fn next_midnight(now: i64) -> i64 {
    (now / DAY_MS + 1) * DAY_MS
}

impl Scheduler {
    pub fn new(db: Db, plugins: PluginHost) -> Self {
        let worker = format!("{}-{}", std::process::id(), crate::store::new_id() % 1_000_000);
        Self { db, plugins, worker, turns: Arc::default(), timer_batch: TIMER_BATCH }
    }

    /// How many due timers of a shop fire together (default [`TIMER_BATCH`]; 1 fires
    /// them one by one, as the throughput benchmark compares).
    pub fn with_timer_batch(mut self, timers: i64) -> Self {
        self.timer_batch = timers.max(1);
        self
    }

    /// Queues every shop's next nightly expiry and recompute (idempotent).
    pub async fn queue_recurring(&self) -> StoreResult<()> {
        let at = next_midnight(now_ms());
        for shop in self.db.shops().await? {
            for kind in [EXPIRE_POINTS, RECOMPUTE_SEGMENTS, TRAIN_RECS, FIT_PREDICTIONS, RETAIN_EVENTS, LEARN_INTERVALS]
            {
                self.db.enqueue_job(shop.id, kind, &serde_json::json!({}), at, &format!("{kind}:{at}")).await?;
            }
            self.queue_birthdays(&shop, now_ms()).await?;
        }
        Ok(())
    }

    /// Queues the shop's birthday check at the first local midnight after `after`
    /// (unix ms), in the shop's time zone (idempotent).
    pub async fn queue_birthdays(&self, shop: &Shop, after: i64) -> StoreResult<()> {
        birthdays::queue_next(&self.db, shop, after).await
    }

    /// Queues a recommendation training run for now, beside the nightly one (a run
    /// already queued for the same millisecond is not queued twice).
    pub async fn queue_training_now(db: &Db, shop_id: i64) -> StoreResult<()> {
        let now = now_ms();
        db.enqueue_job(
            shop_id,
            TRAIN_RECS,
            &serde_json::json!({"once": true}),
            now,
            &format!("{TRAIN_RECS}:now:{now}"),
        )
        .await?;
        Ok(())
    }

    /// Leases and runs one due job.
    pub async fn run_once(&self) -> StoreResult<Ran> {
        self.run_due(now_ms()).await
    }

    /// Leases and runs one job that is due at `now` (tests look ahead with a later `now`).
    pub async fn run_due(&self, now: i64) -> StoreResult<Ran> {
        self.run_in(Lane::All, now).await
    }

    /// Leases one job of `lane` due at `now`, taking turns between shops: after
    /// [`FAIR_STREAK`] jobs in a row of one shop, every other shop with a due job gets
    /// one before the oldest job overall is taken again.
    async fn lease(&self, lane: Lane, now: i64) -> StoreResult<Option<Job>> {
        let turns = &self.turns[lane.index()];
        loop {
            let Some(shop_id) = lock(turns).waiting.pop_front() else { break };
            let scope = JobScope { shop_id: Some(shop_id), ..lane.scope() };
            if let Some(job) = self.db.lease_job_in(scope, &self.worker, now, LEASE_MS).await? {
                lock(turns).served(job.shop_id);
                return Ok(Some(job));
            }
        }
        let Some(job) = self.db.lease_job_in(lane.scope(), &self.worker, now, LEASE_MS).await? else {
            return Ok(None);
        };
        let streak = lock(turns).served(job.shop_id);
        if streak >= FAIR_STREAK {
            let others = self.db.shops_with_due_jobs(lane.scope(), job.shop_id, now, TURNS_AT_ONCE).await?;
            let mut turns = lock(turns);
            turns.waiting.extend(others);
            turns.streak = 0;
        }
        Ok(Some(job))
    }

    /// Leases and runs one job of `lane` due at `now` (a due journey timer, with up to
    /// [`TIMER_BATCH`] of its shop's).
    pub async fn run_in(&self, lane: Lane, now: i64) -> StoreResult<Ran> {
        let Some(job) = self.lease(lane, now).await? else { return Ok(Ran::Nothing) };
        if job.kind == TIMER_JOB {
            return self.run_timers(job, now).await;
        }
        // While the job runs its lease is renewed, so a long job is not run twice.
        let heartbeat = async {
            let period = Duration::from_millis(u64::try_from(LEASE_MS / 3).unwrap_or(60_000));
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                match self.db.renew_lease(&job, &self.worker, now_ms() + LEASE_MS).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(kind = %job.kind, "a running job's lease was lost"),
                    Err(error) => tracing::warn!(kind = %job.kind, %error, "could not renew a job's lease"),
                }
            }
        };
        let outcome = tokio::select! {
            outcome = self.run(&job) => outcome,
            () = heartbeat => unreachable!("the heartbeat never ends"),
        };
        match outcome {
            Ok(()) => {
                self.db.complete_job(&job, &self.worker).await?;
                Ok(Ran::Done { kind: job.kind })
            }
            Err(error) => {
                let error = error.to_string();
                tracing::error!(kind = %job.kind, %error, attempts = job.attempts, "job failed");
                self.db.fail_job(&job, &self.worker, &error).await?;
                Ok(Ran::Failed { kind: job.kind, error })
            }
        }
    }

    /// A due timer and the shop's other due timers, fired together
    /// ([`journeys::run::fire_timers`]); those whose install's call failed run one by one.
    async fn run_timers(&self, first: Job, now: i64) -> StoreResult<Ran> {
        let more = self.timer_batch - 1;
        let mut batch = vec![first];
        batch.extend(self.db.lease_more(batch[0].shop_id, TIMER_JOB, &self.worker, now, LEASE_MS, more).await?);
        let outcome = match self.shop(batch[0].shop_id).await {
            Ok(shop) => journeys::run::fire_timers(&self.plugins, &shop, &batch, &self.worker)
                .await
                .map(|retry| (shop, retry.into_iter().cloned().collect::<Vec<_>>())),
            Err(error) => Err(error),
        };
        let mut failure = None;
        match outcome {
            Ok((shop, retry)) => {
                for job in retry {
                    if let Err(error) = journeys::run::fire_timer(&self.plugins, &shop, &job, &self.worker).await {
                        let error = error.to_string();
                        self.db.fail_job(&job, &self.worker, &error).await?;
                        failure.get_or_insert(error);
                    }
                }
            }
            Err(error) => {
                let error = error.to_string();
                tracing::error!(jobs = batch.len(), %error, "a batch of timers failed");
                for job in &batch {
                    self.db.fail_job(job, &self.worker, &error).await?;
                }
                failure = Some(error);
            }
        }
        Ok(match failure {
            None => Ran::Done { kind: TIMER_JOB.to_owned() },
            Some(error) => Ran::Failed { kind: TIMER_JOB.to_owned(), error },
        })
    }

    async fn shop(&self, id: i64) -> StoreResult<Shop> {
        self.db.shop(id).await?.ok_or(StoreError::NotFound("shop"))
    }

    async fn run(&self, job: &Job) -> StoreResult<()> {
        let shop = self.shop(job.shop_id).await?;
        match job.kind.as_str() {
            EXPIRE_POINTS => {
                let (customers, points) = self.db.expire_points(shop.id, job.run_at).await?;
                tracing::info!(shop = %shop.name, customers, points, "points expired");
                self.queue_next(&shop, EXPIRE_POINTS, job.run_at).await
            }
            RECOMPUTE_SEGMENTS => {
                for active in self.plugins.active(shop.id, World::Segmenter).await? {
                    let report = self.plugins.segment_shop(&shop, &active, true, &|_, _| {}).await?;
                    tracing::info!(shop = %shop.name, plugin = %report.plugin, customers = report.customers, "segments recomputed");
                }
                self.queue_next(&shop, RECOMPUTE_SEGMENTS, job.run_at).await
            }
            TRAIN_RECS => {
                for active in self.plugins.active(shop.id, World::Recommender).await? {
                    let report = self.plugins.train_shop(&shop, &active, &|_, _| {}).await?;
                    tracing::info!(shop = %shop.name, plugin = %report.plugin, orders = report.orders, bytes = report.model_bytes, "recommendation model built");
                }
                // An on-demand run (payload `{"once": true}`) does not queue the nightly one.
                if job.payload["once"].as_bool() == Some(true) {
                    return Ok(());
                }
                self.queue_next(&shop, TRAIN_RECS, job.run_at).await
            }
            FIT_PREDICTIONS => {
                for active in self.plugins.predictors(shop.id).await? {
                    // A shop too small or too degenerate to fit is not a job failure to
                    // retry: the previous model and predictions stay, the install shows
                    // the plugin's message as its last error.
                    match self.plugins.fit_and_predict(&shop, &active, &|_, _| {}).await {
                        Ok(report) => {
                            tracing::info!(shop = %shop.name, plugin = %report.plugin, customers = report.customers, "predictions refreshed")
                        }
                        Err(StoreError::Plugin(error) | StoreError::Conflict(error)) => {
                            tracing::warn!(shop = %shop.name, plugin = %active.install.name, %error, "predictor not refitted")
                        }
                        Err(error) => return Err(error),
                    }
                }
                self.queue_next(&shop, FIT_PREDICTIONS, job.run_at).await
            }
            RETAIN_EVENTS => {
                let cutoff = job.run_at - shop.event_retention_days.max(1) * DAY_MS;
                let deleted = self.db.delete_events_before(shop.id, cutoff, RETENTION_BATCH).await?;
                self.db.record_retention_run(shop.id, cutoff, deleted).await?;
                tracing::info!(shop = %shop.name, deleted, days = shop.event_retention_days, "old events deleted");
                self.queue_next(&shop, RETAIN_EVENTS, job.run_at).await
            }
            LEARN_INTERVALS => {
                let report = self.db.learn_repurchase_intervals(shop.id).await?;
                tracing::info!(shop = %shop.name, products = report.products, from_category = report.from_category, "repurchase intervals learned");
                self.queue_next(&shop, LEARN_INTERVALS, job.run_at).await
            }
            BIRTHDAY_JOB => {
                let date = birthdays::job_date(&job.payload)?;
                let customers = birthdays::queue_triggers(&self.db, &shop, date, job.run_at).await?;
                tracing::info!(shop = %shop.name, %date, customers, "birthdays queued");
                self.queue_birthdays(&shop, job.run_at.max(now_ms() - DAY_MS)).await
            }
            TIMER_JOB => journeys::run::fire_timer(&self.plugins, &shop, job, &self.worker).await,
            TRIGGER_JOB => journeys::run::run_trigger(&self.plugins, &shop, job, &self.worker).await,
            LOYALTY_JOB => self.plugins.run_loyalty_job(&shop, &job.payload).await,
            other => Err(StoreError::Corrupt(format!("unknown job kind `{other}`"))),
        }
    }

    async fn queue_next(&self, shop: &Shop, kind: &str, after: i64) -> StoreResult<()> {
        let at = next_midnight(after.max(now_ms() - DAY_MS));
        self.db.enqueue_job(shop.id, kind, &serde_json::json!({}), at, &format!("{kind}:{at}")).await?;
        Ok(())
    }

    /// Runs jobs until `shutdown` resolves: a quick and a batch worker, each finishing
    /// the job in hand before it stops.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let quick = tokio::spawn(self.clone().work(Lane::Quick, stopped.clone()));
        let batch = tokio::spawn(self.work(Lane::Batch, stopped));
        shutdown.await;
        let _ = stop.send(true);
        let _ = tokio::join!(quick, batch);
    }

    async fn work(self, lane: Lane, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let mut last_recurring = 0;
        while !*stopped.borrow() {
            let now = now_ms();
            if lane == Lane::Batch && now - last_recurring > 60 * 60 * 1000 {
                if let Err(error) = self.queue_recurring().await {
                    tracing::error!(%error, "could not queue recurring jobs");
                }
                last_recurring = now;
            }
            let idle = match self.run_in(lane, now).await {
                Ok(Ran::Nothing) => true,
                Ok(_) => false,
                Err(error) => {
                    tracing::error!(%error, ?lane, "scheduler could not lease a job");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = stopped.changed() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }
}

impl Turns {
    /// Notes a job of `shop_id` taken; returns that shop's jobs in a row.
    fn served(&mut self, shop_id: i64) -> u32 {
        if self.last_shop == Some(shop_id) {
            self.streak += 1;
        } else {
            self.last_shop = Some(shop_id);
            self.streak = 1;
        }
        self.streak
    }
}
