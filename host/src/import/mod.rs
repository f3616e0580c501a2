//! `patron import customers|orders|products FILE`: a merchant's existing data, read from
//! CSV or NDJSON in Patron's own format or from a store platform's export (Shopify's
//! customer and order exports), written through the same upserts as the API.
//!
//! Importing is idempotent: every record is upserted by its id (external id or email for
//! customers, order name or id for orders, product id), so a second run of the same file
//! leaves everything unchanged and says so. Records are applied in chunks, one write
//! transaction per chunk; a chunk of orders goes through the bulk path ([`bulk`]:
//! multi-row statements, the same rows as the per-order upsert); a chunk that fails in
//! the database is retried record by record so that one bad record is rejected with its
//! reason while the others land. The file is read and checked on a thread of its own,
//! ahead of the chunk being written; on PostgreSQL the planner's statistics are refreshed
//! as the import grows the tables (see [`crate::store::bulk::analyze_imported`]).
//!
//! Imported orders are history: like the per-order upsert they use, they queue no
//! loyalty work (no points, tiers or coupons) and no journey triggers
//! (`order.placed`, `customer.created`); they count in customer stats, segments,
//! analytics and recommendations.

mod bulk;
mod format;
pub mod money;
mod patron;
mod shopify;
mod table;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::AnyConnection;

use crate::store::customers::{CustomerInput, Upserted};
use crate::store::orders::Order;
use crate::store::products::Product;
use crate::store::shops::Shop;
use crate::store::{Db, StoreError};

pub use format::Format;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    Customers,
    Orders,
    Products,
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Customers => "customers",
            Self::Orders => "orders",
            Self::Products => "products",
        })
    }
}

/// A record that was not imported: where it starts in the file and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Line of the file (the header is line 1).
    pub row: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    pub format: Option<Format>,
    /// Records read (an order spanning several rows is one record).
    pub records: u64,
    pub created: u64,
    pub updated: u64,
    /// Records already stored exactly as the file has them.
    pub unchanged: u64,
    pub rejected: u64,
    /// The first [`ImportSummary::SHOWN_REJECTIONS`] rejections, in file order.
    pub rejections: Vec<Rejection>,
    pub elapsed: Duration,
}

impl ImportSummary {
    pub const SHOWN_REJECTIONS: usize = 20;

    fn reject(&mut self, rejection: Rejection) {
        self.records += 1;
        self.rejected += 1;
        if self.rejections.len() < Self::SHOWN_REJECTIONS {
            self.rejections.push(rejection);
        }
    }

    fn count(&mut self, outcome: Upserted) {
        self.records += 1;
        match outcome {
            Upserted::Created => self.created += 1,
            Upserted::Updated => self.updated += 1,
            Upserted::Unchanged => self.unchanged += 1,
        }
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(format) = self.format {
            writeln!(f, "format: {format}")?;
        }
        writeln!(
            f,
            "{} records in {:.1}s: {} imported, {} updated, {} unchanged (skipped), {} rejected",
            self.records,
            self.elapsed.as_secs_f64(),
            self.created,
            self.updated,
            self.unchanged,
            self.rejected
        )?;
        for rejection in &self.rejections {
            writeln!(f, "  row {}: {}", rejection.row, rejection.reason)?;
        }
        let hidden = self.rejected.saturating_sub(self.rejections.len() as u64);
        if hidden > 0 {
            writeln!(f, "  … and {hidden} more rejected")?;
        }
        Ok(())
    }
}

/// Why an import stopped before the end of its file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    #[error("{0}")]
    UnknownFormat(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A record read from a file, validated and ready to upsert.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Customer {
        input: CustomerInput,
        /// The customer's tags as the file lists them (Shopify's `Tags`), checked like
        /// every tag; `None` when the format has none.
        tags: Option<BTreeSet<String>>,
    },
    Order {
        order: Order,
        customer: Option<CustomerInput>,
        /// What the export says has been refunded in total, in minor units.
        refunded: i64,
    },
    Product(Product),
}

