//! Running segmenter plugins over a shop's customers: one customer when they change,
//! or the whole shop in batches (a recompute, or a dry run that applies nothing).

use std::collections::{BTreeMap, BTreeSet};

use patron_runtime::types::Profile;
use patron_runtime::{ErrorKind, Memberships, PluginError, World};
use serde::Serialize;

use super::actions::{MAX_TAG_LEN, check_name};
use super::{Active, CallFailure, PluginHost, convert};
use crate::store::segments::MembershipChange;
use crate::store::shops::Shop;
use crate::store::{StoreError, StoreResult, now_ms};

/// Profiles handed to a segmenter per call.
pub const BATCH: i64 = 1_000;
/// Sample customers kept per segment in a report.
const SAMPLES: usize = 5;
/// Most bytes of segment names one answer may expand to once every customer's
/// memberships are written out (names are shared in the answer, copied per customer after).
pub const MAX_EXPANDED_BYTES: usize = 8 * 1024 * 1024;

/// Checks a segmenter's answer before the host expands it: every name at most 64 bytes
/// without control characters (as tags; blank names mean no segment and are skipped), and
/// the names of all customers together within [`MAX_EXPANDED_BYTES`]. Refused answers are
/// plugin errors.
fn check_answer(plugin: &str, function: &'static str, answer: &[Vec<&str>]) -> Result<(), PluginError> {
    let invalid = |message: String| PluginError::new(plugin, function, ErrorKind::InvalidOutput(message));
    let mut expanded: usize = 0;
    for name in answer.iter().flatten().filter(|name| !name.trim().is_empty()) {
        if name.len() > MAX_TAG_LEN {
            return Err(invalid(format!("a segment name of {} bytes is longer than {MAX_TAG_LEN}", name.len())));
        }
        check_name("segment", name, MAX_TAG_LEN).map_err(invalid)?;
        expanded += name.len();
        if expanded > MAX_EXPANDED_BYTES {
            return Err(invalid(format!("segment names expand past {MAX_EXPANDED_BYTES} bytes across the customers")));
        }
    }
    Ok(())
}

fn check_memberships(plugin: &str, memberships: &Memberships) -> Result<(), PluginError> {
    let lists: Vec<Vec<&str>> = (0..memberships.len()).map(|i| memberships.segments(i).collect()).collect();
    check_answer(plugin, "segment", &lists)
}

/// What a segmenter did (or would do) across the shop.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SegmentationReport {
    pub plugin: String,
    pub customers: u64,
    /// Customers per segment after the run.
    pub sizes: BTreeMap<String, u64>,
    pub joined: BTreeMap<String, u64>,
    pub left: BTreeMap<String, u64>,
    /// A few customers (external id or email) per segment.
    pub samples: BTreeMap<String, Vec<String>>,
    pub failed_batches: u64,
    pub last_error: Option<String>,
}

/// Reports progress as (customers done, customers in all).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// What a pass over the shop does with a segmenter's answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PassKind {
    /// Answers are discarded: the plugin learns from the population (in its kv).
    Calibrate,
    /// Answers are compared with current memberships and, with `apply`, written.
    Score { apply: bool },
}

impl PluginHost {
    /// Profiles of the shop's customers, a page at a time in id order, as of `now`;
    /// without `tagged`, their tags, segments and predictions are left out (not read).
    async fn profile_page(
        &self,
        shop: &Shop,
        after: Option<i64>,
        tagged: bool,
        now: i64,
    ) -> StoreResult<(Vec<Profile>, Vec<String>, Option<i64>)> {
        let db = self.db();
        let page = db.customers_page(shop.id, after, BATCH).await?;
        let (Some(first), Some(last)) = (page.customers.first(), page.customers.last()) else {
            return Ok((Vec::new(), Vec::new(), None));
        };
        let (mut tags, mut segments, predictions) = if tagged {
            let ids: Vec<i64> = page.customers.iter().map(|c| c.id).collect();
            (
                db.tags_in_range(shop.id, first.id, last.id).await?,
                db.segments_in_range(shop.id, first.id, last.id).await?,
                db.predictions_of_customers(shop.id, &ids).await?,
            )
        } else {
            Default::default()
        };
        let labels = page
            .customers
            .iter()
            .map(|c| c.external_id.clone().or(c.email.clone()).unwrap_or(c.id.to_string()))
            .collect();
        let profiles = page
            .customers
            .iter()
            .map(|c| {
                let facts = convert::Facts {
                    tags: tags.remove(&c.id).unwrap_or_default(),
                    segments: segments.remove(&c.id).unwrap_or_default(),
                    predictions: predictions.get(&c.id),
                };
                convert::profile(c, facts, now)
            })
            .collect();
        Ok((profiles, labels, page.next_after))
    }

