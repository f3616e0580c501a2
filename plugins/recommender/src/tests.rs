//! The recommender through its entry points, as the host calls it, on
//! hand-built shops.

use patron_sdk::testing::TestHost;
use patron_sdk::time::DAY_MS;
use patron_sdk::{LineItem, Money, Order, OrderStatus, Product, RecommendRequest, Recommender, ScoredItem};

use super::*;
use crate::model::ModelView;

const NOW: i64 = 1_700_000_000_000;

/// The category of each test product.
fn category(id: &str) -> Option<String> {
    let c = match id {
        "A" | "D" | "N" => "audio",
        "B" | "E" => "cables",
        "C" | "F" | "G" => "cases",
        _ => return None,
    };
    Some(c.to_owned())
}

fn order(k: usize, days_ago: i64, items: &[&str]) -> Order {
    Order {
        id: format!("o{k}"),
        external_id: format!("{k}"),
        customer_id: format!("c{}", k % 17),
        status: OrderStatus::Paid,
        total: Money::new(1_000, "EUR"),
        items: items
            .iter()
            .map(|id| LineItem {
                product_id: (*id).to_owned(),
                category: category(id),
                quantity: 1,
                unit_price: Money::new(1_000, "EUR"),
            })
            .collect(),
        placed_at: NOW - days_ago * DAY_MS - (k as i64) * 60_000,
    }
}

/// 100 orders: C (a best seller) in 70 of them, including every order with
/// A; B in 16 of A's 20 orders and in a few others; fillers D–G.
fn shop() -> Vec<Order> {
    (0..100)
        .map(|k| {
            let mut items = Vec::new();
            if k % 10 < 7 {
                items.push("C");
            }
            if k % 5 == 0 {
                items.push("A");
                if k % 25 != 0 {
                    items.push("B");
                }
            } else if k % 7 == 1 {
                items.push("B");
            }
            if k % 3 == 0 {
                items.push("D");
            }
            if k % 4 == 1 {
                items.push("E");
            }
            if k % 6 == 2 {
                items.push("F");
            }
            if k % 9 == 4 {
                items.push("G");
            }
            order(k, (k % 20) as i64, &items)
        })
        .collect()
}

fn catalogue() -> Vec<Product> {
    ["A", "B", "C", "D", "E", "F", "G", "N"]
        .iter()
        .map(|id| Product {
            id: (*id).to_owned(),
            name: format!("product {id}"),
            category: category(id),
            price: Money::new(1_000, "EUR"),
        })
        .collect()
}

fn host(config: &str) -> TestHost {
    TestHost::new().at(NOW).config(config)
}

/// Train over `chunks` in turn, as the host does.
fn train_chunks(config: &str, chunks: &[&[Order]]) -> Vec<u8> {
    let mut host = host(config);
    let mut model = None;
    for chunk in chunks {
        let blob =
            host.run(|| RecommenderPlugin::train(model.take(), chunk.to_vec(), catalogue())).expect("train succeeds");
        model = Some(blob);
    }
    model.unwrap_or_default()
}

fn ask(config: &str, model: &[u8], context: &[&str], limit: u32) -> Vec<ScoredItem> {
    let request = RecommendRequest {
        customer_id: None,
        context_products: context.iter().map(|s| (*s).to_owned()).collect(),
        limit,
    };
    host(config).run(|| RecommenderPlugin::recommend(model.to_vec(), request)).expect("recommend succeeds")
}

fn ids(items: &[ScoredItem]) -> Vec<&str> {
    items.iter().map(|i| i.product_id.as_str()).collect()
}

fn position(items: &[ScoredItem], id: &str) -> Option<usize> {
    items.iter().position(|i| i.product_id == id)
}

