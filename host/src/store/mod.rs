//! Storage: sqlx queries and migrations, one schema for SQLite and PostgreSQL.
//!
//! Queries go through sqlx's `Any` driver with `$N` placeholders, which both backends
//! accept, and only portable column types (BIGINT, TEXT), so every query is written once.
//! Every query is scoped by `shop_id`.

pub mod bulk;
pub mod consent;
pub mod console;
pub mod coupons;
pub mod customer_kv;
pub mod customer_search;
pub mod customer_view;
pub mod customers;
pub mod delivery;
pub mod events;
pub mod identities;
pub mod jobs;
pub mod journey_report;
pub mod members;
pub mod merges;
pub mod order_hooks;
pub mod orders;
pub mod outbox;
pub mod plugins;
pub mod points;
pub mod predictions;
pub mod privacy;
pub mod products;
pub mod recommendation_report;
pub mod recommendations;
pub mod replenishment;
pub mod rollups;
pub mod segments;
pub mod shops;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url `{0}`: expected sqlite:// or postgres://")]
    UnsupportedUrl(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request contradicts what is stored (a refund of another order's id, a
    /// balance too small): the client can act on it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A plugin's call failed (trapped, timed out, answered what the contract forbids);
    /// the message is about the plugin, not the host, and its owner may read it.
    #[error("plugin failed: {0}")]
    Plugin(String),
    /// The host itself failed (a task that panicked, a runtime that would not start):
    /// logged, never shown to clients.
    #[error("internal: {0}")]
    Internal(String),
    #[error("invalid input: {0}")]
    Invalid(#[from] customers::InvalidInput),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Whether running the whole transaction again can succeed: a concurrent first insert
    /// of the same key won (unique violation), or PostgreSQL broke a deadlock or a
    /// serialization conflict by aborting this transaction.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Sqlx(sqlx::Error::Database(db)) => {
                db.is_unique_violation() || matches!(db.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

/// How many times a write transaction that lost a race is run again.
pub(crate) const WRITE_ATTEMPTS: usize = 3;

/// An error a write transaction may not meet when run again (it lost a race).
pub(crate) trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        StoreError::is_retryable(self)
    }
}

/// Runs `write` (one whole transaction) up to `attempts` times while it fails with a
/// [`Retryable`] error.
pub(crate) async fn retrying<T, E, Fut>(attempts: usize, mut write: impl FnMut() -> Fut) -> Result<T, E>
where
    E: Retryable,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(error) if error.is_retryable() && attempt < attempts => attempt += 1,
            outcome => return outcome,
        }
    }
}

/// The row-lock clause for a `SELECT` of a row the transaction will rewrite: `FOR UPDATE`
/// on PostgreSQL; nothing on SQLite, whose writers hold the database lock from `BEGIN`.
pub(crate) fn for_update(conn: &sqlx::AnyConnection) -> &'static str {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") { "" } else { "FOR UPDATE" }
}

/// The row-lock clause for a `SELECT` of a row the transaction only points new rows at:
/// `FOR SHARE` on PostgreSQL (such writers do not wait for each other, only for a
/// rewrite); nothing on SQLite.
pub(crate) fn for_share(conn: &sqlx::AnyConnection) -> &'static str {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") { "" } else { "FOR SHARE" }
}

/// Which SQL engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a connection talks to.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") { Self::Sqlite } else { Self::Postgres }
    }

    /// The row-lock clause of a worker's lease query: on PostgreSQL `FOR UPDATE SKIP
    /// LOCKED`, so concurrent workers take different rows; nothing on SQLite, where the
    /// lease is taken inside the one write lock.
    pub(crate) fn lease_lock(self) -> &'static str {
        match self {
            Self::Postgres => "FOR UPDATE SKIP LOCKED",
            Self::Sqlite => "",
        }
    }
}

/// A handle to the database; cloning it is cheap.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; write transactions queue here in-process
    /// rather than in SQLite's busy handler. `None` on PostgreSQL.
    write_lock: Option<Arc<Mutex<()>>>,
    /// Storefront batches (anyone holding a publishable key can send them) queue here
    /// before the write lock, so at most one of them is ever ahead of a back-office
    /// write in its queue: a flood of event batches cannot line up in front of orders.
    /// `None` on PostgreSQL.
    storefront_gate: Option<Arc<Mutex<()>>>,
}

/// A write transaction; on SQLite it also holds the in-process writer lock.
pub struct WriteTx<'a> {
    pub tx: Transaction<'static, Any>,
    _guard: Option<MutexGuard<'a, ()>>,
    _gate: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls back before the writer lock is released. (Dropping a transaction only
    /// queues its rollback, which would make the next SQLite writer wait for it.)
    pub async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Durable commits (an accepted event survives power loss), concurrent readers, and a
/// wait instead of an error when another process holds the write lock.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
];

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and runs pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            Backend::Sqlite => {
                pool_options
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            for pragma in SQLITE_PRAGMAS {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => pool_options.max_connections(16).connect_with(options).await?,
        };
        MIGRATOR.run(&pool).await?;
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let storefront_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let db = Self { pool, backend, write_lock, storefront_gate };
        db.backfill_rollups().await?;
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write.
    pub async fn write(&self) -> StoreResult<WriteTx<'_>> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        // IMMEDIATE takes SQLite's write lock at BEGIN (waiting for it under busy_timeout),
        // so a transaction never reads a snapshot it later fails to upgrade.
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _guard: guard, _gate: None })
    }

    /// [`Self::write`] for a write the storefront asked for: it waits behind every other
    /// storefront write first (see `storefront_gate`).
    pub async fn write_storefront(&self) -> StoreResult<WriteTx<'_>> {
        let gate = match &self.storefront_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        let mut w = self.write().await?;
        w._gate = gate;
        Ok(w)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A fresh random positive 63-bit id; collisions are negligible and ids need no
/// coordination between host replicas.
pub fn new_id() -> i64 {
    (rand::random::<u64>() >> 1) as i64
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use crate::testing::{Backend, fresh_db};

    #[tokio::test]
    async fn a_queued_storefront_write_lets_a_back_office_write_go_first() {
        let db = fresh_db(Backend::Sqlite).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = db.write_storefront().await.expect("first storefront write");
        let record = |who: &'static str| {
            let (db, order) = (db.clone(), order.clone());
            tokio::spawn(async move {
                let w = if who == "storefront" { db.write_storefront().await } else { db.write().await };
                order.lock().expect("order").push(who);
                w.expect("write").rollback().await.expect("rollback");
            })
        };
        // Queued in this order while the first storefront write holds the lock...
        let storefront = record("storefront");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let back_office = record("back office");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        first.rollback().await.expect("rollback");
        storefront.await.expect("storefront task");
        back_office.await.expect("back-office task");
        // ...but the back-office write goes first: the second storefront write waited at the gate.
        assert_eq!(*order.lock().expect("order"), ["back office", "storefront"]);
    }
}
