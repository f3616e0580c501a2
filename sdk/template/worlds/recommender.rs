//! {{name}}: a Patron recommender (most-bought products).

use std::collections::BTreeMap;

use patron_sdk::{Order, Product, RecommendRequest, Recommender, Result, ScoredItem};

/// The plugin.
struct Plugin;

/// The model: units sold per product id, as JSON.
type Model = BTreeMap<String, u64>;

fn decode(model: &[u8]) -> Result<Model> {
    if model.is_empty() {
        return Ok(Model::new());
    }
    serde_json::from_slice(model).map_err(|e| patron_sdk::Error::new("bad-model", e.to_string()))
}

impl Recommender for Plugin {
    fn train(model: Option<Vec<u8>>, orders: Vec<Order>, _catalogue: Vec<Product>) -> Result<Vec<u8>> {
        let mut counts = decode(model.as_deref().unwrap_or_default())?;
        for item in orders.iter().flat_map(|o| &o.items) {
            *counts.entry(item.product_id.clone()).or_default() += u64::from(item.quantity);
        }
        serde_json::to_vec(&counts).map_err(|e| patron_sdk::Error::new("bad-model", e.to_string()))
    }

    fn recommend(model: Vec<u8>, request: RecommendRequest) -> Result<Vec<ScoredItem>> {
        let mut items: Vec<ScoredItem> = decode(&model)?
            .into_iter()
            .filter(|(id, _)| !request.context_products.contains(id))
            .map(|(product_id, n)| ScoredItem { product_id, score: n as f64 })
            .collect();
        items.sort_by(|a, b| b.score.total_cmp(&a.score));
        items.truncate(request.limit as usize);
        Ok(items)
    }
}

patron_sdk::export!(recommender: Plugin);