/// One item read from a file: a record with the line it starts on, or a rejection.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "records are the common case; boxing them would only add allocations")]
pub(crate) enum Parsed {
    Record { row: u64, record: Record },
    Rejected(Rejection),
}

impl Parsed {
    fn rejected(row: u64, reason: impl fmt::Display) -> Self {
        Self::Rejected(Rejection { row, reason: reason.to_string() })
    }
}

/// Items read from a file, in file order; an `Err` ends the import.
pub(crate) type Source = Box<dyn Iterator<Item = Result<Parsed, ImportError>> + Send>;

/// The source recorded with the customer tags an import sets; a later import replaces
/// them, tags from elsewhere (plugins) are left alone.
const TAG_SOURCE: &str = "import";

/// Records applied per write transaction.
const CHUNK: usize = 2_000;

/// Imports `path` as `kind` into `shop`. The format is detected from the file's
/// extension (`.ndjson`, `.jsonl`) and header. With `progress`, a progress bar is drawn
/// on stderr when it is a terminal.
pub async fn import_file(
    db: &Db,
    shop: &Shop,
    kind: ImportKind,
    path: &Path,
    progress: bool,
) -> Result<ImportSummary, ImportError> {
    let open = || File::open(path).map_err(|source| ImportError::Open { path: path.to_owned(), source });
    let mut head = Vec::with_capacity(8192);
    open()?.take(64 * 1024).read_to_end(&mut head).map_err(|e| ImportError::Unreadable(e.to_string()))?;
    let format = Format::detect(kind, path, &head)?;
    let file = open()?;
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if progress { ProgressBar::new(length) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let reader = BufReader::with_capacity(256 * 1024, bar.wrap_read(file));
    let source = format.source(kind, reader, &shop.currency)?;
    let summary = import_from(db, shop, source, format, &bar).await;
    bar.finish_and_clear();
    summary
}

/// Applies every item of `source`, chunk by chunk. Reading and checking the file is work
/// for the processor, writing it work for the database: the file is read on a thread of
/// its own, a chunk or two ahead of the chunk being written.
async fn import_from(
    db: &Db,
    shop: &Shop,
    source: Source,
    format: Format,
    bar: &ProgressBar,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let mut summary = ImportSummary { format: Some(format), ..ImportSummary::default() };
    let (batches, mut received) = tokio::sync::mpsc::channel(READ_AHEAD);
    let reader = tokio::task::spawn_blocking(move || read_batches(source, &batches));
    let mut chunk: Vec<(u64, Record)> = Vec::with_capacity(CHUNK);
    // The planner's statistics are brought up to date before the first chunk (the tables
    // may have grown since they were last sampled), after the first chunk that writes,
    // then each time the import has doubled what it had written.
    crate::store::bulk::analyze_imported(db).await?;
    let mut analyze_at = 1;
    while let Some(batch) = received.recv().await {
        for item in batch? {
            match item {
                Parsed::Record { row, record } => chunk.push((row, record)),
                Parsed::Rejected(rejection) => summary.reject(rejection),
            }
        }
        if !chunk.is_empty() {
            apply_chunk(db, shop, &chunk, &mut summary).await?;
            chunk.clear();
        }
        let written = summary.created + summary.updated;
        if written >= analyze_at {
            crate::store::bulk::analyze_imported(db).await?;
            analyze_at = written * 2;
        }
        bar.set_message(format!(
            "{} imported, {} updated, {} unchanged, {} rejected",
            summary.created, summary.updated, summary.unchanged, summary.rejected
        ));
    }
    // The channel closes when the reader is done, or if it panicked: then so does this.
    if let Err(e) = reader.await
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Chunks read ahead of the one being written.
const READ_AHEAD: usize = 2;

/// Reads `source` into batches of [`CHUNK`] records (with the rejections among them, in
/// file order) and sends them on, until the file ends, an error ends it (sent as the last
/// item) or the receiver is gone.
fn read_batches(source: Source, batches: &tokio::sync::mpsc::Sender<Result<Vec<Parsed>, ImportError>>) {
    let mut batch = Vec::with_capacity(CHUNK);
    let mut records = 0;
    for item in source {
        match item {
            Ok(parsed) => {
                records += usize::from(matches!(parsed, Parsed::Record { .. }));
                batch.push(parsed);
            }
            Err(e) => {
                let _ = batches.blocking_send(Err(e));
                return;
            }
        }
        if records == CHUNK {
            records = 0;
            if batches.blocking_send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(CHUNK)))).is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(Ok(batch));
    }
}

