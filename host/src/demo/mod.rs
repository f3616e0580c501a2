//! `patron demo seed`: fills an empty shop with a realistic, deterministic history —
//! a catalogue with planted co-purchase structure ([`catalog`]), and customers who buy
//! till they die, browse, abandon carts, and now and then cancel or get refunded
//! ([`shoppers`]) — for trying Patron out, for tests and for benchmarks; and its
//! recommender, trained ([`recommender`]).
//!
//! The same seed, size and end time always give the same rows. Rows go in with
//! multi-row INSERTs, one write transaction per block of customers, while the next
//! block is generated on another thread; customer stats are computed once at the end.

pub mod catalog;
pub mod plugins;
pub mod recommender;
pub mod shoppers;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::store::bulk::{LineRow, insert_many, recompute_customer_stats};
use crate::store::shops::Shop;
use crate::store::{Db, StoreError, now_ms};
use shoppers::{Block, Generator, GeneratorError};

pub use catalog::{catalog, planted_bundles, planted_pairs, replenish_days};

/// Customers generated and inserted per write transaction.
const BLOCK: u64 = 5_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub customers: u64,
    pub seed: u64,
    /// When the generated history ends (unix ms); defaults to now. Fix it for
    /// identical output across runs.
    pub end: Option<i64>,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Orders per customer on average (all statuses); `None`: as drawn, about 1.3.
    pub orders_per_customer: Option<f64>,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self { customers: 10_000, seed: 1, end: None, progress: false, orders_per_customer: None }
    }
}

/// What a seed wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedSummary {
    pub products: u64,
    pub customers: u64,
    pub identities: u64,
    pub orders: u64,
    pub order_lines: u64,
    pub refunds: u64,
    pub events: u64,
    pub elapsed: Duration,
}

impl fmt::Display for SeedSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        let rows = self.products
            + self.customers
            + self.identities
            + self.orders
            + self.order_lines
            + self.refunds
            + self.events;
        writeln!(
            f,
            "seeded {} customers, {} products, {} orders ({} lines, {} refunds), {} events, {} identities",
            self.customers, self.products, self.orders, self.order_lines, self.refunds, self.events, self.identities
        )?;
        write!(f, "in {seconds:.1}s ({:.0} rows/s)", rows as f64 / seconds)
    }
}

/// Why a seed did not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("shop {0} already has customers; demo data is seeded into an empty shop")]
    ShopNotEmpty(i64),
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the generator thread failed: {0}")]
    Thread(#[from] tokio::task::JoinError),
}

/// Seeds `shop`, which must have no customers yet, with `options.customers` customers.
pub async fn seed(db: &Db, shop: &Shop, options: &SeedOptions) -> Result<SeedSummary, SeedError> {
    let started = Instant::now();
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE shop_id = $1")
        .bind(shop.id)
        .fetch_one(db.pool())
        .await
        .map_err(StoreError::from)?;
    if existing > 0 {
        return Err(SeedError::ShopNotEmpty(shop.id));
    }
    let mut generator = Generator::new(options.seed, options.end.unwrap_or_else(now_ms), &shop.currency)?;
    if let Some(orders) = options.orders_per_customer {
        generator = generator.with_orders_per_customer(orders);
    }
    let generator = Arc::new(generator);
    let mut summary = SeedSummary::default();
    {
        let mut w = db.write().await?;
        for product in generator.products() {
            crate::store::products::upsert_product(&mut w.tx, shop.id, &shop.currency, product).await?;
            summary.products += 1;
        }
        w.commit().await?;
    }
    let bar = if options.progress { ProgressBar::new(options.customers) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} customers ({per_sec}, eta {eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let generate = |start: u64| {
        let generator = Arc::clone(&generator);
        let end = (start + BLOCK).min(options.customers);
        tokio::task::spawn_blocking(move || generator.block(start..end))
    };
    let mut next = (options.customers > 0).then(|| generate(0));
    let mut start = 0;
    while let Some(pending) = next.take() {
        let block = pending.await?;
        start += BLOCK;
        if start < options.customers {
            next = Some(generate(start));
        }
        insert_block(db, shop.id, &block, &mut summary).await?;
        bar.inc(block.customers.len() as u64);
        bar.set_message(format!("{} orders, {} events", summary.orders, summary.events));
    }
    bar.set_message("computing customer stats");
    let mut w = db.write().await?;
    recompute_customer_stats(&mut w.tx, shop.id).await?;
    w.commit().await?;
    bar.finish_and_clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Inserts one block in one transaction.
async fn insert_block(db: &Db, shop_id: i64, block: &Block, summary: &mut SeedSummary) -> Result<(), StoreError> {
    let mut w = db.write().await?;
    summary.customers += insert_many(&mut w.tx, shop_id, &block.customers).await?;
    summary.identities += insert_many(&mut w.tx, shop_id, &block.identities).await?;
    summary.orders += insert_many(&mut w.tx, shop_id, &block.orders).await?;
    summary.order_lines += insert_many(&mut w.tx, shop_id, &LineRow::of(&block.orders)).await?;
    summary.refunds += insert_many(&mut w.tx, shop_id, &block.refunds).await?;
    summary.events += insert_many(&mut w.tx, shop_id, &block.events).await?;
    w.commit().await
}

#[cfg(test)]
mod tests;
