//! An in-memory circuit breaker: a plugin that keeps failing is switched off.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::PluginError;

/// Counts consecutive failures of one plugin install and opens after
/// `threshold` of them. While open, [`CircuitBreaker::check`] refuses calls;
/// after `cooldown` (if any) one trial call is let through (half-open), whose
/// success closes the breaker and whose failure opens it again.
///
/// The host keeps one per install, persists [`CircuitBreaker::state`] and
/// resets it when the merchant re-enables the plugin. It is `Sync`.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Option<Duration>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    consecutive_failures: u32,
    total_failures: u64,
    last_error: Option<String>,
    opened_at: Option<Instant>,
    trial_in_flight: bool,
}

/// Where a breaker stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed {
        /// Failures since the last success.
        consecutive_failures: u32,
    },
    /// Calls are refused.
    Open {
        /// When it opened.
        since: Instant,
        /// The failure that opened it.
        last_error: String,
    },
}

/// A call refused because the breaker is open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin disabled by its circuit breaker after repeated failures; last error: {last_error}")]
pub struct BreakerOpen {
    /// The failure that opened the breaker.
    pub last_error: String,
}

impl CircuitBreaker {
    /// A breaker that opens after `threshold` consecutive failures (at least 1)
    /// and stays open until [`reset`](Self::reset), or until `cooldown` passes
    /// if one is given.
    pub fn new(threshold: u32, cooldown: Option<Duration>) -> Self {
        Self { threshold: threshold.max(1), cooldown, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves only counters behind; keep going.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a call may go ahead now.
    pub fn check(&self) -> Result<(), BreakerOpen> {
        let mut inner = self.lock();
        let Some(opened_at) = inner.opened_at else {
            return Ok(());
        };
        let cooled = self.cooldown.is_some_and(|c| opened_at.elapsed() >= c);
        if cooled && !inner.trial_in_flight {
            inner.trial_in_flight = true;
            return Ok(());
        }
        Err(BreakerOpen { last_error: inner.last_error.clone().unwrap_or_default() })
    }

    /// Record a successful call: closes the breaker.
    pub fn record_success(&self) {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        inner.opened_at = None;
        inner.trial_in_flight = false;
    }

    /// Record a failed call; returns `true` if this failure opened the breaker.
    pub fn record_failure(&self, error: &PluginError) -> bool {
        let mut inner = self.lock();
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        inner.total_failures = inner.total_failures.saturating_add(1);
        inner.last_error = Some(error.to_string());
        let was_open = inner.opened_at.is_some() && !inner.trial_in_flight;
        inner.trial_in_flight = false;
        if inner.consecutive_failures >= self.threshold || inner.opened_at.is_some() {
            inner.opened_at = Some(Instant::now());
            return !was_open;
        }
        false
    }

    /// Record the outcome of a call.
    pub fn record<T>(&self, outcome: &Result<T, PluginError>) {
        match outcome {
            Ok(_) => self.record_success(),
            Err(e) => {
                self.record_failure(e);
            }
        }
    }

    /// Close the breaker and forget the consecutive failures (re-enable).
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        inner.opened_at = None;
        inner.trial_in_flight = false;
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        match inner.opened_at {
            Some(since) => BreakerState::Open { since, last_error: inner.last_error.clone().unwrap_or_default() },
            None => BreakerState::Closed { consecutive_failures: inner.consecutive_failures },
        }
    }

    /// Failures recorded since creation, and the last error.
    pub fn failures(&self) -> (u64, Option<String>) {
        let inner = self.lock();
        (inner.total_failures, inner.last_error.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn failure() -> PluginError {
        PluginError::new("p@1.0.0", "segment", ErrorKind::StackOverflow)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let breaker = CircuitBreaker::new(3, None);
        assert!(!breaker.record_failure(&failure()));
        assert!(!breaker.record_failure(&failure()));
        assert!(breaker.check().is_ok());
        assert!(breaker.record_failure(&failure()), "third failure opens");
        let err = breaker.check().expect_err("open");
        assert!(err.last_error.contains("p@1.0.0"), "{err}");
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        assert_eq!(breaker.failures().0, 3);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = CircuitBreaker::new(2, None);
        breaker.record_failure(&failure());
        breaker.record::<()>(&Ok(()));
        breaker.record_failure(&failure());
        assert_eq!(breaker.state(), BreakerState::Closed { consecutive_failures: 1 });
    }

    #[test]
    fn reset_closes_it() {
        let breaker = CircuitBreaker::new(1, None);
        breaker.record_failure(&failure());
        assert!(breaker.check().is_err());
        breaker.reset();
        assert!(breaker.check().is_ok());
    }

    #[test]
    fn half_open_after_cooldown_lets_one_trial_through() {
        let breaker = CircuitBreaker::new(1, Some(Duration::ZERO));
        breaker.record_failure(&failure());
        assert!(breaker.check().is_ok(), "trial allowed");
        assert!(breaker.check().is_err(), "only one trial at a time");
        breaker.record_failure(&failure());
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        assert!(breaker.check().is_ok(), "next trial");
        breaker.record_success();
        assert!(breaker.check().is_ok());
        assert!(matches!(breaker.state(), BreakerState::Closed { .. }));
    }
}
