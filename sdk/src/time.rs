//! Time windows over Unix-millisecond timestamps.

use crate::types::Timestamp;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// A half-open interval of time, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    /// First instant inside the window.
    pub start: Timestamp,
    /// First instant after the window.
    pub end: Timestamp,
}

impl TimeWindow {
    /// The `days` days up to `now`.
    pub fn last_days(now: Timestamp, days: u32) -> Self {
        Self { start: now.saturating_sub(i64::from(days).saturating_mul(DAY_MS)), end: now }
    }

    /// The `days` days from `now` on.
    pub fn next_days(now: Timestamp, days: u32) -> Self {
        Self { start: now, end: now.saturating_add(i64::from(days).saturating_mul(DAY_MS)) }
    }

    /// Whether `t` falls inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// Whole days from `earlier` to `later` (0 if `later` is not later).
pub fn days_between(earlier: Timestamp, later: Timestamp) -> u32 {
    u32::try_from(later.saturating_sub(earlier).max(0) / DAY_MS).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_half_open() {
        let now = 100 * DAY_MS;
        let w = TimeWindow::last_days(now, 30);
        assert!(w.contains(70 * DAY_MS));
        assert!(!w.contains(now));
        assert!(!w.contains(70 * DAY_MS - 1));
        assert!(TimeWindow::next_days(now, 1).contains(now));
        assert_eq!(days_between(0, 3 * DAY_MS + 5), 3);
        assert_eq!(days_between(5, 0), 0);
    }
}
