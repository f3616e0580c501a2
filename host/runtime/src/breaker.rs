//! An in-memory circuit breaker: a plugin that keeps failing is skipped for a while.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::PluginError;

/// Counts consecutive failures of one plugin install and opens after
/// `threshold` of them. While open, [`CircuitBreaker::check`] refuses calls;
/// after `cooldown` (if any) one trial call is let through (half-open), whose
/// success closes the breaker and whose failure opens it again.
///
/// Only failures that are the plugin's fault count
/// ([`ErrorKind::is_plugin_fault`](crate::ErrorKind::is_plugin_fault)): a full
/// instance pool says nothing about the plugin, so traffic alone cannot open it.
///
/// The host keeps one per install, persists whether it is open and resets it
/// when the merchant re-enables the plugin. It is `Sync`.
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
    /// When the current trial call (half-open) was let through. A trial whose
    /// outcome never came (its caller went away) stops counting after a cooldown.
    trial_started: Option<Instant>,
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
        if let Some(cooldown) = self.cooldown {
            let trial_busy = inner.trial_started.is_some_and(|t| t.elapsed() < cooldown);
            if opened_at.elapsed() >= cooldown && !trial_busy {
                inner.trial_started = Some(Instant::now());
                return Ok(());
            }
        }
        Err(BreakerOpen { last_error: inner.last_error.clone().unwrap_or_default() })
    }

    /// Record a successful call: closes the breaker. Returns `true` if it was open
    /// (a trial call succeeded).
    pub fn record_success(&self) -> bool {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        inner.trial_started = None;
        inner.opened_at.take().is_some()
    }

    /// Record a failed call; returns `true` if this failure opened the breaker.
    /// A failure that is not the plugin's fault changes nothing (beyond ending a
    /// trial, so that the next call may try again).
    pub fn record_failure(&self, error: &PluginError) -> bool {
        let mut inner = self.lock();
        if !error.kind.is_plugin_fault() {
            inner.trial_started = None;
            return false;
        }
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        inner.total_failures = inner.total_failures.saturating_add(1);
        inner.last_error = Some(error.to_string());
        let was_open = inner.opened_at.is_some() && inner.trial_started.is_none();
        inner.trial_started = None;
        if inner.consecutive_failures >= self.threshold || inner.opened_at.is_some() {
            inner.opened_at = Some(Instant::now());
            return !was_open;
        }
        false
    }

    /// Record the outcome of a call.
    pub fn record<T>(&self, outcome: &Result<T, PluginError>) {
        match outcome {
            Ok(_) => {
                self.record_success();
            }
            Err(e) => {
                self.record_failure(e);
            }
        }
    }

    /// Open the breaker now, as it was when last seen open (for example by a
    /// previous process): calls wait for the cooldown, then a trial goes through.
    pub fn restore_open(&self, last_error: Option<String>) {
        let mut inner = self.lock();
        inner.consecutive_failures = self.threshold;
        inner.opened_at = Some(Instant::now());
        inner.trial_started = None;
        if last_error.is_some() {
            inner.last_error = last_error;
        }
    }

    /// Close the breaker and forget the consecutive failures (re-enable).
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        inner.opened_at = None;
        inner.trial_started = None;
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

    fn overloaded() -> PluginError {
        PluginError::new("p@1.0.0", "instantiate", ErrorKind::Overloaded("pool full".into()))
    }

    #[test]
    fn load_failures_do_not_count() {
        let breaker = CircuitBreaker::new(2, None);
        for _ in 0..100 {
            assert!(!breaker.record_failure(&overloaded()));
        }
        assert_eq!(breaker.state(), BreakerState::Closed { consecutive_failures: 0 });
        breaker.record_failure(&failure());
        breaker.record_failure(&overloaded());
        assert!(breaker.record_failure(&failure()), "plugin faults still add up across load failures");
    }

    #[test]
    fn a_trial_that_meets_a_full_pool_leaves_the_next_call_a_trial() {
        let breaker = CircuitBreaker::new(1, Some(Duration::ZERO));
        breaker.record_failure(&failure());
        assert!(breaker.check().is_ok(), "trial");
        assert!(!breaker.record_failure(&overloaded()));
        assert!(matches!(breaker.state(), BreakerState::Open { .. }), "still open");
        assert!(breaker.check().is_ok(), "another trial, not stuck waiting for the first");
        assert!(breaker.record_success(), "a successful trial closes it");
        assert!(!breaker.record_success(), "already closed");
    }

    #[test]
    fn cooldown_is_waited_for() {
        let breaker = CircuitBreaker::new(1, Some(Duration::from_millis(50)));
        breaker.record_failure(&failure());
        assert!(breaker.check().is_err(), "cooling down");
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.check().is_ok(), "half-open after the cooldown");
    }

    #[test]
    fn restored_open_waits_for_the_cooldown_and_keeps_the_error() {
        let breaker = CircuitBreaker::new(3, Some(Duration::from_secs(60)));
        breaker.restore_open(Some("plugin p@1: on-order: trapped".into()));
        let err = breaker.check().expect_err("open");
        assert!(err.last_error.contains("trapped"), "{err}");
        breaker.reset();
        assert!(breaker.check().is_ok());
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
        let cooldown = Duration::from_millis(40);
        let breaker = CircuitBreaker::new(1, Some(cooldown));
        breaker.record_failure(&failure());
        std::thread::sleep(cooldown);
        assert!(breaker.check().is_ok(), "trial allowed");
        assert!(breaker.check().is_err(), "only one trial at a time");
        breaker.record_failure(&failure());
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        assert!(breaker.check().is_err(), "a failed trial starts another cooldown");
        std::thread::sleep(cooldown);
        assert!(breaker.check().is_ok(), "next trial");
        assert!(breaker.record_success());
        assert!(breaker.check().is_ok());
        assert!(matches!(breaker.state(), BreakerState::Closed { .. }));
    }

    #[test]
    fn a_trial_whose_outcome_never_comes_does_not_block_the_next() {
        let cooldown = Duration::from_millis(40);
        let breaker = CircuitBreaker::new(1, Some(cooldown));
        breaker.record_failure(&failure());
        std::thread::sleep(cooldown);
        assert!(breaker.check().is_ok(), "trial, then its caller goes away");
        std::thread::sleep(cooldown);
        assert!(breaker.check().is_ok(), "another trial after a cooldown");
    }
}
