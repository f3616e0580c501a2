//! The analytics definitions on a small hand-built shop, through `/v1/analytics/*`, on
//! both backends. Every expected figure is worked out by hand in the comments.
//!
//! The shop (currency USD). The period is March 2024, [2024-03-01, 2024-04-01), 31 days;
//! the previous period is [2024-01-30, 2024-03-01), also 31 days.
//!
//! | customer | purchases (USD minor units)                                                   |
//! |----------|-------------------------------------------------------------------------------|
//! | ann      | 12-10 5000, 02-10 3000, 03-05 4000, 03-07 EUR 9000, 03-20 6000                |
//! | bob      | 02-15 10000                                                                   |
//! | cat      | 03-10 2000 (and 03-12 9999 still pending: not a purchase)                     |
//! | dan      | 02-20 7000, 03-25 8000 refunded 3000 (net 5000)                               |
//! | eve      | 03-15 12000 refunded in full (status refunded: not a purchase)                |
//! | fay      | 01-05 1000                                                                    |
//! | (guest)  | 03-08 1500                                                                    |

use axum::http::StatusCode;
use patron::store::Db;
use patron::store::orders::{OrderInput, RefundInput};
use patron::store::points::{Entry, EntryKind};
use patron::store::shops::Shop;
use patron::timestamp::Timestamp;
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};

const PERIOD: &str = "since=2024-03-01&until=2024-04-01";

fn at(date: &str) -> i64 {
    Timestamp::parse(date).expect("date").0
}

async fn order(db: &Db, shop: &Shop, id: &str, customer: Option<&str>, date: &str, amount: i64, extra: Value) {
    let mut body = json!({
        "id": id, "placed_at": format!("{date}T12:00:00Z"),
        "lines": [{"title": "Beans", "quantity": 1, "unit_price": amount}]
    });
    if let Some(customer) = customer {
        body["customer"] = json!({"external_id": customer, "email": format!("{customer}@example.com")});
    }
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let input: OrderInput = serde_json::from_value(body).expect("order");
    // The API refuses an order in another currency than the shop's; one stored before that
    // rule (ann's EUR order) is validated against its own currency and stored directly, so
    // the figures' never-mix-currencies rule is still exercised.
    let currency = input.currency.clone().unwrap_or_else(|| shop.currency.clone());
    let (order, customer) = input.validate(&currency).expect("valid");
    db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
}

async fn refund(db: &Db, shop: &Shop, order_id: &str, amount: Option<i64>) {
    let refund = RefundInput { id: format!("r-{order_id}"), amount, reason: None };
    db.refund_order(shop.id, order_id, &refund).await.expect("refunded");
}

/// The shop in the table above.
async fn fixture(db: &Db) -> (Shop, String) {
    let (shop, keys) = testing::shop(db, "a").await;
    assert_eq!(shop.currency, "USD");
    let none = json!({});
    order(db, &shop, "ann-1", Some("ann"), "2023-12-10", 5000, none.clone()).await;
    order(db, &shop, "ann-2", Some("ann"), "2024-02-10", 3000, none.clone()).await;
    order(db, &shop, "ann-3", Some("ann"), "2024-03-05", 4000, none.clone()).await;
    order(db, &shop, "ann-eur", Some("ann"), "2024-03-07", 9000, json!({"currency": "EUR"})).await;
    order(db, &shop, "ann-4", Some("ann"), "2024-03-20", 6000, none.clone()).await;
    order(db, &shop, "bob-1", Some("bob"), "2024-02-15", 10000, none.clone()).await;
    order(db, &shop, "cat-1", Some("cat"), "2024-03-10", 2000, none.clone()).await;
    order(db, &shop, "cat-2", Some("cat"), "2024-03-12", 9999, json!({"status": "pending"})).await;
    order(db, &shop, "dan-1", Some("dan"), "2024-02-20", 7000, none.clone()).await;
    order(db, &shop, "dan-2", Some("dan"), "2024-03-25", 8000, none.clone()).await;
    refund(db, &shop, "dan-2", Some(3000)).await;
    order(db, &shop, "eve-1", Some("eve"), "2024-03-15", 12000, none.clone()).await;
    refund(db, &shop, "eve-1", None).await;
    order(db, &shop, "fay-1", Some("fay"), "2024-01-05", 1000, none.clone()).await;
    order(db, &shop, "guest-1", None, "2024-03-08", 1500, none).await;
    (shop, keys.secret)
}

