//! The loyalty programme as configured by the merchant: earning rules, tiers
//! and the reward catalogue. Plain Rust over plain values; `lib.rs` wires it
//! to the contract.

use patron_sdk::json::{self, Fields, FromJson, Value};
use patron_sdk::time::DAY_MS;
use patron_sdk::{CouponSpec, Discount, Money, Reward, TierInfo, Timestamp};

/// Names for shoppers by locale (`"en"`, `"zh-CN"`, …), as (locale, name) pairs; in
/// config, an object (`{"en": "Gold", "zh-CN": "金卡"}`).
pub type Names = Vec<(String, String)>;

fn names(value: &Value) -> Result<Names, json::Error> {
    json::entries_of(value, |locale, name| Ok((locale.to_owned(), String::from_json(name)?)))
}

/// The name for `locale`: exact (`zh-CN`), else its language (`zh`), else any entry of
/// that language (`zh-TW` for `zh-HK`).
pub fn localized<'a>(names: &'a Names, locale: &str) -> Option<&'a str> {
    let language = locale.split(['-', '_']).next().unwrap_or(locale);
    let find = |matches: &dyn Fn(&str) -> bool| names.iter().find(|(k, _)| matches(k)).map(|(_, v)| v.as_str());
    find(&|k| k == locale)
        .or_else(|| find(&|k| k == language))
        .or_else(|| find(&|k| k.split(['-', '_']).next() == Some(language)))
}

/// Multipliers and rates are read with four decimals (1.25 → 12 500), so
/// that points are computed in integers.
const SCALE: i128 = 10_000;

fn scaled(factor: f64) -> i128 {
    (factor * SCALE as f64).round() as i128
}

/// One tier of the programme; in config, keys in kebab-case (`points-multiplier`).
#[derive(Clone, Debug, PartialEq)]
pub struct Tier {
    /// Tier name, e.g. `gold`.
    pub name: String,
    /// Rolling 12-month spend (minor units) from which the tier applies.
    pub threshold: i64,
    /// Points multiplier of members of the tier (default 1).
    pub points_multiplier: f64,
    /// Percent off of the coupon a member gets on reaching the tier (0, the default: none).
    pub discount_percent: u8,
    /// The tier's name for shoppers, by locale (the host shows it in the member panel;
    /// `name` stays the tier's id).
    pub names: Names,
}

impl FromJson for Tier {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let tier = Tier {
            name: f.required("name")?,
            threshold: f.required("threshold")?,
            points_multiplier: f.or("points-multiplier", 1.0)?,
            discount_percent: f.or("discount-percent", 0)?,
            names: f.with("names", names)?.unwrap_or_default(),
        };
        f.finish()?;
        Ok(tier)
    }
}

fn tier(name: &str, threshold: i64, points_multiplier: f64, discount_percent: u8, en: &str, zh: &str) -> Tier {
    let names = vec![("en".to_owned(), en.to_owned()), ("zh-CN".to_owned(), zh.to_owned())];
    Tier { name: name.to_owned(), threshold, points_multiplier, discount_percent, names }
}

/// What a reward's coupon takes off, in config: `"free-shipping"`,
/// `{"percent": 10}` or `{"fixed": 500}` (minor units of `currency`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewardDiscount {
    /// Percent off.
    Percent(u8),
    /// A fixed amount off, minor units.
    Fixed(i64),
    /// Free shipping.
    FreeShipping,
}

impl FromJson for RewardDiscount {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        if value.as_str() == Some("free-shipping") {
            return Ok(Self::FreeShipping);
        }
        let mut f = Fields::new(value).map_err(|_| json::Error::new(DISCOUNT_FORMS))?;
        let discount = match (f.optional("percent")?, f.optional("fixed")?) {
            (Some(p), None) => Self::Percent(p),
            (None, Some(amount)) => Self::Fixed(amount),
            _ => return Err(json::Error::new(DISCOUNT_FORMS)),
        };
        f.finish()?;
        Ok(discount)
    }
}

