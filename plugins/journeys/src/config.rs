//! The install's configuration: each journey on or off, its delays, templates and
//! re-entry rule. Every field has a default (README.md lists them), so `{}` runs
//! every journey as documented.

use patron_sdk::json::{self, Fields, FromJson, Value};

const HOUR_MS: i64 = 60 * 60 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// When a customer who was in a journey may enter it again: in config `"never"`,
/// `"always"` or a number of days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reentry {
    /// Once per customer, ever.
    Never,
    /// As soon as the previous run is over.
    Always,
    /// This many days after the previous run began.
    AfterDays(u32),
}

impl FromJson for Reentry {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        match value.as_str() {
            Some("never") => Ok(Self::Never),
            Some("always") => Ok(Self::Always),
            Some(word) => {
                Err(json::Error::new(format!("re-entry `{word}`: use \"never\", \"always\" or a number of days")))
            }
            None => u32::from_json(value).map(Self::AfterDays),
        }
    }
}

impl Reentry {
    /// Whether a customer whose previous run began at `previous` may enter at `at`.
    pub fn allows(self, previous: i64, at: i64) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::AfterDays(days) => at >= previous + i64::from(days) * DAY_MS,
        }
    }
}

/// Welcome series: after `customer.created` or a newsletter sign-up event.
#[derive(Clone, Debug, PartialEq)]
pub struct Welcome {
    pub enabled: bool,
    /// The event kind of a newsletter sign-up (it must be among the manifest's triggers).
    pub signup_event: String,
    /// Days after entry of `welcome_1`, `welcome_2`, `welcome_3` (one to three steps).
    pub days: Vec<u32>,
    pub reentry: Reentry,
}

impl Default for Welcome {
    fn default() -> Self {
        Self {
            enabled: true,
            signup_event: "custom:newsletter_signup".into(),
            days: vec![0, 3, 7],
            reentry: Reentry::Never,
        }
    }
}

/// Cart abandonment: `add_to_cart`, then reminders unless the shopper checks out or orders.
#[derive(Clone, Debug, PartialEq)]
pub struct CartAbandonment {
    pub enabled: bool,
    /// Hours after the first add to cart of `cart_reminder_1`.
    pub first_hours: u32,
    /// Hours after the first add to cart of `cart_reminder_2` (0: no second reminder).
    pub second_hours: u32,
    pub reentry: Reentry,
}

impl Default for CartAbandonment {
    fn default() -> Self {
        Self { enabled: true, first_hours: 4, second_hours: 24, reentry: Reentry::Always }
    }
}

/// Browse abandonment: one product viewed often, not put in the cart.
#[derive(Clone, Debug, PartialEq)]
pub struct BrowseAbandonment {
    pub enabled: bool,
    /// Views of one product that make an abandoned browse.
    pub min_views: u32,
    /// Within this many hours.
    pub window_hours: u32,
    /// Hours after the last of those views that `browse_reminder` is sent.
    pub delay_hours: u32,
    pub reentry: Reentry,
}

impl Default for BrowseAbandonment {
    fn default() -> Self {
        Self { enabled: true, min_views: 3, window_hours: 24, delay_hours: 2, reentry: Reentry::AfterDays(7) }
    }
}

/// Win-back: entering an at-risk segment, or past `interval-factor` times one's own
/// usual interval between orders; escalating coupons.
#[derive(Clone, Debug, PartialEq)]
pub struct WinBack {
    pub enabled: bool,
    /// Segments whose entry starts a win-back (each must be a `segment.entered:<name>`
    /// trigger of the manifest).
    pub segments: Vec<String>,
    /// A customer with two orders or more enters this many of their usual intervals
    /// after their last order.
    pub interval_factor: f64,
    /// Days after entry of `winback_1`, `winback_2`, `winback_3` (one to three steps).
    pub days: Vec<u32>,
    /// Percent off of the coupon issued with each step (0: none).
    pub coupon_percents: Vec<u8>,
    /// Days each coupon stays valid.
    pub coupon_valid_days: u32,
    pub reentry: Reentry,
}