/// Another shop's orders in the same months, which must never show in shop a's figures.
async fn other_shop(db: &Db) {
    let (shop, _) = testing::shop(db, "b").await;
    for (n, date) in ["2024-02-10", "2024-03-05", "2024-03-06"].into_iter().enumerate() {
        order(db, &shop, &format!("b-{n}"), Some("ann"), date, 50_000, json!({})).await;
    }
}

async fn get(db: &Db, secret: &str, uri: &str) -> (StatusCode, Value) {
    testing::call(&app(AppState::new(db.clone())), "GET", uri, Some(secret), None).await
}

fn rate(numerator: i64, denominator: i64) -> Value {
    #[allow(clippy::cast_precision_loss)]
    let rate = numerator as f64 / denominator as f64;
    json!({"numerator": numerator, "denominator": denominator, "rate": rate})
}

both_backends!(
    async fn overview_figures_match_the_hand_computed_ones(db) {
        let (_, secret) = fixture(&db).await;
        other_shop(&db).await;
        let (status, body) = get(&db, &secret, &format!("/v1/analytics/overview?{PERIOD}&bucket=week")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["currency"], "USD");
        assert_eq!(body["period"], json!({"since": "2024-03-01T00:00:00.000Z", "until": "2024-04-01T00:00:00.000Z"}));
        assert_eq!(body["previous_period"]["since"], "2024-01-30T00:00:00.000Z");
        let current = &body["current"];
        // USD purchases in March: ann 4000 + 6000, cat 2000, dan 8000 − 3000, guest 1500.
        assert_eq!(current["orders"], 5);
        assert_eq!(current["revenue"], 18_500);
        // 18500 / 5 = 3700.
        assert_eq!(current["aov"], 3700);
        // ann's EUR order is a purchase, but never added to USD money.
        assert_eq!(current["other_currency_orders"], 1);
        // ann, cat, dan (eve's only order was refunded in full; the guest is nobody).
        assert_eq!(current["active_customers"], 3);
        // cat's first purchase ever is in March; ann and dan bought before.
        assert_eq!(current["new_customers"], 1);
        assert_eq!(current["returning_customers"], 2);
        // Only ann bought twice or more in March: 1 / 3.
        assert_eq!(current["repurchase_rate"], rate(1, 3));
        // Active in the previous period: ann (02-10), bob (02-15), dan (02-20); of them
        // only bob bought nothing in March: 1 / 3.
        assert_eq!(current["churn_rate"], rate(1, 3));
        // USD net revenue per customer before April: ann 5000+3000+4000+6000 = 18000,
        // bob 10000, cat 2000, dan 7000+5000 = 12000, fay 1000: 43000 / 5 = 8600;
        // sorted 1000, 2000, 10000, 12000, 18000: median 10000.
        assert_eq!(current["ltv"], json!({"customers": 5, "average": 8600, "median": 10000}));
        // Weeks (Monday first) touched by March 2024: from 02-26 to 03-25.
        let weeks: Vec<&str> = current["trend"].as_array().expect("trend").iter().filter_map(|p| p["at"].as_str()).collect();
        assert_eq!(weeks, [
            "2024-02-26T00:00:00.000Z", "2024-03-04T00:00:00.000Z", "2024-03-11T00:00:00.000Z",
            "2024-03-18T00:00:00.000Z", "2024-03-25T00:00:00.000Z"
        ]);
        // Week of 03-04 (to Sunday 03-10): ann 4000 (03-05), guest 1500 (03-08), cat 2000
        // (03-10); week of 03-11: no purchase (cat's pending order, eve's refunded one).
        assert_eq!(current["trend"][1], json!({"at": "2024-03-04T00:00:00.000Z", "revenue": 7500, "orders": 3}));
        assert_eq!(current["trend"][2], json!({"at": "2024-03-11T00:00:00.000Z", "revenue": 0, "orders": 0}));
        assert_eq!(current["trend"][3], json!({"at": "2024-03-18T00:00:00.000Z", "revenue": 6000, "orders": 1}));
        assert_eq!(current["trend"][4], json!({"at": "2024-03-25T00:00:00.000Z", "revenue": 5000, "orders": 1}));
        let trend_revenue: i64 = current["trend"].as_array().expect("trend").iter().filter_map(|p| p["revenue"].as_i64()).sum();
        assert_eq!(trend_revenue, 18_500);

        let previous = &body["previous"];
        // [01-30, 03-01): ann 3000, bob 10000, dan 7000.
        assert_eq!((previous["orders"].as_i64(), previous["revenue"].as_i64()), (Some(3), Some(20_000)));
        // 20000 / 3 = 6666.67, rounded to 6667.
        assert_eq!(previous["aov"], 6667);
        // bob and dan first bought in February; ann returned.
        assert_eq!((previous["new_customers"].as_i64(), previous["returning_customers"].as_i64()), (Some(2), Some(1)));
        assert_eq!(previous["repurchase_rate"], rate(0, 3));
        // Active in [12-30, 01-30): fay only, who bought nothing after: 1 / 1.
        assert_eq!(previous["churn_rate"], rate(1, 1));
        // Before March: ann 8000, bob 10000, dan 7000, fay 1000: 26000 / 4 = 6500;
        // sorted 1000, 7000, 8000, 10000: median (7000 + 8000) / 2 = 7500.
        assert_eq!(previous["ltv"], json!({"customers": 4, "average": 6500, "median": 7500}));
    }
);

