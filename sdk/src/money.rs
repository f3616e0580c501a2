//! Money in minor units, never floats.

use serde::{Deserialize, Serialize};

/// An amount in a currency's minor unit (cents), with its ISO 4217 code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units; negative for credits.
    pub amount: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl Money {
    /// `amount` minor units of `currency`.
    pub fn new(amount: i64, currency: impl Into<String>) -> Self {
        Self { amount, currency: currency.into() }
    }

    /// Zero of `currency`.
    pub fn zero(currency: impl Into<String>) -> Self {
        Self::new(0, currency)
    }

    /// The sum, if both are in the same currency and it does not overflow.
    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount.checked_add(other.amount))
            .flatten()
            .map(|amount| Money::new(amount, self.currency.clone()))
    }

    /// The difference, if both are in the same currency and it does not overflow.
    pub fn checked_sub(&self, other: &Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount.checked_sub(other.amount))
            .flatten()
            .map(|amount| Money::new(amount, self.currency.clone()))
    }

    /// This amount times `quantity` (saturating).
    pub fn times(&self, quantity: u32) -> Money {
        Money::new(self.amount.saturating_mul(i64::from(quantity)), self.currency.clone())
    }

    /// `basis_points` / 10 000 of this amount, rounded down (towards zero).
    /// `percent(500)` is 5 %.
    pub fn percent(&self, basis_points: u32) -> Money {
        let amount = i128::from(self.amount) * i128::from(basis_points) / 10_000;
        Money::new(i64::try_from(amount).unwrap_or(if amount < 0 { i64::MIN } else { i64::MAX }), self.currency.clone())
    }

    /// Whole major units (e.g. euros), rounded down: handy for "1 point per euro".
    pub fn major_units(&self) -> i64 {
        self.amount.div_euclid(100)
    }
}

impl std::fmt::Display for Money {
    /// `12.34 EUR`: assumes two decimals, true of most currencies.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_checks_currency_and_overflow() {
        let a = Money::new(1050, "EUR");
        assert_eq!(a.checked_add(&Money::new(50, "EUR")), Some(Money::new(1100, "EUR")));
        assert_eq!(a.checked_add(&Money::new(50, "USD")), None);
        assert_eq!(Money::new(i64::MAX, "EUR").checked_add(&Money::new(1, "EUR")), None);
        assert_eq!(a.checked_sub(&Money::new(2000, "EUR")), Some(Money::new(-950, "EUR")));
        assert_eq!(a.times(3), Money::new(3150, "EUR"));
        assert_eq!(a.percent(1000), Money::new(105, "EUR"));
        assert_eq!(a.major_units(), 10);
        assert_eq!(a.to_string(), "10.50 EUR");
        assert_eq!(Money::new(-5, "EUR").to_string(), "-0.05 EUR");
    }
}
