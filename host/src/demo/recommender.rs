//! The demo shop's recommender: `patron serve --demo` installs the first-party
//! recommender plugin (built into the binary) and trains it, so that the demo
//! storefront's strips show what the shop's orders say.

use anyhow::Context;

use crate::plugins::PluginHost;
use crate::plugins::recommendations::TrainReport;
use crate::store::shops::Shop;

/// The manifest of `plugins/recommender`.
const MANIFEST: &str = include_str!("../../../plugins/recommender/patron.toml");
/// Installs and enables `wasm` as the shop's `recommender` with every import it asks
/// for, unless it is installed already, and trains it unless it has a model. Returns
/// the training run, if one was needed.
pub async fn install(plugins: &PluginHost, shop: &Shop, wasm: Vec<u8>) -> anyhow::Result<Option<TrainReport>> {
    let manifest = patron_runtime::Manifest::from_toml(MANIFEST).context("the recommender's manifest")?;
    let db = plugins.db();
    if db.plugin_install(shop.id, &manifest.name).await?.is_none() {
        let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
        plugins.install(shop.id, wasm, manifest.clone(), grants, None, true).await?;
    }
    if db.recommendation_model_built_at(shop.id, &manifest.name).await?.is_some() {
        return Ok(None);
    }
    let active = plugins.recommender(shop.id).await?.context("the recommender is installed but disabled")?;
    Ok(Some(plugins.train_shop(shop, &active, &|_, _| {}).await?))
}
