//! Journeys as the host runs them: the triggers automation plugins listen to, queued
//! in the transaction that stores their cause ([`triggers`]); the scheduler's side,
//! which hands each trigger and each due timer to its plugin and applies what it
//! returns once ([`run`]); and what is pending per customer ([`state`]). Which install
//! listens to what is kept in [`listeners`]; the daily `customer.birthday` check is
//! [`birthdays`].

pub mod birthdays;
pub mod listeners;
pub mod run;
pub mod state;
pub mod triggers;

pub use listeners::Listeners;
pub use triggers::TRIGGER_JOB;