const DISCOUNT_FORMS: &str = r#"expected "free-shipping", {"percent": N} or {"fixed": N}"#;

/// One entry of the reward catalogue; in config, keys in kebab-case (`points-cost`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardConfig {
    /// Stable id.
    pub id: String,
    /// Name shown in the widget when `names` has none for the shop's locale; without
    /// either, the plugin words the discount in the locale ("€5.00 off", "减¥5.00").
    pub name: Option<String>,
    /// Names by locale.
    pub names: Names,
    /// Points it costs.
    pub points_cost: i64,
    /// What its coupon takes off.
    pub discount: RewardDiscount,
    /// Minimum order total for the coupon, minor units.
    pub minimum_spend: Option<i64>,
    /// Days the coupon stays valid after redemption; none (the default in config): no expiry.
    pub valid_days: Option<u32>,
}

impl FromJson for RewardConfig {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let reward = RewardConfig {
            id: f.required("id")?,
            name: f.optional("name")?,
            names: f.with("names", names)?.unwrap_or_default(),
            points_cost: f.required("points-cost")?,
            discount: f.required("discount")?,
            minimum_spend: f.optional("minimum-spend")?,
            valid_days: f.optional("valid-days")?,
        };
        f.finish()?;
        Ok(reward)
    }
}

fn reward(id: &str, points_cost: i64, discount: RewardDiscount) -> RewardConfig {
    RewardConfig {
        id: id.to_owned(),
        name: None,
        names: Names::new(),
        points_cost,
        discount,
        minimum_spend: None,
        valid_days: Some(90),
    }
}

/// The install's settings (all optional; see README.md); in config, keys in kebab-case
/// (`points-per-unit`), unknown keys refused.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Points per currency unit spent.
    pub points_per_unit: f64,
    /// Minor units in one currency unit (100 for EUR/USD, 1 for JPY).
    pub unit: u32,
    /// Points multiplier in the member's birthday month.
    pub birthday_multiplier: f64,
    /// Tiers, by ascending threshold; the first is the entry tier.
    pub tiers: Vec<Tier>,
    /// Issue a `discount-percent` coupon when an order moves a member up.
    pub tier_coupon: bool,
    /// Days a tier coupon stays valid.
    pub tier_coupon_valid_days: u32,
    /// The reward catalogue.
    pub rewards: Vec<RewardConfig>,
    /// Currency of fixed-amount rewards (ISO 4217). The host fills in the shop's
    /// currency when the install's config leaves it out.
    pub currency: String,
    /// Locale of the names shoppers see (BCP 47). The host fills in the shop's locale
    /// when the install's config leaves it out.
    pub locale: String,
    /// Days after which earned points expire. Read by the host, which dates
    /// each award; absent: points never expire.
    pub points_expiry_days: Option<u32>,
}

impl Default for Program {
    fn default() -> Self {
        Self {
            points_per_unit: 1.0,
            unit: 100,
            birthday_multiplier: 2.0,
            tiers: vec![
                tier("silver", 0, 1.0, 0, "Silver", "银卡"),
                tier("gold", 50_000, 1.25, 5, "Gold", "金卡"),
                tier("platinum", 150_000, 1.5, 10, "Platinum", "白金卡"),
                tier("diamond", 500_000, 2.0, 15, "Diamond", "钻石卡"),
            ],
            tier_coupon: true,
            tier_coupon_valid_days: 30,
            rewards: vec![
                reward("five-off", 500, RewardDiscount::Fixed(500)),
                reward("twelve-off", 1_000, RewardDiscount::Fixed(1_200)),
                reward("free-shipping", 300, RewardDiscount::FreeShipping),
            ],
            currency: "EUR".into(),
            locale: "en".into(),
            points_expiry_days: None,
        }
    }
}