both_backends!(
    async fn cohort_rows_match_the_hand_computed_ones(db) {
        let (_, secret) = fixture(&db).await;
        other_shop(&db).await;
        let (status, body) = get(&db, &secret, "/v1/analytics/cohorts?since=2023-12-01&until=2024-04-01").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let months: Vec<&str> = body["cohorts"].as_array().expect("cohorts").iter().filter_map(|c| c["month"].as_str()).collect();
        assert_eq!(months, ["2023-12", "2024-01", "2024-02", "2024-03"]);
        // December: ann alone; she bought in December (month 0), not in January (1),
        // in February (2) and in March (3, her EUR order counts as a purchase too).
        assert_eq!(body["cohorts"][0], json!({"month": "2023-12", "customers": 1,
            "retention": [rate(1, 1), rate(0, 1), rate(1, 1), rate(1, 1)]}));
        // February: bob and dan; in March only dan bought again: 1 / 2.
        assert_eq!(body["cohorts"][2], json!({"month": "2024-02", "customers": 2,
            "retention": [rate(2, 2), rate(1, 2)]}));
        // March: cat (eve's refunded order makes her no customer of any cohort).
        assert_eq!(body["cohorts"][3]["customers"], 1);
    }
);

both_backends!(
    async fn rfm_grid_and_a_cell_drill_down(db) {
        let (_, secret) = fixture(&db).await;
        other_shop(&db).await;
        let (status, body) = get(&db, &secret, "/v1/analytics/rfm").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Five purchasing customers, score = rank with n = 5. Last purchase ascending:
        // fay, bob, cat, ann (03-20), dan (03-25) → R 1..5. Purchases ascending: bob, cat,
        // fay 1 (rank 1 → F 1), dan 2 (rank 4 → F 4), ann 5 (rank 5 → F 5).
        assert_eq!(body["customers"], 5);
        let occupied: Vec<(i64, i64, i64)> = body["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .filter(|c| c["customers"].as_i64() != Some(0))
            .map(|c| (c["r"].as_i64().unwrap_or(0), c["f"].as_i64().unwrap_or(0), c["spent"].as_i64().unwrap_or(0)))
            .collect();
        // Spent is the customer's stat (net, every currency): ann 27000, dan 12000, cat 2000, bob 10000, fay 1000.
        assert_eq!(occupied, [(5, 4, 12_000), (4, 5, 27_000), (3, 1, 2_000), (2, 1, 10_000), (1, 1, 1_000)]);
        assert_eq!(body["cells"].as_array().map(Vec::len), Some(25));

        let (status, page) = get(&db, &secret, "/v1/analytics/rfm/cells/4/5/customers").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["customers"].as_array().map(Vec::len), Some(1));
        assert_eq!(page["customers"][0]["external_id"], "ann");
        assert!(page["customers"][0]["id"].is_string(), "ids leave as strings: {page}");
        assert_eq!(page["customers"][0]["last_order_at"], "2024-03-20T12:00:00.000Z");
        assert_eq!(page["next_after"], Value::Null);
        let (_, empty) = get(&db, &secret, "/v1/analytics/rfm/cells/5/5/customers").await;
        assert_eq!(empty["customers"], json!([]));
    }
);

