//! Conditions on one customer: what a merchant writes in the `when` of a rule.

use patron_sdk::json::{self, Fields, FromJson, Value};
use patron_sdk::time::{DAY_MS, days_between};
use patron_sdk::{Profile, Timestamp};

/// A condition on a customer, written as a one-key JSON object:
/// `{"order-count": {"gte": 3}}`, `{"all": [...]}`, `{"not": {...}}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// Every condition holds (true when empty).
    All(Vec<Condition>),
    /// At least one condition holds (false when empty).
    Any(Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
    /// Lifetime paid orders.
    OrderCount(Compare),
    /// Lifetime spend (paid minus refunded), minor units.
    TotalSpent(Compare),
    /// Average order value, minor units.
    AverageOrderValue(Compare),
    /// Whole days since the last paid order (absent without orders).
    DaysSinceLastOrder(Compare),
    /// Whole days since the first paid order (absent without orders).
    DaysSinceFirstOrder(Compare),
    /// Paid orders per year of customer life: `order-count × 365 / days
    /// since first order`, a customer younger than a year counting as one.
    OrdersPerYear(Compare),
    /// Spend per year of customer life, minor units, computed the same way.
    SpentPerYear(Compare),
    /// Whether the customer has at least one paid order.
    HasOrdered(bool),
    /// The customer holds this tag.
    HasTag(String),
    /// The customer is in this segment (as held before this call).
    InSegment(String),
    /// A test on a trait.
    Trait(TraitTest),
    /// The customer's birthday (trait `birthday`, `YYYY-MM-DD` or `MM-DD`)
    /// falls in the current month (UTC): `true`, or `false` for its negation.
    BirthdayThisMonth(bool),
}

impl FromJson for Condition {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let entries = value.as_object().map(|o| o.iter().collect::<Vec<_>>()).unwrap_or_default();
        let [(key, v)] = entries[..] else {
            return Err(json::Error::new(
                "a condition is an object with one key, such as {\"order-count\": {\"gte\": 3}}",
            ));
        };
        let compare = || Compare::from_json(v);
        let condition = match key {
            "all" => Vec::from_json(v).map(Self::All),
            "any" => Vec::from_json(v).map(Self::Any),
            "not" => Self::from_json(v).map(|c| Self::Not(Box::new(c))),
            "order-count" => compare().map(Self::OrderCount),
            "total-spent" => compare().map(Self::TotalSpent),
            "average-order-value" => compare().map(Self::AverageOrderValue),
            "days-since-last-order" => compare().map(Self::DaysSinceLastOrder),
            "days-since-first-order" => compare().map(Self::DaysSinceFirstOrder),
            "orders-per-year" => compare().map(Self::OrdersPerYear),
            "spent-per-year" => compare().map(Self::SpentPerYear),
            "has-ordered" => bool::from_json(v).map(Self::HasOrdered),
            "has-tag" => String::from_json(v).map(Self::HasTag),
            "in-segment" => String::from_json(v).map(Self::InSegment),
            "trait" => TraitTest::from_json(v).map(Self::Trait),
            "birthday-this-month" => bool::from_json(v).map(Self::BirthdayThisMonth),
            _ => Err(json::Error::new("unknown condition")),
        };
        condition.map_err(|e| e.within(key))
    }
}

/// Bounds on a number; every bound given must hold, and at least one must be.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Compare {
    /// Greater than.
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
    /// Equal.
    pub eq: Option<f64>,
}

impl Compare {
    /// Whether `value` meets every bound (a missing value meets none).
    pub fn holds(&self, value: Option<f64>) -> bool {
        let Some(v) = value else { return false };
        self.gt.is_none_or(|b| v > b)
            && self.gte.is_none_or(|b| v >= b)
            && self.lt.is_none_or(|b| v < b)
            && self.lte.is_none_or(|b| v <= b)
            && self.eq.is_none_or(|b| v == b)
    }

    fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The bounds of an object, keeping the rest of its fields for the caller.
    fn read(f: &mut Fields<'_>) -> Result<Self, json::Error> {
        Ok(Self {
            gt: f.optional("gt")?,
            gte: f.optional("gte")?,
            lt: f.optional("lt")?,
            lte: f.optional("lte")?,
            eq: None,
        })
    }
}

impl FromJson for Compare {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let compare = Self { eq: f.optional("eq")?, ..Self::read(&mut f)? };
        f.finish()?;
        Ok(compare)
    }
}

/// A test on one trait, addressed by a dotted path (`consent.email`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraitTest {
    /// Dotted path into the traits object.
    pub key: String,
    /// The trait equals this JSON value.
    pub eq: Option<Value>,
    /// The trait equals one of these values (`in` in config).
    pub one_of: Option<Vec<Value>>,
    /// The trait is present (and not null), or absent.
    pub exists: Option<bool>,
    /// Greater than (the trait must be a number, or a string holding one).
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
}

