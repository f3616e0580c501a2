//! The contact policy: whether a message may go now, later, or not at all. Journeys
//! never decide this; [`decide`] is the one place that does.

use chrono::{Duration, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::customers::InvalidInput;
use crate::store::outbox::Purpose;

const HOUR_MS: i64 = 60 * 60 * 1000;
/// The window of the weekly frequency cap.
pub const CAP_WINDOW_MS: i64 = 7 * 24 * HOUR_MS;

/// A shop's contact policy; every field has a default, so a shop configures only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// At least this long between two marketing messages to a customer on one channel.
    pub min_hours_between: i64,
    /// At most this many marketing messages to a customer on one channel per 7 days.
    pub max_per_7_days: i64,
    /// Quiet hours in the shop's time zone, `HH:MM`; equal start and end means none.
    pub quiet_hours_start: String,
    pub quiet_hours_end: String,
    /// The share of customers, in percent, held out of all marketing to measure uplift.
    pub holdout_percent: f64,
    /// Where the cart link in messages points; by default the shop's first origin + `/cart`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cart_url: Option<String>,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            min_hours_between: 16,
            max_per_7_days: 3,
            quiet_hours_start: "21:00".into(),
            quiet_hours_end: "08:00".into(),
            holdout_percent: 5.0,
            cart_url: None,
        }
    }
}

fn clock_time(field: &'static str, text: &str) -> Result<NaiveTime, InvalidInput> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| InvalidInput::new(field, format!("`{text}` is not HH:MM")))
}

impl PolicySettings {
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if !(0..=24 * 30).contains(&self.min_hours_between) {
            return Err(InvalidInput::new("min_hours_between", "must be between 0 and 720"));
        }
        if !(1..=1000).contains(&self.max_per_7_days) {
            return Err(InvalidInput::new("max_per_7_days", "must be between 1 and 1000"));
        }
        clock_time("quiet_hours_start", &self.quiet_hours_start)?;
        clock_time("quiet_hours_end", &self.quiet_hours_end)?;
        if !(0.0..=50.0).contains(&self.holdout_percent) {
            return Err(InvalidInput::new("holdout_percent", "must be between 0 and 50"));
        }
        if let Some(url) = &self.cart_url {
            let parsed = reqwest::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
            if parsed.is_none() || url.len() > 2048 {
                return Err(InvalidInput::new("cart_url", "must be an http(s) URL of at most 2048 characters"));
            }
        }
        Ok(())
    }

    fn quiet_hours(&self) -> Option<(NaiveTime, NaiveTime)> {
        let start = clock_time("quiet_hours_start", &self.quiet_hours_start).ok()?;
        let end = clock_time("quiet_hours_end", &self.quiet_hours_end).ok()?;
        (start != end).then_some((start, end))
    }
}

/// Why a message was not sent; stored as the message's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    NoConsent,
    FrequencyCap,
    Holdout,
    Unsubscribed,
    NoAddress,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoConsent => "no_consent",
            Self::FrequencyCap => "frequency_cap",
            Self::Holdout => "holdout",
            Self::Unsubscribed => "unsubscribed",
            Self::NoAddress => "no_address",
        }
    }
}

/// What the policy decided for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Quiet hours: try again at `until` (unix ms), when they end.
    Defer {
        until: i64,
    },
    Suppress(Suppression),
}

/// What the policy knows about one message and its recipient.
#[derive(Debug, Clone)]
pub struct Facts {
    pub shop_id: i64,
    pub customer_id: i64,
    pub purpose: Purpose,
    pub has_address: bool,
    pub consent: bool,
    pub unsubscribed: bool,
    /// Marketing messages on this channel to this customer in the last 7 days, and the latest.
    pub sent_in_window: i64,
    pub last_sent_at: Option<i64>,
    pub now: i64,
    pub timezone: Tz,
}

/// The contact policy. Transactional messages need only an address; marketing ones
/// also consent, being outside the holdout, outside quiet hours (deferred, not dropped:
/// a cap that lapses overnight then lets the morning's message go) and within the caps.
pub fn decide(settings: &PolicySettings, facts: &Facts) -> Decision {
    if !facts.has_address {
        return Decision::Suppress(Suppression::NoAddress);
    }
    if facts.purpose == Purpose::Transactional {
        return Decision::Send;
    }
    if let Some(refused) = consent_refusal(facts.purpose, facts.consent, facts.unsubscribed) {
        return Decision::Suppress(refused);
    }
    if in_holdout(facts.shop_id, facts.customer_id, settings.holdout_percent) {
        return Decision::Suppress(Suppression::Holdout);
    }
    if let Some(until) = quiet_hours_end(settings, facts.timezone, facts.now) {
        return Decision::Defer { until };
    }
    let too_soon = facts.last_sent_at.is_some_and(|at| facts.now - at < settings.min_hours_between * HOUR_MS);
    if too_soon || facts.sent_in_window >= settings.max_per_7_days {
        return Decision::Suppress(Suppression::FrequencyCap);
    }
    Decision::Send
}

/// The one marketing-consent check: why a message of `purpose` may not go to a customer
/// whose current marketing consent (kept from the consent log on the customer row by
/// `store::consent`) and unsubscribe are these, or `None` if consent allows it.
/// Transactional messages need no marketing consent.
pub fn consent_refusal(purpose: Purpose, marketing_consent: bool, unsubscribed: bool) -> Option<Suppression> {
    match purpose {
        Purpose::Transactional => None,
        Purpose::Marketing if unsubscribed => Some(Suppression::Unsubscribed),
        Purpose::Marketing if !marketing_consent => Some(Suppression::NoConsent),
        Purpose::Marketing => None,
    }
}