    /// Runs one segmenter over every customer; with `apply`, membership is updated
    /// (history kept), otherwise nothing is written.
    ///
    /// A segmenter granted `kv` may learn from the whole population across batches
    /// (RFM's quintiles), so its answers during a pass reflect what it learned before
    /// it. Such a segmenter first gets a calibration pass (answers discarded, closed by
    /// `segment([])`; profiles with order statistics only, no tags or segments), then the
    /// pass whose answers count: every answer is then against the shop as it is now, and
    /// a recompute over unchanged data changes nothing. All profiles of a run are taken
    /// as of one moment, so days since the last order do not move between the two passes.
    pub async fn segment_shop(
        &self,
        shop: &Shop,
        active: &Active,
        apply: bool,
        progress: Progress<'_>,
    ) -> StoreResult<SegmentationReport> {
        let now = now_ms();
        let mut report =
            SegmentationReport { plugin: active.plugin.label().to_owned(), ..SegmentationReport::default() };
        if active.has_kv() {
            let halfway = |done: u64, total: u64| progress(done, total * 2);
            let open = self.pass(shop, active, PassKind::Calibrate, now, &mut report, &halfway).await?;
            // The calibration pass counted customers; the report counts the scoring pass.
            report.customers = 0;
            if open {
                return Ok(report);
            }
            let rest = |done: u64, total: u64| progress(total + done, total * 2);
            self.pass(shop, active, PassKind::Score { apply }, now, &mut report, &rest).await?;
        } else {
            self.pass(shop, active, PassKind::Score { apply }, now, &mut report, progress).await?;
        }
        Ok(report)
    }