impl FromJson for TraitTest {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let bounds = Compare::read(&mut f)?;
        let test = Self {
            key: f.or("key", String::new())?,
            eq: f.optional("eq")?,
            one_of: f.optional("in")?,
            exists: f.optional("exists")?,
            gt: bounds.gt,
            gte: bounds.gte,
            lt: bounds.lt,
            lte: bounds.lte,
        };
        f.finish()?;
        Ok(test)
    }
}

impl TraitTest {
    /// The numeric bounds of the test.
    fn compare(&self) -> Compare {
        Compare { gt: self.gt, gte: self.gte, lt: self.lt, lte: self.lte, eq: None }
    }

    fn holds(&self, traits: &Value) -> bool {
        let value = self.key.split('.').try_fold(traits, |v, part| v.get(part)).filter(|v| !v.is_null());
        self.exists.is_none_or(|e| e == value.is_some())
            && self.eq.as_ref().is_none_or(|want| value == Some(want))
            && self.one_of.as_ref().is_none_or(|set| value.is_some_and(|v| set.contains(v)))
            && (self.compare().is_empty()
                || self.compare().holds(value.and_then(|v| v.as_f64().or_else(|| json::parse_f64(v.as_str()?.trim())))))
    }
}

/// What conditions are evaluated against: the profile, its parsed traits and
/// the time of the call.
pub struct Subject<'a> {
    /// The customer.
    pub profile: &'a Profile,
    /// `profile.traits`, parsed.
    pub traits: Value,
    /// Now (Unix ms).
    pub now: Timestamp,
}

impl<'a> Subject<'a> {
    /// `profile` as of `now`.
    pub fn new(profile: &'a Profile, now: Timestamp) -> Self {
        Self { traits: profile.traits_value(), profile, now }
    }

    /// Years of customer life for the per-year rates: at least one.
    fn years(&self) -> Option<f64> {
        let first = self.profile.stats.first_order_at?;
        Some(f64::from(days_between(first, self.now).max(365)) / 365.0)
    }

    fn birthday_month(&self) -> Option<u32> {
        let text = self.traits.get("birthday")?.as_str()?;
        // `YYYY-MM-DD`, `--MM-DD` or `MM-DD`: the month is the second-to-last field.
        let mut fields = text.rsplit('-');
        fields.next()?;
        let month: u32 = fields.next()?.parse().ok()?;
        (1..=12).contains(&month).then_some(month)
    }
}

impl Condition {
    /// Whether the condition holds for `s`.
    pub fn holds(&self, s: &Subject<'_>) -> bool {
        let stats = &s.profile.stats;
        let count = f64::from(stats.order_count);
        let spent = stats.total_spent as f64;
        match self {
            Self::All(all) => all.iter().all(|c| c.holds(s)),
            Self::Any(any) => any.iter().any(|c| c.holds(s)),
            Self::Not(c) => !c.holds(s),
            Self::OrderCount(c) => c.holds(Some(count)),
            Self::TotalSpent(c) => c.holds(Some(spent)),
            Self::AverageOrderValue(c) => c.holds(Some(stats.average_order_value as f64)),
            Self::DaysSinceLastOrder(c) => c.holds(stats.days_since_last_order.map(f64::from)),
            Self::DaysSinceFirstOrder(c) => c.holds(stats.first_order_at.map(|t| f64::from(days_between(t, s.now)))),
            Self::OrdersPerYear(c) => c.holds(Some(s.years().map_or(0.0, |y| count / y))),
            Self::SpentPerYear(c) => c.holds(Some(s.years().map_or(0.0, |y| spent / y))),
            Self::HasOrdered(want) => (stats.order_count > 0) == *want,
            Self::HasTag(tag) => s.profile.has_tag(tag),
            Self::InSegment(segment) => s.profile.segments.iter().any(|x| x == segment),
            Self::Trait(test) => test.holds(&s.traits),
            Self::BirthdayThisMonth(want) => (s.birthday_month() == Some(month_of(s.now))) == *want,
        }
    }

    /// The first problem of this condition, if any (empty bounds, empty key).
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::All(list) | Self::Any(list) => list.iter().find_map(Self::problem),
            Self::Not(c) => c.problem(),
            Self::OrderCount(c)
            | Self::TotalSpent(c)
            | Self::AverageOrderValue(c)
            | Self::DaysSinceLastOrder(c)
            | Self::DaysSinceFirstOrder(c)
            | Self::OrdersPerYear(c)
            | Self::SpentPerYear(c) => c.is_empty().then(|| "a comparison needs gt, gte, lt, lte or eq".to_owned()),
            Self::Trait(t) if t.key.is_empty() => Some("a trait test needs a key".to_owned()),
            Self::Trait(t) if t.eq.is_none() && t.one_of.is_none() && t.exists.is_none() && t.compare().is_empty() => {
                Some(format!("trait `{}`: give eq, in, exists or a bound", t.key))
            }
            _ => None,
        }
    }
}

/// The month (1–12, UTC) of a Unix-ms timestamp.
pub fn month_of(t: Timestamp) -> u32 {
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = t.div_euclid(DAY_MS) + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    month as u32
}

#[cfg(test)]
mod tests {
    use patron_sdk::testing::profile;

    use super::*;

