//! The journey report: per journey and step, what was sent and suppressed (by reason),
//! clicks, conversions (an order within the window after a message) and their revenue,
//! and the uplift of sending over the holdout, with a 95 % confidence interval.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::Serialize;

use crate::store::journey_report::{ReportedMessage, StepRevenue};
use crate::store::{Db, StoreResult};

/// The days of messages a report covers, and the days after a message an order counts.
pub const DAYS: RangeInclusive<i64> = 1..=3650;
pub const WINDOW_DAYS: RangeInclusive<i64> = 1..=90;
pub const DEFAULT_WINDOW_DAYS: i64 = 7;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The report over messages queued in the last `days`, as the API and the CLI give it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JourneyReport {
    pub days: i64,
    pub window_days: i64,
    pub steps: Vec<StepReport>,
}

/// The shop's journey report at `now`, over messages queued in the last `days` and the
/// orders placed within `window_days` after each (both within [`DAYS`], [`WINDOW_DAYS`]).
pub async fn for_shop(db: &Db, shop_id: i64, days: i64, window_days: i64, now: i64) -> StoreResult<JourneyReport> {
    let (since, window) = (now - days * DAY_MS, window_days * DAY_MS);
    let messages = db.journey_messages(shop_id, since, window).await?;
    let revenue = db.journey_revenue(shop_id, since, window).await?;
    Ok(JourneyReport { days, window_days, steps: build(&messages, &revenue) })
}

/// Below this many messages on either side the report says it cannot tell.
pub const MIN_GROUP: i64 = 30;

#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct StepReport {
    pub journey: String,
    pub step: String,
    pub sent: i64,
    /// By reason: no_consent, frequency_cap, holdout, unsubscribed, no_address.
    pub suppressed: BTreeMap<String, i64>,
    pub failed: i64,
    /// Queued, deferred or being sent.
    pub pending: i64,
    pub clicks: i64,
    /// Sent messages whose recipient ordered within the window.
    pub conversions: i64,
    /// Their revenue in minor units, per currency (never summed across currencies).
    pub revenue: BTreeMap<String, i64>,
    pub uplift: Uplift,
}

/// Conversion rate of sent messages against held-out ones.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Uplift {
    pub sent_rate: Option<f64>,
    pub holdout: i64,
    pub holdout_conversions: i64,
    pub holdout_rate: Option<f64>,
    /// Sent rate minus holdout rate, in percentage points, with its 95 % interval.
    pub difference_points: Option<f64>,
    pub ci95_points: Option<(f64, f64)>,
    /// What the figures allow one to say, plainly.
    pub verdict: String,
}

fn rate(hits: i64, n: i64) -> Option<f64> {
    (n > 0).then(|| hits as f64 / n as f64)
}

/// The uplift of `(conversions, sent)` over `(conversions, held out)`: a difference of
/// proportions with a normal-approximation 95 % interval, refused for small groups.
pub fn uplift(converted: i64, sent: i64, held_converted: i64, held: i64) -> Uplift {
    let (sent_rate, holdout_rate) = (rate(converted, sent), rate(held_converted, held));
    let mut uplift =
        Uplift { sent_rate, holdout: held, holdout_conversions: held_converted, holdout_rate, ..Uplift::default() };
    if sent < MIN_GROUP || held < MIN_GROUP {
        uplift.verdict =
            format!("too small to tell: {sent} sent and {held} held out; at least {MIN_GROUP} of each are needed");
        return uplift;
    }
    let (p1, p2) = (sent_rate.unwrap_or(0.0), holdout_rate.unwrap_or(0.0));
    let difference = (p1 - p2) * 100.0;
    let margin = 1.96 * (p1 * (1.0 - p1) / sent as f64 + p2 * (1.0 - p2) / held as f64).sqrt() * 100.0;
    let (low, high) = (difference - margin, difference + margin);
    uplift.difference_points = Some(difference);
    uplift.ci95_points = Some((low, high));
    uplift.verdict = if low > 0.0 {
        "sending converts more than holding out".into()
    } else if high < 0.0 {
        "sending converts less than holding out".into()
    } else {
        "no difference can be told from the holdout yet".into()
    };
    uplift
}

/// Builds the per-step report from the messages and revenue rows.
pub fn build(messages: &[ReportedMessage], revenue: &[StepRevenue]) -> Vec<StepReport> {
    let mut steps: BTreeMap<(String, String), (StepReport, i64)> = BTreeMap::new();
    for m in messages {
        let (step, held_converted) = steps.entry((m.journey.clone(), m.step.clone())).or_insert_with(|| {
            (StepReport { journey: m.journey.clone(), step: m.step.clone(), ..StepReport::default() }, 0)
        });
        step.clicks += m.clicks;
        match m.status.as_str() {
            "sent" => {
                step.sent += 1;
                step.conversions += i64::from(m.orders > 0);
            }
            "suppressed" => {
                let reason = m.reason.clone().unwrap_or_default();
                if reason == "holdout" {
                    step.uplift.holdout += 1;
                    *held_converted += i64::from(m.orders > 0);
                }
                *step.suppressed.entry(reason).or_default() += 1;
            }
            "failed" => step.failed += 1,
            _ => step.pending += 1,
        }
    }
    for r in revenue {
        if let Some((step, _)) = steps.get_mut(&(r.journey.clone(), r.step.clone())) {
            step.revenue.insert(r.currency.clone(), r.amount);
        }
    }
    steps
        .into_values()
        .map(|(mut step, held_converted)| {
            step.uplift = uplift(step.conversions, step.sent, held_converted, step.uplift.holdout);
            step
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_groups_are_called_too_small_and_large_ones_get_an_interval() {
        let small = uplift(5, 20, 0, 3);
        assert!(small.verdict.starts_with("too small to tell"));
        assert_eq!(small.ci95_points, None);
        // 20 % vs 10 % over 1000 each: +10 points, about ±3.2.
        let clear = uplift(200, 1000, 100, 1000);
        let (low, high) = clear.ci95_points.expect("interval");
        assert!((clear.difference_points.expect("difference") - 10.0).abs() < 1e-9);
        assert!((6.5..7.0).contains(&low) && (13.0..13.5).contains(&high), "{low} {high}");
        assert_eq!(clear.verdict, "sending converts more than holding out");
        assert_eq!(uplift(100, 1000, 100, 1000).verdict, "no difference can be told from the holdout yet");
    }
}