impl FromJson for Program {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let d = Program::default();
        let mut f = Fields::new(value)?;
        let program = Program {
            points_per_unit: f.or("points-per-unit", d.points_per_unit)?,
            unit: f.or("unit", d.unit)?,
            birthday_multiplier: f.or("birthday-multiplier", d.birthday_multiplier)?,
            tiers: f.or("tiers", d.tiers)?,
            tier_coupon: f.or("tier-coupon", d.tier_coupon)?,
            tier_coupon_valid_days: f.or("tier-coupon-valid-days", d.tier_coupon_valid_days)?,
            rewards: f.or("rewards", d.rewards)?,
            currency: f.or("currency", d.currency)?,
            locale: f.or("locale", d.locale)?,
            points_expiry_days: f.optional("points-expiry-days")?,
        };
        f.finish()?;
        Ok(program)
    }
}

impl Program {
    /// The first problem of the settings, if any.
    pub fn problem(&self) -> Option<String> {
        if self.points_per_unit < 0.0 || self.birthday_multiplier < 0.0 || self.unit == 0 {
            return Some("points-per-unit and birthday-multiplier must be >= 0, unit >= 1".into());
        }
        if self.tiers.is_empty() {
            return Some("tiers: at least one tier".into());
        }
        if let Some(w) = self.tiers.windows(2).find(|w| w[0].threshold >= w[1].threshold) {
            return Some(format!("tiers: `{}` must have a higher threshold than `{}`", w[1].name, w[0].name));
        }
        if let Some(t) = self
            .tiers
            .iter()
            .find(|t| t.name.trim().is_empty() || t.points_multiplier < 0.0 || t.discount_percent > 100)
        {
            return Some(format!("tiers: `{}` needs a name, a multiplier >= 0 and a discount of 0-100 %", t.name));
        }
        self.rewards.iter().find_map(|r| {
            let bad_discount = match r.discount {
                RewardDiscount::Percent(p) => !(1..=100).contains(&p),
                RewardDiscount::Fixed(amount) => amount <= 0,
                RewardDiscount::FreeShipping => false,
            };
            (r.id.trim().is_empty() || r.points_cost <= 0 || bad_discount)
                .then(|| format!("rewards: `{}` needs an id, a positive cost and a valid discount", r.id))
        })
    }

    /// Position of the tier a rolling spend earns: the highest whose threshold
    /// it reaches, or the entry tier.
    fn rank_for(&self, rolling_spend: i64) -> usize {
        self.tiers.iter().rposition(|t| t.threshold <= rolling_spend).unwrap_or(0)
    }

    /// Position of the tier named `name`, if it is one of the programme's.
    fn rank_of(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }

    /// The tier a rolling spend earns, the next one and the spend still needed.
    pub fn tier_info(&self, rolling_spend: &Money) -> TierInfo {
        let rank = self.rank_for(rolling_spend.amount);
        let next = self.tiers.get(rank + 1);
        TierInfo {
            tier: self.tiers[rank].name.clone(),
            next_tier: next.map(|t| t.name.clone()),
            spend_to_next: next.map(|t| Money::new(t.threshold - rolling_spend.amount, rolling_spend.currency.clone())),
        }
    }

    /// The tier an order moves a member to, if it is a move up: the member
    /// held `held` (none: not yet a member) and now has `rolling_spend`.
    pub fn promotion(&self, held: Option<&str>, rolling_spend: i64) -> Option<&Tier> {
        let earned = self.rank_for(rolling_spend);
        let up = match held.and_then(|h| self.rank_of(h)) {
            Some(rank) => earned > rank,
            None => true,
        };
        up.then(|| &self.tiers[earned])
    }

    /// Points for an order total of `amount` minor units, for a member of
    /// `tier` (its multiplier; unknown: 1), in their birthday month or not.
    /// Rounded down; never negative.
    pub fn points_for(&self, amount: i64, tier: Option<&str>, birthday_month: bool) -> i64 {
        let tier_multiplier = tier.and_then(|t| self.rank_of(t)).map_or(1.0, |rank| self.tiers[rank].points_multiplier);
        let birthday = if birthday_month { self.birthday_multiplier } else { 1.0 };
        let numerator =
            i128::from(amount.max(0)) * scaled(self.points_per_unit) * scaled(tier_multiplier) * scaled(birthday);
        let denominator = i128::from(self.unit) * SCALE * SCALE * SCALE;
        i64::try_from(numerator / denominator).unwrap_or(i64::MAX)
    }