    const NOW: i64 = 1_700_000_000_000; // 2023-11-14

    fn cond(text: &str) -> Condition {
        json::from_str(text).expect("valid condition")
    }

    #[test]
    fn months_of_known_dates() {
        assert_eq!(month_of(0), 1);
        assert_eq!(month_of(NOW), 11);
        assert_eq!(month_of(951_782_400_000), 2); // 2000-02-29
        assert_eq!(month_of(951_868_800_000), 3); // 2000-03-01
        assert_eq!(month_of(-1), 12); // 1969-12-31
    }

    #[test]
    fn stats_traits_tags_and_logic() {
        let mut p = profile("c");
        p.stats.order_count = 4;
        p.stats.total_spent = 20_000;
        p.stats.first_order_at = Some(NOW - 730 * DAY_MS);
        p.stats.days_since_last_order = Some(100);
        p.traits =
            r#"{"birthday": "1990-11-02", "marketing_consent": true, "consent": {"sms": false}, "age": "41"}"#.into();
        p.tags = vec!["wholesale".into()];
        p.segments = vec!["dormant".into()];
        let s = Subject::new(&p, NOW);
        let holds = |text: &str| cond(text).holds(&s);
        assert!(holds(r#"{"order-count": {"gte": 3}}"#));
        assert!(!holds(r#"{"order-count": {"gte": 3, "lt": 4}}"#));
        assert!(holds(r#"{"days-since-last-order": {"gt": 90}}"#));
        assert!(holds(r#"{"orders-per-year": {"eq": 2}}"#), "4 orders over 2 years");
        assert!(holds(r#"{"spent-per-year": {"gte": 10000}}"#));
        assert!(holds(r#"{"days-since-first-order": {"gte": 730}}"#));
        assert!(holds(r#"{"birthday-this-month": true}"#));
        assert!(holds(r#"{"trait": {"key": "marketing_consent", "eq": true}}"#));
        assert!(holds(r#"{"trait": {"key": "consent.sms", "eq": false}}"#));
        assert!(holds(r#"{"trait": {"key": "age", "gte": 18}}"#), "numeric strings compare as numbers");
        assert!(holds(r#"{"trait": {"key": "country", "exists": false}}"#));
        assert!(!holds(r#"{"trait": {"key": "country", "in": ["FR", "BE"]}}"#));
        assert!(holds(r#"{"has-tag": "wholesale"}"#));
        assert!(holds(r#"{"in-segment": "dormant"}"#));
        assert!(holds(r#"{"all": [{"has-ordered": true}, {"not": {"has-tag": "vip"}}]}"#));
        assert!(holds(r#"{"any": [{"has-tag": "vip"}, {"total-spent": {"gte": 20000}}]}"#));
        assert!(!holds(r#"{"any": []}"#));
        assert!(holds(r#"{"all": []}"#));
    }

    #[test]
    fn customers_without_orders() {
        let p = profile("p");
        let s = Subject::new(&p, NOW);
        assert!(!cond(r#"{"days-since-last-order": {"gt": 90}}"#).holds(&s), "no last order: no match");
        assert!(cond(r#"{"not": {"days-since-last-order": {"lte": 90}}}"#).holds(&s));
        assert!(cond(r#"{"orders-per-year": {"eq": 0}}"#).holds(&s));
        assert!(cond(r#"{"has-ordered": false}"#).holds(&s));
        assert!(!cond(r#"{"birthday-this-month": true}"#).holds(&s), "no birthday");
    }

    #[test]
    fn young_customers_count_as_one_year() {
        let mut p = profile("c");
        p.stats.order_count = 3;
        p.stats.first_order_at = Some(NOW - 30 * DAY_MS);
        let s = Subject::new(&p, NOW);
        assert!(cond(r#"{"orders-per-year": {"eq": 3}}"#).holds(&s));
    }

    #[test]
    fn problems_and_unknown_keys() {
        assert!(cond(r#"{"not": {"order-count": {}}}"#).problem().is_some());
        assert!(cond(r#"{"trait": {"key": "x"}}"#).problem().is_some());
        assert!(cond(r#"{"trait": {"key": "x", "exists": true}}"#).problem().is_none());
        let error = |text: &str| json::from_str::<Condition>(text).map(|_| ()).expect_err("an error").to_string();
        assert_eq!(error(r#"{"viewed-category": "shoes"}"#), "viewed-category: unknown condition");
        assert!(
            error(r#"{"order-count": {"gte": 1}, "has-ordered": true}"#)
                .starts_with("a condition is an object with one key")
        );
        assert!(error("[]").starts_with("a condition is an object with one key"));
        assert_eq!(
            error(r#"{"all": [{"has-tag": "a"}, {"not": {"order-count": {"gte": "3"}}}]}"#),
            "all[1].not.order-count.gte: expected a number"
        );
        assert_eq!(error(r#"{"order-count": {"gte": 1, "over": 2}}"#), "order-count.over: unknown field");
        assert_eq!(error(r#"{"trait": {"key": "a", "in": 5}}"#), "trait.in: expected an array");
    }
}