#[test]
fn frequently_bought_together_ranks_the_planted_partner_above_the_best_seller() {
    let orders = shop();
    // Raw co-purchase counts favour the best seller: every A order has C.
    let with_a = |p: &str| {
        orders
            .iter()
            .filter(|o| o.items.iter().any(|i| i.product_id == "A"))
            .filter(|o| o.items.iter().any(|i| i.product_id == p))
            .count()
    };
    assert!(with_a("C") > with_a("B"), "the test plants a best seller that raw counts would put first");

    for similarity in ["cosine", "lift"] {
        let config = format!(r#"{{"similarity": "{similarity}"}}"#);
        let model = train_chunks(&config, &[&orders]);
        let recs = ask(&config, &model, &["patron:placement=product", "A"], 5);
        assert_eq!(recs.first().map(|i| i.product_id.as_str()), Some("B"), "{similarity}: {recs:?}");
        let (b, c) = (position(&recs, "B"), position(&recs, "C"));
        assert!(c.is_none() || b < c, "{similarity}: {recs:?}");
        assert!(recs[0].score >= 3.0 && recs[0].score < 4.0, "a co-purchase neighbour scores in [3, 4)");
        assert!(position(&recs, "A").is_none(), "never the context product itself");
    }
}

#[test]
fn chunked_training_equals_one_shot_training() {
    let orders = shop();
    let one_shot = train_chunks("{}", &[&orders]);
    let (a, rest) = orders.split_at(7);
    let (b, c) = rest.split_at(60);
    assert_eq!(train_chunks("{}", &[a, b, c]), one_shot, "in order");
    assert_eq!(train_chunks("{}", &[c, a, b]), one_shot, "out of order");
    let singles: Vec<&[Order]> = orders.chunks(1).collect();
    assert_eq!(train_chunks("{}", &singles), one_shot, "one order per chunk");
    assert_eq!(train_chunks("{}", &[&[], &orders, &[]]), one_shot, "empty chunks change nothing");
}

#[test]
fn a_product_without_sales_falls_back_to_its_category_then_overall() {
    let model = train_chunks("{}", &[&shop()]);
    // N is in the catalogue (audio) but never sold.
    let recs = ask("{}", &model, &["N"], 10);
    assert!(!recs.is_empty());
    assert_eq!(ids(&recs)[..2], ["D", "A"], "audio best sellers first: {recs:?}");
    assert!(recs[..2].iter().all(|i| (2.0..3.0).contains(&i.score)));
    assert_eq!(recs[2].product_id, "C", "then the best seller overall: {recs:?}");
    assert!(recs[2..].iter().all(|i| (1.0..2.0).contains(&i.score)));
    // A product the model has never heard of: best sellers overall.
    let unknown = ask("{}", &model, &["ZZZ"], 3);
    assert_eq!(ids(&unknown), ["C", "D", "B"]);
    // The home page: no context.
    assert_eq!(ids(&ask("{}", &model, &["patron:placement=home"], 3)), ["C", "D", "B"]);
}

#[test]
fn the_category_cap_keeps_lists_diverse() {
    let config = r#"{"max-per-category": 1}"#;
    let model = train_chunks(config, &[&shop()]);
    let recs = ask(config, &model, &["patron:placement=home"], 10);
    assert_eq!(ids(&recs), ["C", "D", "B"], "one per category: cases, audio, cables");
    let uncapped = ask("{}", &model, &["patron:placement=home"], 10);
    assert_eq!(uncapped.len(), 7);
}

#[test]
fn the_limit_is_respected() {
    let model = train_chunks("{}", &[&shop()]);
    for limit in [0, 1, 3, 6] {
        assert_eq!(ask("{}", &model, &["A"], limit).len(), limit as usize);
    }
    assert_eq!(ask("{}", &model, &["A"], u32::MAX).len(), 6, "every other product, no more");
}

#[test]
fn an_empty_model_gives_an_empty_list() {
    assert_eq!(ask("{}", &[], &["A"], 10), vec![]);
    assert_eq!(ask("{}", &[], &["patron:placement=home"], 10), vec![]);
    let no_sales = train_chunks("{}", &[&[]]);
    assert!(!no_sales.is_empty());
    assert_eq!(ask("{}", &no_sales, &["A"], 10), vec![]);
    let cancelled: Vec<Order> = shop().into_iter().map(|o| Order { status: OrderStatus::Cancelled, ..o }).collect();
    let model = train_chunks("{}", &[&cancelled]);
    assert_eq!(ask("{}", &model, &["patron:placement=home"], 10), vec![], "only paid orders count");
}

#[test]
fn lists_have_no_duplicates_and_never_the_context() {
    let model = train_chunks("{}", &[&shop()]);
    let recs = ask("{}", &model, &["patron:placement=cart", "A", "B", "A"], 20);
    let mut seen = std::collections::HashSet::new();
    assert!(recs.iter().all(|i| seen.insert(i.product_id.clone())), "{recs:?}");
    assert!(position(&recs, "A").is_none() && position(&recs, "B").is_none());
    assert!(recs.windows(2).all(|w| w[0].score >= w[1].score), "best first: {recs:?}");
}

#[test]
fn popularity_counts_the_window_ending_at_the_newest_order() {
    // F sold 30 times 100 days ago; G 3 times in the last week.
    let mut orders: Vec<Order> = (0..30).map(|k| order(k, 100, &["F"])).collect();
    orders.extend((30..33).map(|k| order(k, 2, &["G"])));
    let config = r#"{"window-days": 30}"#;
    let model = train_chunks(config, &[&orders]);
    assert_eq!(ids(&ask(config, &model, &[], 5)), ["G", "F"], "F is outside the window, ranked after");
    let wide = r#"{"window-days": 365}"#;
    let model = train_chunks(wide, &[&orders]);
    assert_eq!(ids(&ask(wide, &model, &[], 5)), ["F", "G"]);
    // The newest order first: the window moves on when older chunks arrive.
    let model = train_chunks(config, &[&orders[30..], &orders[..30]]);
    assert_eq!(ids(&ask(config, &model, &[], 5)), ["G", "F"]);
    // An order dated in the future (per the clock) counts as now.
    let mut future = orders.clone();
    future.push(order(99, -1000, &["E"]));
    let model = train_chunks(config, &[&future]);
    assert_eq!(ids(&ask(config, &model, &[], 5)), ["G", "E", "F"]);
}

#[test]
fn for_you_weights_recent_history_higher() {
    // X goes with P, Y goes with Q.
    let mut orders = Vec::new();
    for k in 0..10 {
        orders.push(order(k, 1, &["P", "X"]));
        orders.push(order(k + 10, 1, &["Q", "Y"]));
    }
    let model = train_chunks("{}", &[&orders]);
    let recent_p = ask("{}", &model, &["patron:placement=for-you", "P", "Q"], 4);
    assert_eq!(ids(&recent_p), ["P", "X", "Q", "Y"], "the latest entry and its partner first");
    let recent_q = ask("{}", &model, &["patron:placement=for-you", "Q", "P"], 4);
    assert_eq!(ids(&recent_q), ["Q", "Y", "P", "X"]);
    let neighbours_only = r#"{"repeat-weight": 0}"#;
    assert_eq!(ids(&ask(neighbours_only, &model, &["patron:placement=for-you", "P", "Q"], 2)), ["X", "Y"]);
    // Without history: best sellers, never empty.
    assert_eq!(ask("{}", &model, &["patron:placement=for-you"], 2).len(), 2);
}

#[test]
fn for_you_prefers_the_best_sellers_of_the_shoppers_categories() {
    // Cables (E) outsell audio (D, A) overall; the shopper's history is audio.
    let mut orders: Vec<Order> = (0..10).map(|k| order(k, 1, &["E"])).collect();
    orders.extend((10..15).map(|k| order(k, 1, &["D"])));
    orders.extend((15..17).map(|k| order(k, 1, &["A"])));
    let model = train_chunks("{}", &[&orders]);
    assert_eq!(ids(&ask("{}", &model, &["patron:placement=home"], 3)), ["E", "D", "A"]);
    let recs = ask("{}", &model, &["patron:placement=for-you", "A"], 3);
    assert_eq!(ids(&recs), ["A", "D", "E"], "{recs:?}");
    let no_taste = r#"{"taste-weight": 0, "repeat-weight": 0}"#;
    let fallback = ask(no_taste, &model, &["patron:placement=for-you", "A"], 3);
    assert_eq!(ids(&fallback), ["D", "A", "E"], "the popular fallback: the history's categories, then overall");
    assert!(fallback.iter().all(|i| i.score < 3.0), "nothing personal: {fallback:?}");
}

#[test]
fn recently_viewed_echoes_the_history() {
    let model = train_chunks("{}", &[&shop()]);
    let recs = ask("{}", &model, &["patron:placement=recently-viewed", "E", "A", "E", "Q"], 10);
    assert_eq!(ids(&recs), ["E", "A", "Q"]);
    assert!(recs.iter().all(|i| (4.0..5.0).contains(&i.score)));
    assert_eq!(ids(&ask("{}", &[], &["patron:strategy=recently-viewed", "E"], 10)), ["E"], "needs no model");
}

#[test]
fn placements_follow_the_config_and_directives_override_it() {
    let model = train_chunks("{}", &[&shop()]);
    let config = r#"{"placements": {"product": "popular"}}"#;
    let popular = ask(config, &model, &["patron:placement=product", "A"], 2);
    assert_eq!(ids(&popular), ["D", "C"], "audio first, then overall");
    let fbt = ask(config, &model, &["patron:placement=product", "patron:strategy=frequently-bought-together", "A"], 1);
    assert_eq!(ids(&fbt), ["B"]);
    // An unknown placement: inferred from the context.
    assert_eq!(ids(&ask(config, &model, &["patron:placement=nowhere", "A"], 1)), ["B"]);
}

#[test]
fn neighbours_are_bounded_per_product() {
    let orders = shop();
    let full = train_chunks("{}", &[&orders]);
    let cut = train_chunks(r#"{"max-neighbours": 1}"#, &[&orders]);
    assert!(cut.len() < full.len());
    let view = ModelView::parse(&cut).expect("parses");
    for i in 0..view.products {
        let mut n = 0;
        view.row(i, |_, _| n += 1).expect("row");
        assert!(n <= 1, "row {i} holds {n} neighbours");
    }
    // The kept neighbour of A is its best one.
    assert_eq!(ask("{}", &cut, &["A"], 1)[0].product_id, "B");
}

#[test]
fn bad_models_and_configs_are_errors() {
    let request = RecommendRequest { context_products: vec!["A".into()], limit: 3, ..RecommendRequest::default() };
    let err = host("{}").run(|| RecommenderPlugin::recommend(b"nonsense".to_vec(), request.clone()));
    assert_eq!(err.err().map(|e| e.code).as_deref(), Some("bad-model"));
    let mut truncated = train_chunks("{}", &[&shop()]);
    truncated.truncate(truncated.len() - 3);
    let err = host("{}").run(|| RecommenderPlugin::train(Some(truncated), vec![], vec![]));
    assert_eq!(err.err().map(|e| e.code).as_deref(), Some("bad-model"));
    for config in [r#"{"min-support": 0}"#, r#"{"placements": {"home": "magic"}}"#, r#"{"nope": 1}"#] {
        let err = host(config).run(|| RecommenderPlugin::recommend(vec![], request.clone()));
        assert_eq!(err.err().map(|e| e.code).as_deref(), Some("bad-config"), "{config}");
    }
}

#[test]
fn a_model_round_trips_through_decode() {
    let config = Config::default();
    let blob = train(&config, None, &shop(), &catalogue(), NOW).expect("train");
    let again = crate::model::Counts::decode(&blob).expect("decode").encode(&config).expect("encode");
    assert_eq!(again, blob);
}

#[test]
fn the_manifest_schema_matches_the_config() {
    let manifest: toml::Value = toml::from_str(include_str!("../patron.toml")).expect("patron.toml parses");
    assert_eq!(manifest.get("world").and_then(toml::Value::as_str), Some("recommender"));
    let properties = manifest
        .get("config-schema")
        .and_then(|s| s.get("properties"))
        .and_then(toml::Value::as_table)
        .expect("config-schema.properties");
    // Every documented default is the plugin's default.
    let mut defaults = serde_json::Map::new();
    for (key, schema) in properties {
        if let Some(default) = schema.get("default") {
            let json = serde_json::to_value(default).expect("toml to json");
            defaults.insert(key.clone(), json);
        }
    }
    assert_eq!(defaults.len(), properties.len() - 1, "every key but placements has a default");
    let text = serde_json::Value::Object(defaults).to_string();
    let config: Config = patron_sdk::json::from_str(&text).expect("schema keys are config keys");
    assert_eq!(config, Config::default());
    let native: Config = serde_json::from_str(&text).expect("schema keys are config keys (serde)");
    assert_eq!(native, config, "the serde reading (the host's benchmark) agrees");
    let error = |text: &str| patron_sdk::json::from_str::<Config>(text).map(|_| ()).expect_err("an error").to_string();
    assert_eq!(error(r#"{"window_days": 3}"#), "window_days: unknown field");
    assert!(error(r#"{"placements": {"home": "random"}}"#).starts_with("placements.home: expected \"popular\""));
    assert!(error(r#"{"similarity": "jaccard"}"#).starts_with("similarity: expected \"cosine\""));
    let placements = properties
        .get("placements")
        .and_then(|p| p.get("properties"))
        .and_then(toml::Value::as_table)
        .expect("placements.properties");
    assert_eq!(placements.len(), Config::default_placements().len());
    for (name, strategy) in Config::default_placements() {
        let default = placements.get(name).and_then(|p| p.get("default")).and_then(toml::Value::as_str);
        assert_eq!(default, Some(strategy.name()), "{name}");
    }
}

#[test]
fn a_large_shop_gives_a_bounded_model() {
    // 5 000 products in 50 categories, 20 000 orders of 1–8 products drawn
    // with a skew towards low ids, trained in chunks of 2 000.
    let mut seed = 42u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let orders: Vec<Order> = (0..20_000)
        .map(|k| {
            let items = (0..1 + next(8))
                .map(|_| {
                    let bound = next(5_000) + 1;
                    let p = next(bound);
                    LineItem {
                        product_id: format!("sku-{p:05}"),
                        category: Some(format!("cat-{}", p % 50)),
                        quantity: 1,
                        unit_price: Money::new(1_000, "EUR"),
                    }
                })
                .collect();
            Order { id: format!("o{k}"), items, placed_at: NOW - (k as i64 % 400) * DAY_MS, ..Order::default() }
        })
        .collect();
    let config = r#"{"max-neighbours": 20}"#;
    let chunks: Vec<&[Order]> = orders.chunks(2_000).collect();
    let model = train_chunks(config, &chunks);
    eprintln!("model of {} bytes", model.len());
    assert!(model.len() < 1 << 20, "model of {} bytes", model.len());
    let view = ModelView::parse(&model).expect("parses");
    assert_eq!(view.orders, 20_000);
    for i in 0..view.products {
        let mut n = 0;
        view.row(i, |_, _| n += 1).expect("row");
        assert!(n <= 20, "row {i} holds {n} neighbours");
    }
    let recs = ask(config, &model, &["sku-00001"], 10);
    assert_eq!(recs.len(), 10);
    assert!(recs.iter().all(|i| i.product_id != "sku-00001"));
}