    /// The coupon celebrating a move up to `tier`, if it carries a discount.
    pub fn tier_coupon(&self, tier: &Tier, now: Timestamp) -> Option<CouponSpec> {
        (self.tier_coupon && tier.discount_percent > 0).then(|| CouponSpec {
            discount: Discount::Percent(tier.discount_percent),
            minimum_spend: None,
            expires_at: Some(now + i64::from(self.tier_coupon_valid_days) * DAY_MS),
        })
    }

    /// The reward catalogue, coupons expiring relative to `now`.
    pub fn rewards(&self, now: Timestamp) -> Vec<Reward> {
        self.rewards
            .iter()
            .map(|r| Reward {
                id: r.id.clone(),
                name: self.reward_name(r),
                points_cost: r.points_cost,
                coupon: CouponSpec {
                    discount: match r.discount {
                        RewardDiscount::Percent(p) => Discount::Percent(p),
                        RewardDiscount::Fixed(amount) => Discount::Fixed(Money::new(amount, self.currency.clone())),
                        RewardDiscount::FreeShipping => Discount::FreeShipping,
                    },
                    minimum_spend: r.minimum_spend.map(|m| Money::new(m, self.currency.clone())),
                    expires_at: r.valid_days.map(|d| now + i64::from(d) * DAY_MS),
                },
            })
            .collect()
    }
}

impl Program {
    /// A reward's name in the programme's locale.
    pub fn reward_name(&self, reward: &RewardConfig) -> String {
        if let Some(name) = localized(&reward.names, &self.locale).or(reward.name.as_deref()) {
            return name.to_owned();
        }
        let chinese = self.locale.starts_with("zh");
        match reward.discount {
            RewardDiscount::Fixed(amount) => {
                let money = money_text(amount, &self.currency, self.unit);
                if chinese { format!("减{money}") } else { format!("{money} off") }
            }
            RewardDiscount::Percent(p) => {
                if chinese {
                    format!("{p}% 优惠")
                } else {
                    format!("{p}% off")
                }
            }
            RewardDiscount::FreeShipping => (if chinese { "免运费" } else { "Free shipping" }).to_owned(),
        }
    }
}