impl Default for WinBack {
    fn default() -> Self {
        Self {
            enabled: true,
            segments: vec!["at-risk".into(), "lost".into()],
            interval_factor: 1.5,
            days: vec![0, 7, 14],
            coupon_percents: vec![10, 15, 20],
            coupon_valid_days: 14,
            reentry: Reentry::AfterDays(90),
        }
    }
}

/// Post-purchase: a review request some days after an order (not if it is refunded).
#[derive(Clone, Debug, PartialEq)]
pub struct PostPurchase {
    pub enabled: bool,
    pub days: u32,
}

impl Default for PostPurchase {
    fn default() -> Self {
        Self { enabled: true, days: 14 }
    }
}

/// Replenishment: after an order, for each product whose repurchase interval the host
/// learned from the shop's orders, a `replenishment` message `lead-days` before it is
/// due to run out; buying the product again starts its clock again.
#[derive(Clone, Debug, PartialEq)]
pub struct Replenishment {
    pub enabled: bool,
    /// Days before the product is due that the reminder goes out.
    pub lead_days: u32,
    /// Products due sooner than this many days after the order get no reminder.
    pub min_days: u32,
}

impl Default for Replenishment {
    fn default() -> Self {
        Self { enabled: true, lead_days: 3, min_days: 7 }
    }
}

/// Birthday: on `customer.birthday` (the host's daily check, in the shop's time zone),
/// a coupon and the `birthday` message.
#[derive(Clone, Debug, PartialEq)]
pub struct Birthday {
    pub enabled: bool,
    /// Percent off of the birthday coupon (0: no coupon).
    pub coupon_percent: u8,
    /// Days the coupon stays valid.
    pub coupon_valid_days: u32,
    pub reentry: Reentry,
}

impl Default for Birthday {
    fn default() -> Self {
        Self { enabled: true, coupon_percent: 15, coupon_valid_days: 7, reentry: Reentry::AfterDays(365) }
    }
}

/// The install's configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub welcome: Welcome,
    pub cart_abandonment: CartAbandonment,
    pub browse_abandonment: BrowseAbandonment,
    pub win_back: WinBack,
    pub post_purchase: PostPurchase,
    pub birthday: Birthday,
    pub replenishment: Replenishment,
}

/// `FromJson` for a config section: every field optional (its default from
/// `Default`), in kebab-case, unknown keys refused.
macro_rules! section {
    ($ty:ident { $($field:ident: $key:literal),* $(,)? }) => {
        impl FromJson for $ty {
            fn from_json(value: &Value) -> Result<Self, json::Error> {
                let d = Self::default();
                let mut f = Fields::new(value)?;
                let section = Self { $($field: f.or($key, d.$field)?),* };
                f.finish()?;
                Ok(section)
            }
        }
    };
}

section!(Welcome { enabled: "enabled", signup_event: "signup-event", days: "days", reentry: "reentry" });
section!(CartAbandonment {
    enabled: "enabled",
    first_hours: "first-hours",
    second_hours: "second-hours",
    reentry: "reentry"
});
section!(BrowseAbandonment {
    enabled: "enabled",
    min_views: "min-views",
    window_hours: "window-hours",
    delay_hours: "delay-hours",
    reentry: "reentry",
});
section!(WinBack {
    enabled: "enabled",
    segments: "segments",
    interval_factor: "interval-factor",
    days: "days",
    coupon_percents: "coupon-percents",
    coupon_valid_days: "coupon-valid-days",
    reentry: "reentry",
});
section!(PostPurchase { enabled: "enabled", days: "days" });
section!(Replenishment { enabled: "enabled", lead_days: "lead-days", min_days: "min-days" });
section!(Birthday {
    enabled: "enabled",
    coupon_percent: "coupon-percent",
    coupon_valid_days: "coupon-valid-days",
    reentry: "reentry",
});
section!(Config {
    welcome: "welcome",
    cart_abandonment: "cart-abandonment",
    browse_abandonment: "browse-abandonment",
    win_back: "win-back",
    post_purchase: "post-purchase",
    birthday: "birthday",
    replenishment: "replenishment",
});

/// Hours in milliseconds.
pub fn hours(h: u32) -> i64 {
    i64::from(h) * HOUR_MS
}

/// Days in milliseconds.
pub fn days(d: u32) -> i64 {
    i64::from(d) * DAY_MS
}
