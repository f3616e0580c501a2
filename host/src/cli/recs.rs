//! `patron recs …`: train the enabled recommender, report what recommendations earned,
//! and evaluate the strategies offline on the shop's own orders.

use clap::Subcommand;
use patron_runtime::World;

use super::{advance, enabled_plugins, find_shop, pass_progress_bar};
use crate::config::Config;
use crate::plugins::recommendation_evaluation::{EvaluationOptions, EvaluationReport};
use crate::store::Db;
use crate::store::recommendation_report::{AttributionReport, AttributionRow, DEFAULT_WINDOW_DAYS, ReportPeriod};
use crate::store::shops::Shop;
use crate::timestamp::to_rfc3339;

#[derive(Debug, Subcommand)]
pub enum RecsCommand {
    /// Rebuild the recommendation model of every enabled recommender over all orders now.
    Train {
        #[arg(long)]
        shop: String,
    },
    /// Impressions, clicks, click-through rate and attributed orders per placement and strategy.
    Report {
        #[arg(long)]
        shop: String,
        /// The days up to now that the report covers.
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// An order counts for a click when placed at most this many days after it.
        #[arg(long, default_value_t = DEFAULT_WINDOW_DAYS, value_parser = clap::value_parser!(i64).range(0..=90))]
        window_days: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Hold out each customer's last order, train on the rest and score every strategy
    /// (hit rate, recall and NDCG at K) beside the popularity baseline.
    Evaluate {
        #[arg(long)]
        shop: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
        k: u64,
        /// Score at most this many customers (default: all with two purchases or more).
        #[arg(long)]
        customers: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(db: Db, config: &Config, command: RecsCommand) -> anyhow::Result<()> {
    match command {
        RecsCommand::Train { shop } => {
            let shop = find_shop(&db, &shop).await?;
            train(db, config, &shop).await
        }
        RecsCommand::Report { shop, days, window_days, json } => {
            let shop = find_shop(&db, &shop).await?;
            let period = ReportPeriod::last_days(days, window_days, crate::store::now_ms());
            let report = db.recommendation_report(shop.id, &shop.currency, period).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            Ok(())
        }
        RecsCommand::Evaluate { shop, k, customers, json } => {
            let shop = find_shop(&db, &shop).await?;
            let options = EvaluationOptions { k: usize::try_from(k)?, max_customers: customers };
            evaluate(db, config, &shop, options, json).await
        }
    }
}

async fn train(db: Db, config: &Config, shop: &Shop) -> anyhow::Result<()> {
    let (plugins, recommenders) = enabled_plugins(db, config, shop, World::Recommender).await?;
    for active in recommenders {
        let bar = pass_progress_bar(&active, "orders");
        let progress = advance(&bar);
        let started = std::time::Instant::now();
        let report = plugins.train_shop(shop, &active, &progress).await?;
        bar.finish_and_clear();
        println!(
            "{}: model of {} bytes over {} orders in {:.1}s",
            report.plugin,
            report.model_bytes,
            report.orders,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn evaluate(db: Db, config: &Config, shop: &Shop, options: EvaluationOptions, json: bool) -> anyhow::Result<()> {
    let (plugins, recommenders) = enabled_plugins(db, config, shop, World::Recommender).await?;
    for active in recommenders {
        let bar = pass_progress_bar(&active, "customers");
        let progress = advance(&bar);
        let started = std::time::Instant::now();
        let report = plugins.evaluate_recommender(shop, &active, options, &progress).await?;
        bar.finish_and_clear();
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_evaluation(&report, started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

fn print_evaluation(report: &EvaluationReport, seconds: f64) {
    println!(
        "{}: trained on {} orders, {} last orders held out, {} customers scored in {seconds:.1}s",
        report.plugin, report.training_orders, report.held_out_orders, report.customers
    );
    let k = report.k;
    println!(
        "  {:<28} {:>10} {:>10} {:>10} {:>8}",
        "strategy",
        format!("hit@{k}"),
        format!("recall@{k}"),
        format!("ndcg@{k}"),
        "empty"
    );
    for s in &report.strategies {
        let baseline = if s.strategy == "popular" { "  (baseline)" } else { "" };
        println!(
            "  {:<28} {:>10.4} {:>10.4} {:>10.4} {:>8}{baseline}",
            s.strategy, s.hit_rate, s.recall, s.ndcg, s.empty_lists
        );
    }
}

fn print_report(report: &AttributionReport) {
    println!(
        "{} to {}, orders within {} days of a click, revenue in {}",
        to_rfc3339(report.since),
        to_rfc3339(report.until),
        report.window_days,
        report.currency
    );
    println!(
        "  {:<10} {:<28} {:>11} {:>8} {:>7} {:>7} {:>12} {:>12}",
        "placement", "strategy", "impressions", "clicks", "ctr", "orders", "revenue", "item revenue"
    );
    for row in report.rows.iter().chain(std::iter::once(&report.total)) {
        print_row(row);
    }
    if report.orders_in_other_currencies > 0 {
        println!(
            "  ({} attributed orders in other currencies are not in the revenue)",
            report.orders_in_other_currencies
        );
    }
}

fn print_row(row: &AttributionRow) {
    println!(
        "  {:<10} {:<28} {:>11} {:>8} {:>6.2}% {:>7} {:>12} {:>12}",
        row.placement,
        row.strategy,
        row.impressions,
        row.clicks,
        row.click_through_rate * 100.0,
        row.orders,
        row.revenue,
        row.item_revenue
    );
}