/// `amount` minor units with the currency's sign where it has a common one
/// (`€5.00`, `¥5.00`), else followed by its code (`5.00 CHF`); decimals from `unit`.
fn money_text(amount: i64, currency: &str, unit: u32) -> String {
    let decimals = unit.max(1).ilog10() as usize;
    let unit = i64::from(unit.max(1));
    let (whole, fraction) = (amount / unit, (amount % unit).abs());
    let number = if decimals == 0 { whole.to_string() } else { format!("{whole}.{fraction:0decimals$}") };
    let sign = match currency {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        "CNY" | "JPY" => "¥",
        _ => return format!("{number} {currency}"),
    };
    format!("{sign}{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_with_multipliers_round_down() {
        let p = Program::default();
        assert_eq!(p.points_for(4_999, Some("silver"), false), 49, "1 point per 1.00, rounded down");
        assert_eq!(p.points_for(10_000, Some("gold"), false), 125);
        assert_eq!(p.points_for(10_000, Some("diamond"), true), 400, "2 × 2");
        assert_eq!(p.points_for(10_000, None, true), 200);
        assert_eq!(p.points_for(10_000, Some("unknown"), false), 100);
        assert_eq!(p.points_for(-500, Some("gold"), false), 0);
        let odd = Program { points_per_unit: 0.29, ..Program::default() };
        assert_eq!(odd.points_for(10_000, None, false), 29, "no float truncation: 0.29 × 100");
        let yen = Program { unit: 1, points_per_unit: 0.01, ..Program::default() };
        assert_eq!(yen.points_for(12_345, None, false), 123, "1 point per 100 JPY");
    }

    #[test]
    fn tiers_and_progress() {
        let p = Program::default();
        let info = |amount| p.tier_info(&Money::new(amount, "EUR"));
        assert_eq!(
            info(0),
            TierInfo {
                tier: "silver".into(),
                next_tier: Some("gold".into()),
                spend_to_next: Some(Money::new(50_000, "EUR")),
            }
        );
        assert_eq!(info(49_999).spend_to_next, Some(Money::new(1, "EUR")));
        assert_eq!(info(50_000).tier, "gold");
        assert_eq!(info(200_000).tier, "platinum");
        assert_eq!(info(200_000).spend_to_next, Some(Money::new(300_000, "EUR")));
        let top = info(900_000);
        assert_eq!((top.tier.as_str(), top.next_tier, top.spend_to_next), ("diamond", None, None));
        assert_eq!(info(-10).tier, "silver", "refunds beyond spend stay in the entry tier");
    }

    #[test]
    fn promotions_only_go_up() {
        let p = Program::default();
        assert_eq!(p.promotion(None, 0).map(|t| t.name.as_str()), Some("silver"), "joining");
        assert_eq!(p.promotion(Some("silver"), 60_000).map(|t| t.name.as_str()), Some("gold"));
        assert_eq!(p.promotion(Some("gold"), 60_000), None);
        assert_eq!(p.promotion(Some("platinum"), 60_000), None, "no demotion on an order");
        assert_eq!(p.promotion(Some("retired-tier"), 0).map(|t| t.name.as_str()), Some("silver"));
    }

    #[test]
    fn the_default_catalogue() {
        let rewards = Program::default().rewards(0);
        let costs: Vec<(&str, i64)> = rewards.iter().map(|r| (r.id.as_str(), r.points_cost)).collect();
        assert_eq!(costs, [("five-off", 500), ("twelve-off", 1_000), ("free-shipping", 300)]);
        assert_eq!(rewards[0].coupon.discount, Discount::Fixed(Money::new(500, "EUR")));
        assert_eq!(rewards[1].coupon.discount, Discount::Fixed(Money::new(1_200, "EUR")));
        assert_eq!(rewards[2].coupon.discount, Discount::FreeShipping);
        assert_eq!(rewards[0].coupon.expires_at, Some(90 * DAY_MS));
        assert!(Program::default().problem().is_none());
        let names: Vec<&str> = rewards.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["€5.00 off", "€12.00 off", "Free shipping"]);
    }

    #[test]
    fn names_follow_the_locale_and_currency() {
        let p = Program { locale: "zh-CN".into(), currency: "CNY".into(), ..Program::default() };
        let rewards = p.rewards(0);
        let names: Vec<&str> = rewards.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["减¥5.00", "减¥12.00", "免运费"]);
        assert_eq!(rewards[0].coupon.discount, Discount::Fixed(Money::new(500, "CNY")));
        let tier_names: Vec<Option<&str>> = p.tiers.iter().map(|t| localized(&t.names, "zh-CN")).collect();
        assert_eq!(tier_names, [Some("银卡"), Some("金卡"), Some("白金卡"), Some("钻石卡")]);
        assert_eq!(localized(&p.tiers[1].names, "zh-TW"), Some("金卡"));
        assert_eq!(localized(&p.tiers[1].names, "en-GB"), Some("Gold"));
        assert_eq!(money_text(1_250, "CHF", 100), "12.50 CHF");
        assert_eq!(money_text(500, "JPY", 1), "¥500");
        let named: Program = json::from_str(
            r#"{"locale": "zh-CN", "rewards": [{"id": "r", "name": "Ten off", "names": {"zh": "十元券"},
                "points-cost": 10, "discount": {"fixed": 1000}}]}"#,
        )
        .expect("config");
        assert_eq!(named.rewards(0)[0].name, "十元券");
        let english = Program { locale: "en".into(), ..named };
        assert_eq!(english.rewards(0)[0].name, "Ten off");
    }

    #[test]
    fn every_config_key_is_read_and_unknown_ones_refused() {
        let full: Program = json::from_str(
            r#"{"points-per-unit": 2, "unit": 1, "birthday-multiplier": 3.5, "tier-coupon": false,
                "tier-coupon-valid-days": 7, "currency": "JPY", "locale": "ja", "points-expiry-days": 365,
                "tiers": [{"name": "a", "threshold": 0}, {"name": "b", "threshold": 10, "points-multiplier": 1.5,
                           "discount-percent": 5, "names": {"en": "B"}}],
                "rewards": [{"id": "p", "points-cost": 5, "discount": {"percent": 10}, "minimum-spend": 100,
                             "valid-days": 3}, {"id": "s", "points-cost": 1, "discount": "free-shipping"}]}"#,
        )
        .expect("valid");
        assert_eq!((full.points_per_unit, full.unit, full.birthday_multiplier), (2.0, 1, 3.5));
        assert_eq!((full.tier_coupon, full.tier_coupon_valid_days, full.points_expiry_days), (false, 7, Some(365)));
        assert_eq!((full.currency.as_str(), full.locale.as_str()), ("JPY", "ja"));
        assert_eq!(
            full.tiers[0],
            Tier { name: "a".into(), threshold: 0, points_multiplier: 1.0, discount_percent: 0, names: Names::new() }
        );
        assert_eq!((full.tiers[1].points_multiplier, full.tiers[1].discount_percent), (1.5, 5));
        assert_eq!(localized(&full.tiers[1].names, "en"), Some("B"));
        assert_eq!(full.rewards[0].discount, RewardDiscount::Percent(10));
        assert_eq!((full.rewards[0].minimum_spend, full.rewards[0].valid_days), (Some(100), Some(3)));
        assert_eq!(
            (full.rewards[1].discount.clone(), full.rewards[1].valid_days),
            (RewardDiscount::FreeShipping, None)
        );
        assert_eq!(json::from_str::<Program>("{}"), Ok(Program::default()));

        let error = |text: &str| json::from_str::<Program>(text).map(|_| ()).expect_err("an error").to_string();
        assert_eq!(error(r#"{"points_per_unit": 2}"#), "points_per_unit: unknown field");
        assert_eq!(error(r#"{"tiers": [{"name": "a"}]}"#), "tiers[0].threshold: missing");
        assert_eq!(
            error(r#"{"tiers": [{"name": "a", "threshold": 0, "discount-percent": 300}]}"#),
            "tiers[0].discount-percent: integer out of range"
        );
        let discount =
            |d: &str| error(&format!(r#"{{"rewards": [{{"id": "r", "points-cost": 1, "discount": {d}}}]}}"#));
        for bad in [r#""half-off""#, r#"{"percent": 5, "fixed": 5}"#, "{}", "5"] {
            assert!(
                discount(bad).starts_with("rewards[0].discount: expected \"free-shipping\""),
                "{bad}: {}",
                discount(bad)
            );
        }
        assert_eq!(discount(r#"{"fixed": 5, "extra": 1}"#), "rewards[0].discount.extra: unknown field");
    }

    /// The host reads the default tiers' names from the manifest's schema default: it
    /// must be this programme's default.
    #[test]
    fn the_manifest_default_tiers_are_the_programmes() {
        let manifest: toml::Value = toml::from_str(include_str!("../patron.toml")).expect("patron.toml");
        let default = &manifest["config-schema"]["properties"]["tiers"]["default"];
        let tiers: Vec<Tier> = json::from_str(&serde_json::to_string(default).expect("as JSON")).expect("tiers");
        assert_eq!(tiers, Program::default().tiers);
    }
}
