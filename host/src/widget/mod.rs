//! The storefront widget's side of the host: the built widget under `/widget/`
//! ([`assets`]) and, for `patron serve --demo`, a small storefront under `/demo/` that
//! embeds the widget exactly as a merchant would ([`demo`]).
//!
//! The widget itself is built by `web-widget/build.sh` into `web-widget/dist/`; the host
//! serves that directory and never builds anything.

pub mod assets;
pub mod demo;

use axum::Router;

pub use assets::WidgetAssets;
pub use demo::{DemoMember, DemoStore};

/// The widget's routes: `/widget/*` always, `/demo/*` when a demo store is given.
/// Stateless towards the app, so it merges into any `Router<S>`.
pub fn router<S: Clone + Send + Sync + 'static>(assets: WidgetAssets, demo: Option<DemoStore>) -> Router<S> {
    let router = assets::router(assets);
    match demo {
        Some(store) => router.merge(demo::router(store)),
        None => router,
    }
}