/// Applies a chunk in one transaction; if the database refuses one of its records, the
/// chunk is rolled back and applied record by record, each in its own transaction.
async fn apply_chunk(
    db: &Db,
    shop: &Shop,
    chunk: &[(u64, Record)],
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    match apply_records(db, shop, chunk).await {
        Ok(outcomes) => {
            outcomes.into_iter().for_each(|o| summary.count(o));
            return Ok(());
        }
        Err(e) if !is_record_error(&e) => return Err(e.into()),
        Err(_) => {}
    }
    for one in chunk.chunks(1) {
        match apply_records(db, shop, one).await {
            Ok(outcomes) => outcomes.into_iter().for_each(|o| summary.count(o)),
            Err(e) if is_record_error(&e) => summary.reject(Rejection { row: one[0].0, reason: e.to_string() }),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether a store error is about the record (reject it) rather than the database (stop).
fn is_record_error(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Invalid(_)
            | StoreError::Conflict(_)
            | StoreError::NotFound(_)
            | StoreError::Sqlx(sqlx::Error::Database(_))
    )
}

async fn apply_records(db: &Db, shop: &Shop, records: &[(u64, Record)]) -> Result<Vec<Upserted>, StoreError> {
    let mut w = db.write().await?;
    let bulk = records.len() > 1 && records.iter().all(|(_, r)| matches!(r, Record::Order { .. }));
    #[cfg(test)]
    let bulk = bulk && !tests::PER_RECORD.load(std::sync::atomic::Ordering::Relaxed);
    let outcomes = if bulk {
        bulk::apply_orders(&mut w.tx, shop, records).await?
    } else {
        let mut outcomes = Vec::with_capacity(records.len());
        for (_, record) in records {
            outcomes.push(apply_record(&mut w.tx, shop, record).await?);
        }
        outcomes
    };
    w.commit().await?;
    Ok(outcomes)
}

async fn apply_record(conn: &mut AnyConnection, shop: &Shop, record: &Record) -> Result<Upserted, StoreError> {
    use crate::store::{customers, orders, products};
    match record {
        Record::Customer { input, tags } => {
            let (id, outcome) =
                customers::upsert_customer_from(conn, shop.id, input, crate::store::consent::Source::Import).await?;
            let retagged = match tags {
                Some(tags) => crate::store::segments::set_tags_from(conn, shop.id, id, TAG_SOURCE, tags).await?,
                None => false,
            };
            Ok(if retagged && outcome == Upserted::Unchanged { Upserted::Updated } else { outcome })
        }
        Record::Product(product) => products::upsert_product(conn, shop.id, &shop.currency, product).await,
        Record::Order { order, customer, refunded } => {
            let outcome = orders::upsert_order(conn, shop.id, order.clone(), customer.as_ref()).await?;
            let refund_recorded = crate::store::bulk::refund_up_to(conn, shop.id, &outcome.order, *refunded).await?;
            Ok(if refund_recorded && outcome.result == Upserted::Unchanged {
                Upserted::Updated
            } else {
                outcome.result
            })
        }
    }
}

#[cfg(test)]
mod tests;