both_backends!(
    async fn rfm_cells_page_through_their_customers(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        // Four one-order customers on the same day share every rank: all in cell (1, 1).
        for name in ["p", "q", "r", "s"] {
            order(&db, &shop, name, Some(name), "2024-03-01", 1000, json!({})).await;
        }
        let mut seen = Vec::new();
        let mut uri = "/v1/analytics/rfm/cells/1/1/customers?limit=3".to_owned();
        loop {
            let (status, page) = get(&db, &keys.secret, &uri).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            seen.extend(page["customers"].as_array().expect("page").iter().filter_map(|c| c["external_id"].as_str().map(str::to_owned)));
            match page["next_after"].as_str() {
                Some(after) => uri = format!("/v1/analytics/rfm/cells/1/1/customers?limit=3&after={after}"),
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, ["p", "q", "r", "s"]);
    }
);

both_backends!(
    async fn points_liability_and_loyalty_flow(db) {
        let (shop, secret) = fixture(&db).await;
        let ann = db.customer_by_external_id(shop.id, "ann").await.expect("read").expect("ann").id;
        let bob = db.customer_by_external_id(shop.id, "bob").await.expect("read").expect("bob").id;
        // (customer, kind, delta, when): earned 50 and expired 20 before March, earned 100
        // and redeemed 30 in March.
        let entries = [
            (bob, EntryKind::Earn, 50, "2024-02-01"),
            (bob, EntryKind::Expire, -20, "2024-02-10"),
            (ann, EntryKind::Earn, 100, "2024-03-05"),
            (ann, EntryKind::Redeem, -30, "2024-03-10"),
        ];
        for (n, (customer_id, kind, delta, date)) in entries.into_iter().enumerate() {
            let key = format!("fixture-{n}");
            let entry = Entry { customer_id, delta, kind, reason: "fixture", order_id: None, source: "test", idempotency_key: key.clone(), expires_at: None };
            db.append_points(shop.id, &entry).await.expect("appended");
            sqlx::query("UPDATE points_ledger SET created_at = $1 WHERE shop_id = $2 AND idempotency_key = $3")
                .bind(at(date)).bind(shop.id).bind(key).execute(db.pool()).await.expect("backdated");
        }
        for (customer_id, tier) in [(ann, "gold"), (bob, "silver")] {
            sqlx::query("INSERT INTO members (shop_id, customer_id, tier, tier_since) VALUES ($1, $2, $3, 0)")
                .bind(shop.id).bind(customer_id).bind(tier).execute(db.pool()).await.expect("member");
        }
        for (code, date) in [("WELCOME1", "2024-02-20"), ("WELCOME2", "2024-03-02")] {
            sqlx::query("INSERT INTO coupons (shop_id, code, customer_id, discount_kind, discount_value, currency, description, source, created_at) \
                         VALUES ($1, $2, NULL, 'percent', 10, 'USD', 'welcome', 'loyalty', $3)")
                .bind(shop.id).bind(code).bind(at(date)).execute(db.pool()).await.expect("coupon");
        }
        sqlx::query("INSERT INTO coupon_redemptions (shop_id, code, customer_id, order_id, redeemed_at) VALUES ($1, 'WELCOME1', $2, 'ann-3', $3)")
            .bind(shop.id).bind(ann).bind(at("2024-03-05")).execute(db.pool()).await.expect("redemption");

        let (status, body) = get(&db, &secret, &format!("/v1/analytics/overview?{PERIOD}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Before April: 50 − 20 + 100 − 30 = 100; before March: 50 − 20 = 30.
        assert_eq!(body["current"]["points_liability"], json!({"points": 100, "value": null}));
        assert_eq!(body["previous"]["points_liability"], json!({"points": 30, "value": null}));

        let (status, body) = get(&db, &secret, &format!("/v1/analytics/loyalty?{PERIOD}&bucket=month")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["tiers"], json!([{"tier": "gold", "members": 1}, {"tier": "silver", "members": 1}]));
        let march = json!({"earned": 100, "redeemed": 30, "expired": 0, "reversed": 0, "adjusted": 0});
        assert_eq!(body["points"]["current"], march);
        assert_eq!(body["points"]["previous"], json!({"earned": 50, "redeemed": 0, "expired": 20, "reversed": 0, "adjusted": 0}));
        assert_eq!(body["points"]["trend"], json!([{"at": "2024-03-01T00:00:00.000Z", "earned": 100, "redeemed": 30, "expired": 0, "reversed": 0, "adjusted": 0}]));
        assert_eq!(body["coupons"]["current"], json!([{"source": "loyalty", "issued": 1, "redeemed": 1}]));
        assert_eq!(body["coupons"]["previous"], json!([{"source": "loyalty", "issued": 1, "redeemed": 0}]));
    }
);

both_backends!(
    async fn bad_periods_are_refused_with_a_json_error(db) {
        let (_, keys) = testing::shop(&db, "a").await;
        for uri in [
            "/v1/analytics/overview?since=2024-03-01&until=2024-03-01",
            "/v1/analytics/overview?since=2024-04-01&until=2024-03-01",
            "/v1/analytics/overview?since=2020-01-01&until=2024-03-01",
            "/v1/analytics/overview?since=2024-01-01&until=2025-06-01&bucket=day",
            "/v1/analytics/overview?bucket=year",
            "/v1/analytics/overview?since=last-tuesday",
            "/v1/analytics/loyalty?bucket=hour",
            "/v1/analytics/cohorts?since=2024-03-01&until=2023-03-01",
            "/v1/analytics/rfm/cells/0/3/customers",
            "/v1/analytics/rfm/cells/3/x/customers",
            "/v1/analytics/rfm/cells/3/3/customers?limit=0",
            "/v1/analytics/rfm/cells/3/3/customers?after=abc",
        ] {
            let (status, body) = get(&db, &keys.secret, uri).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {body}");
            assert_eq!(body["error"]["code"], "invalid_field", "{uri}: {body}");
        }
        // Unix milliseconds are accepted as well as ISO 8601.
        let (status, body) = get(&db, &keys.secret, "/v1/analytics/overview?since=1709251200000&until=1711929600000").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["period"]["since"], "2024-03-01T00:00:00.000Z");
        // The publishable key is not enough.
        let (status, body) = get(&db, &keys.publishable, "/v1/analytics/definitions").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = get(&db, &keys.secret, "/v1/analytics/definitions").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let names: Vec<&str> = body["definitions"].as_array().expect("list").iter().filter_map(|d| d["name"].as_str()).collect();
        for figure in ["revenue", "aov", "repurchase_rate", "churn_rate", "ltv", "points_liability", "cohorts", "rfm"] {
            assert!(names.contains(&figure), "{figure} is defined: {names:?}");
        }
    }
);
