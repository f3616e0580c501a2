//! `patron predict …`: fit the enabled predictors now, and evaluate them on the shop's
//! own held-out history beside a naive baseline.

use clap::Subcommand;
use patron_runtime::World;

use super::{advance, enabled_plugins, find_shop, pass_progress_bar};
use crate::config::Config;
use crate::plugins::prediction_evaluation::{EvaluationOptions, EvaluationReport};
use crate::store::Db;
use crate::timestamp::to_rfc3339;

#[derive(Debug, Subcommand)]
pub enum PredictCommand {
    /// Fit every enabled predictor over the shop's customers now, then store each
    /// customer's predictions and segments (a failed fit keeps the previous model).
    Fit {
        #[arg(long)]
        shop: String,
    },
    /// Split each customer's history `--holdout-days` before the last purchase, fit on
    /// the earlier part and compare the predictions with what happened, beside the naive
    /// baseline (each customer goes on at their historical repeat rate).
    Evaluate {
        #[arg(long)]
        shop: String,
        #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=3650))]
        holdout_days: u32,
        /// Days between points of the cumulative purchases series.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=365))]
        step_days: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(db: Db, config: &Config, command: PredictCommand) -> anyhow::Result<()> {
    match command {
        PredictCommand::Fit { shop } => {
            let shop = find_shop(&db, &shop).await?;
            let (plugins, predictors) = enabled_plugins(db, config, &shop, World::Predictor).await?;
            for active in predictors {
                let bar = pass_progress_bar(&active, "customers");
                let progress = advance(&bar);
                let report = plugins.fit_and_predict(&shop, &active, &progress).await;
                bar.finish_and_clear();
                let report = report.map_err(|e| {
                    anyhow::anyhow!("{}: not refitted, the previous model stays: {e}", active.plugin.label())
                })?;
                println!(
                    "{}: fitted over {} customers in {:.1}s (model {} bytes), predictions stored in {:.1}s",
                    report.plugin, report.customers, report.fit_seconds, report.model_bytes, report.predict_seconds
                );
                for (segment, members) in &report.segments {
                    println!("  {segment:<28} {members:>10}");
                }
            }
            Ok(())
        }
        PredictCommand::Evaluate { shop, holdout_days, step_days, json } => {
            let shop = find_shop(&db, &shop).await?;
            let (plugins, predictors) = enabled_plugins(db, config, &shop, World::Predictor).await?;
            for active in predictors {
                let bar = pass_progress_bar(&active, "customers");
                let progress = advance(&bar);
                let options = EvaluationOptions { holdout_days, step_days };
                let report = plugins.evaluate_predictor(&shop, &active, options, &progress).await;
                bar.finish_and_clear();
                let report = report?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print_evaluation(&report);
                }
            }
            Ok(())
        }
    }
}

fn print_evaluation(r: &EvaluationReport) {
    println!(
        "{}: split at {}, {} holdout days, {} customers scored (fit {:.1}s)",
        r.plugin,
        to_rfc3339(r.split_at),
        r.holdout_days,
        r.customers,
        r.fit_seconds
    );
    println!("  {:<34} {:>12} {:>12}", "", "model", "baseline");
    println!("  {:<34} {:>12.4} {:>12.4}", "MAE, purchases per customer", r.model.mae, r.baseline.mae);
    println!("  {:<34} {:>12.4} {:>12.4}", "RMSE, purchases per customer", r.model.rmse, r.baseline.rmse);
    println!(
        "  {:<34} {:>12.0} {:>12.0}   (actual {:.0})",
        "holdout purchases", r.predicted_purchases, r.baseline_purchases, r.holdout_purchases
    );
    match r.churn_auc_p_alive {
        Some(auc) => println!(
            "  churn AUC of P(alive): {auc:.4} ({:.1} % of customers bought nothing in the holdout)",
            100.0 * r.churned_share
        ),
        None => println!("  churn AUC of P(alive): undefined (everyone or no one bought in the holdout)"),
    }
    match &r.behaviour_model {
        Some(m) => {
            let auc = m.churn_auc.map_or_else(|| "undefined".to_owned(), |a| format!("{a:.4}"));
            println!(
                "  churn AUC of the behaviour model: {auc} (logistic regression trained on {} customers as of {})",
                m.training_customers,
                to_rfc3339(m.trained_at)
            );
            println!("    {:<28} {:>10}", "intercept", format!("{:+.4}", m.intercept));
            for c in &m.coefficients {
                println!("    {:<28} {:>10}", c.feature, format!("{:+.4}", c.weight));
            }
        }
        None => println!("  behaviour model: not trained (too little history before the calibration's end)"),
    }
    println!("  cumulative purchases over the holdout:");
    println!("  {:>6} {:>12} {:>12} {:>12}", "day", "actual", "predicted", "baseline");
    for p in &r.series {
        println!("  {:>6} {:>12.0} {:>12.1} {:>12.1}", p.day, p.actual, p.predicted, p.baseline);
    }
}