    /// One pass of `active` over every customer as of `now`, closed by `segment([])`;
    /// returns whether it stopped because the plugin's breaker is open.
    async fn pass(
        &self,
        shop: &Shop,
        active: &Active,
        kind: PassKind,
        now: i64,
        report: &mut SegmentationReport,
        progress: Progress<'_>,
    ) -> StoreResult<bool> {
        let db = self.db();
        let total = u64::try_from(db.count_customers(shop.id).await?).unwrap_or(0);
        // A stats-only segmenter is handed order statistics alone in batches, and so is
        // every segmenter in a calibration pass: what it learns is over the population's
        // statistics, and the tags and segments reads would double a recompute's reads.
        let tagged = !active.plugin.info().stats_segmentation && kind != PassKind::Calibrate;
        let mut after = None;
        let mut open = false;
        loop {
            let (profiles, labels, next) = self.profile_page(shop, after, tagged, now).await?;
            if profiles.is_empty() {
                break;
            }
            let ids: Vec<i64> = profiles.iter().filter_map(|p| p.id.parse().ok()).collect();
            let batch = profiles.clone();
            // The plugin's stats-only path when it has one, else `segment`: the same memberships.
            let checked = move |plugin: &patron_runtime::Plugin, ctx: &patron_runtime::CallContext| {
                let memberships = plugin.segment_batch(ctx, &batch)?;
                check_memberships(plugin.label(), &memberships)?;
                Ok(memberships)
            };
            match self.call(active, checked).await {
                Ok(results) => {
                    if let PassKind::Score { apply } = kind {
                        let members: Vec<(i64, &str)> =
                            ids.iter().copied().zip(labels.iter().map(String::as_str)).collect();
                        self.score_batch(shop, active, apply, &members, &results, report).await?;
                    }
                }
                Err(error) => {
                    report.failed_batches += 1;
                    report.last_error = Some(error.to_string());
                    if matches!(error, CallFailure::Open(_)) {
                        open = true;
                        break;
                    }
                }
            }
            report.customers += profiles.len() as u64;
            // A first pass fills the membership table from empty: statistics refreshed as it
            // grows (10×, 100×, 1000× a page) keep PostgreSQL's per-customer lookups on the
            // right index instead of plans made for an empty table.
            if kind == (PassKind::Score { apply: true })
                && [1, 10, 100, 1000].map(|pages| pages * BATCH as u64).contains(&report.customers)
            {
                db.analyze_memberships().await?;
            }
            progress(report.customers, total);
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // An empty batch marks the end of a full pass: segmenters that learn from the
        // population (RFM quintiles) settle what they learned.
        if !open && let Err(error) = self.call(active, |plugin, ctx| plugin.segment(ctx, &[])).await {
            report.last_error = Some(error.to_string());
            open = matches!(error, CallFailure::Open(_));
        }
        Ok(open)
    }

    /// Compares one batch's answers with the customers' current memberships from this
    /// install, counts them into `report` and, with `apply`, writes the changes.
    /// `members` are the batch's (customer id, label), in the order of `results`.
    async fn score_batch(
        &self,
        shop: &Shop,
        active: &Active,
        apply: bool,
        members: &[(i64, &str)],
        results: &Memberships,
        report: &mut SegmentationReport,
    ) -> StoreResult<()> {
        let db = self.db();
        let (first, last) = (members.first().map_or(0, |m| m.0), members.last().map_or(0, |m| m.0));
        let mut current_all = db.segments_in_range_from(shop.id, first, last, &active.install.name).await?;
        let mut changes = Vec::new();
        for (i, (customer_id, label)) in members.iter().enumerate() {
            let wanted: BTreeSet<String> =
                results.segments(i).filter(|s| !s.trim().is_empty()).map(str::to_owned).collect();
            let current = current_all.remove(customer_id).unwrap_or_default();
            let change = MembershipChange {
                joined: wanted.difference(&current).cloned().collect(),
                left: current.difference(&wanted).cloned().collect(),
            };
            for segment in &change.joined {
                *report.joined.entry(segment.clone()).or_default() += 1;
            }
            for segment in &change.left {
                *report.left.entry(segment.clone()).or_default() += 1;
            }
            for segment in &wanted {
                *report.sizes.entry(segment.clone()).or_default() += 1;
                let samples = report.samples.entry(segment.clone()).or_default();
                if samples.len() < SAMPLES {
                    samples.push((*label).to_owned());
                }
            }
            if !change.joined.is_empty() || !change.left.is_empty() {
                changes.push((*customer_id, change));
            }
        }
        if apply {
            db.apply_membership_changes(shop.id, &active.install.name, &changes).await?;
        }
        Ok(())
    }

    /// Re-segments one customer with every enabled segmenter (after they changed).
    pub async fn segment_customer(&self, shop: &Shop, customer_id: i64) -> StoreResult<()> {
        let db = self.db();
        let Some(customer) = db.customer(shop.id, customer_id).await? else {
            return Err(StoreError::NotFound("customer"));
        };
        let predictions = db.customer_prediction(shop.id, customer_id).await?;
        for active in self.active(shop.id, World::Segmenter).await? {
            let facts = convert::Facts {
                tags: db.tags(shop.id, customer_id).await?,
                segments: db.current_segments(shop.id, customer_id).await?,
                predictions: predictions.as_ref(),
            };
            let profile = convert::profile(&customer, facts, now_ms());
            let checked = move |plugin: &patron_runtime::Plugin, ctx: &patron_runtime::CallContext| {
                let results = plugin.segment(ctx, std::slice::from_ref(&profile))?;
                let lists: Vec<Vec<&str>> = results.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
                check_answer(plugin.label(), "segment", &lists)?;
                Ok(results)
            };
            if let Ok(mut results) = self.call(&active, checked).await
                && let Some(segments) = results.pop()
            {
                let wanted = segments.into_iter().filter(|s| !s.trim().is_empty()).collect();
                db.set_segments(shop.id, customer_id, &active.install.name, &wanted).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_or_control_segment_names_are_plugin_errors() {
        let huge = "x".repeat(3_900_000);
        let error = check_answer("seg@1.0.0", "segment", &[vec![huge.as_str()]]).expect_err("refused");
        assert!(matches!(error.kind, ErrorKind::InvalidOutput(_)));
        assert!(error.to_string().len() < 300, "the error does not repeat the name");
        assert!(check_answer("seg@1.0.0", "segment", &[vec!["vip\u{7}"]]).is_err());
        assert!(check_answer("seg@1.0.0", "segment", &[vec!["vip", "", "rfm:5-4-3"], vec![]]).is_ok());
    }

    #[test]
    fn an_answer_that_would_expand_past_the_budget_is_refused() {
        let name = "n".repeat(MAX_TAG_LEN);
        let per_customer: Vec<&str> = vec![name.as_str(); 1_000];
        let answer = vec![per_customer; MAX_EXPANDED_BYTES / (MAX_TAG_LEN * 1_000) + 1];
        let error = check_answer("seg@1.0.0", "segment", &answer).expect_err("refused");
        assert!(error.to_string().contains("expand"), "{error}");
        assert!(check_answer("seg@1.0.0", "segment", &answer[..2]).is_ok());
    }
}
