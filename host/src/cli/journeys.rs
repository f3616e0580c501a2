//! `patron journeys report`: the journey report of `GET /v1/journeys/report`, as a table
//! or as the API's JSON.

use std::fmt::Write;

use clap::Subcommand;

use super::find_shop;
use crate::delivery::report::{self, JourneyReport, StepReport};
use crate::store::Db;
use crate::store::shops::Shop;

#[derive(Debug, Subcommand)]
pub enum JourneysCommand {
    /// Per journey and step: sent, suppressed by reason, clicks, conversions, revenue and
    /// the uplift against the holdout.
    Report {
        #[arg(long)]
        shop: String,
        /// The days up to now whose queued messages the report covers.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(report::DAYS))]
        days: i64,
        /// An order counts as a conversion when placed at most this many days after a message.
        #[arg(long, default_value_t = report::DEFAULT_WINDOW_DAYS, value_parser = clap::value_parser!(i64).range(report::WINDOW_DAYS))]
        window_days: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(db: Db, command: JourneysCommand) -> anyhow::Result<()> {
    match command {
        JourneysCommand::Report { shop, days, window_days, json } => {
            let shop = find_shop(&db, &shop).await?;
            print!("{}", report_text(&db, &shop, days, window_days, json).await?);
            Ok(())
        }
    }
}

/// What `patron journeys report` prints for `shop`.
pub async fn report_text(db: &Db, shop: &Shop, days: i64, window_days: i64, json: bool) -> anyhow::Result<String> {
    let report = report::for_shop(db, shop.id, days, window_days, crate::store::now_ms()).await?;
    Ok(if json { serde_json::to_string_pretty(&report)? + "\n" } else { table(&report) })
}

fn table(report: &JourneyReport) -> String {
    let mut out = format!(
        "messages queued in the last {} days, orders within {} days of a message\n",
        report.days, report.window_days
    );
    if report.steps.is_empty() {
        out.push_str("  no journey messages\n");
        return out;
    }
    let _ = writeln!(
        out,
        "  {:<20} {:<16} {:>6} {:>10} {:>6} {:>7} {:>6} {:>11}  revenue",
        "journey", "step", "sent", "suppressed", "failed", "pending", "clicks", "conversions"
    );
    for step in &report.steps {
        row(&mut out, step);
    }
    out
}

fn row(out: &mut String, step: &StepReport) {
    let revenue: Vec<String> = step.revenue.iter().map(|(currency, amount)| format!("{currency} {amount}")).collect();
    let _ = writeln!(
        out,
        "  {:<20} {:<16} {:>6} {:>10} {:>6} {:>7} {:>6} {:>11}  {}",
        step.journey,
        step.step,
        step.sent,
        step.suppressed.values().sum::<i64>(),
        step.failed,
        step.pending,
        step.clicks,
        step.conversions,
        if revenue.is_empty() { "-".to_owned() } else { revenue.join(", ") }
    );
    if !step.suppressed.is_empty() {
        let reasons: Vec<String> = step.suppressed.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
        let _ = writeln!(out, "    suppressed: {}", reasons.join(", "));
    }
    let uplift = &step.uplift;
    match (uplift.difference_points, uplift.ci95_points) {
        (Some(difference), Some((low, high))) => {
            let _ = writeln!(
                out,
                "    uplift: {difference:+.1} points (95 % CI {low:+.1} to {high:+.1}): {}",
                uplift.verdict
            );
        }
        _ => {
            let _ = writeln!(out, "    uplift: {}", uplift.verdict);
        }
    }
}
