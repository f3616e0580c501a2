//! Patron: a CRM engine a merchant runs beside an online store. See ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod analytics;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod delivery;
pub mod demo;
pub mod embedded;
pub mod import;
pub mod journeys;
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

/// Serves `app` (see [`api::app`]) on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address lets `/metrics` tell loopback callers from others.
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
