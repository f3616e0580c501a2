//! Patron: a CRM engine a merchant runs beside an online store. See ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod analytics;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod import;
pub mod loyalty;
pub mod metrics;
pub mod plugins;
pub mod scheduler;
pub mod store;
pub mod timestamp;
pub mod widget;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::future::Future;

pub use api::app;
pub use api::state::AppState;
pub use store::Db;

/// Serves the HTTP API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