/// Whether a customer is in the shop's holdout: a stable hash of shop and customer, so
/// the same customers stay held out across messages, journeys and restarts.
pub fn in_holdout(shop_id: i64, customer_id: i64, percent: f64) -> bool {
    let digest = Sha256::digest(format!("patron-holdout:{shop_id}:{customer_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let bucket = u64::from_be_bytes(first) % 10_000;
    (bucket as f64) < percent * 100.0
}

/// If `now` falls in the shop's quiet hours, when they end (unix ms).
pub fn quiet_hours_end(settings: &PolicySettings, tz: Tz, now: i64) -> Option<i64> {
    let (start, end) = settings.quiet_hours()?;
    let local = tz.timestamp_millis_opt(now).single()?;
    let time = local.time().with_nanosecond(0)?;
    let quiet = if start < end { start <= time && time < end } else { time >= start || time < end };
    if !quiet {
        return None;
    }
    let mut day = local.date_naive();
    if time >= end {
        day += Duration::days(1);
    }
    let wake = day.and_time(end);
    // A wake-up time that a DST change skips is taken an hour later.
    let at = tz
        .from_local_datetime(&wake)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(wake + Duration::hours(1))).earliest())?;
    Some(at.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(now: i64) -> Facts {
        Facts {
            shop_id: 1,
            customer_id: 2,
            purpose: Purpose::Marketing,
            has_address: true,
            consent: true,
            unsubscribed: false,
            sent_in_window: 0,
            last_sent_at: None,
            now,
            timezone: chrono_tz::Europe::Berlin,
        }
    }

    fn no_holdout() -> PolicySettings {
        PolicySettings { holdout_percent: 0.0, ..PolicySettings::default() }
    }

    fn berlin(text: &str) -> i64 {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time");
        chrono_tz::Europe::Berlin.from_local_datetime(&naive).single().expect("unambiguous").timestamp_millis()
    }

    #[test]
    fn quiet_hours_defer_to_eight_in_the_shop_zone_across_midnight_and_dst() {
        let settings = no_holdout();
        let evening = facts(berlin("2026-03-28 22:30"));
        // The night the clocks go forward: 08:00 local is 06:00 UTC.
        assert_eq!(decide(&settings, &evening), Decision::Defer { until: berlin("2026-03-29 08:00") });
        let small_hours = facts(berlin("2026-07-01 03:10"));
        assert_eq!(decide(&settings, &small_hours), Decision::Defer { until: berlin("2026-07-01 08:00") });
        assert_eq!(decide(&settings, &facts(berlin("2026-07-01 08:00"))), Decision::Send);
        assert_eq!(decide(&settings, &facts(berlin("2026-07-01 20:59"))), Decision::Send);
    }

    #[test]
    fn transactional_ignores_consent_caps_and_quiet_hours_but_needs_an_address() {
        let settings = PolicySettings { holdout_percent: 50.0, ..no_holdout() };
        let mut f = facts(berlin("2026-07-01 23:00"));
        f.purpose = Purpose::Transactional;
        f.consent = false;
        f.sent_in_window = 99;
        assert_eq!(decide(&settings, &f), Decision::Send);
        f.has_address = false;
        assert_eq!(decide(&settings, &f), Decision::Suppress(Suppression::NoAddress));
    }

    #[test]
    fn caps_count_the_gap_and_the_week() {
        let settings = no_holdout();
        let now = berlin("2026-07-01 12:00");
        let mut f = facts(now);
        f.last_sent_at = Some(now - 15 * HOUR_MS);
        f.sent_in_window = 1;
        assert_eq!(decide(&settings, &f), Decision::Suppress(Suppression::FrequencyCap));
        f.last_sent_at = Some(now - 17 * HOUR_MS);
        assert_eq!(decide(&settings, &f), Decision::Send);
        f.sent_in_window = 3;
        assert_eq!(decide(&settings, &f), Decision::Suppress(Suppression::FrequencyCap));
        f.consent = false;
        assert_eq!(decide(&settings, &f), Decision::Suppress(Suppression::NoConsent));
        f.unsubscribed = true;
        assert_eq!(decide(&settings, &f), Decision::Suppress(Suppression::Unsubscribed));
    }

    #[test]
    fn holdout_is_stable_and_near_its_share() {
        let held = (0..20_000).filter(|c| in_holdout(7, *c, 5.0)).count();
        assert!((800..1200).contains(&held), "{held} of 20000 held out at 5 %");
        assert_eq!(in_holdout(7, 123, 5.0), in_holdout(7, 123, 5.0));
        assert!((0..1000).all(|c| !in_holdout(7, c, 0.0)));
        let c = (0..).find(|c| in_holdout(7, *c, 5.0)).expect("someone is held out");
        assert_eq!(
            decide(
                &PolicySettings::default(),
                &Facts { customer_id: c, shop_id: 7, ..facts(berlin("2026-07-01 12:00")) }
            ),
            Decision::Suppress(Suppression::Holdout)
        );
    }

    #[test]
    fn settings_are_checked_by_field() {
        let bad = PolicySettings { quiet_hours_end: "8am".into(), ..PolicySettings::default() };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("quiet_hours_end"));
        assert!(PolicySettings::default().validate().is_ok());
    }
}
