//! The console's figures, read from the rollups (`store::rollups`), against the same
//! figures computed here straight from the orders by their definitions — after orders,
//! refunds, re-posts, merges, an erasure and an import — and the rollups the writes kept
//! against the ones derived from scratch, on both backends.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use patron::analytics::definitions::{Bucket, DAY_MS, month_index, month_start_ms};
use patron::analytics::overview::{Figures, Ltv, TrendPoint};
use patron::analytics::rfm::SCORES;
use patron::analytics::{Period, Rate, rounded_mean};
use patron::both_backends;
use patron::store::Db;
use patron::store::orders::{OrderInput, RefundInput};
use patron::store::privacy::Requester;
use patron::store::shops::Shop;
use patron::testing;
use patron::timestamp::to_rfc3339;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// 2024-01-10T00:00:00Z.
const BASE: i64 = 1_704_844_800_000;
const CUSTOMERS: usize = 15;

/// One paid or fulfilled order, as the definitions read it.
#[derive(Debug, Clone)]
struct Purchase {
    customer: Option<i64>,
    mine: bool,
    net: i64,
    at: i64,
}

async fn purchases(db: &Db, shop: &Shop) -> Vec<Purchase> {
    let rows: Vec<(Option<i64>, String, i64, i64)> = sqlx::query_as(
        "SELECT customer_id, currency, total - refunded, placed_at FROM orders \
         WHERE shop_id = $1 AND status IN ('paid', 'fulfilled')",
    )
    .bind(shop.id)
    .fetch_all(db.pool())
    .await
    .expect("orders");
    rows.into_iter()
        .map(|(customer, currency, net, at)| Purchase { customer, mine: currency == shop.currency, net, at })
        .collect()
}

fn within(p: &Purchase, since: i64, until: i64) -> bool {
    p.at >= since && p.at < until
}

/// The customers with a purchase in [since, until), with their purchases there.
fn active(all: &[Purchase], since: i64, until: i64) -> BTreeMap<i64, usize> {
    let mut active = BTreeMap::new();
    for p in all.iter().filter(|p| within(p, since, until)) {
        if let Some(c) = p.customer {
            *active.entry(c).or_insert(0) += 1;
        }
    }
    active
}

fn ltv(all: &[Purchase], until: i64) -> Ltv {
    let mut per: BTreeMap<i64, i64> = BTreeMap::new();
    for p in all.iter().filter(|p| p.mine && p.at < until) {
        if let Some(c) = p.customer {
            *per.entry(c).or_insert(0) += p.net;
        }
    }
    let mut values: Vec<i64> = per.into_values().collect();
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        return Ltv { customers: 0, average: None, median: None };
    }
    let (low, high) = (values[n.div_ceil(2) - 1], values[(n + 2) / 2 - 1]);
    let customers = i64::try_from(n).expect("n");
    Ltv {
        customers,
        average: rounded_mean(values.iter().sum(), customers),
        median: Some(if low == high { low } else { (low + high).div_euclid(2) }),
    }
}

/// The overview figures of `period` by the definitions (points copied from `actual`).
fn expected_figures(all: &[Purchase], period: Period, actual: &Figures) -> Figures {
    let (since, until) = (period.since, period.until);
    let mine: Vec<&Purchase> = all.iter().filter(|p| p.mine && within(p, since, until)).collect();
    let revenue: i64 = mine.iter().map(|p| p.net).sum();
    let orders = i64::try_from(mine.len()).expect("orders");
    let first: HashMap<i64, i64> = all.iter().fold(HashMap::new(), |mut first, p| {
        if let Some(c) = p.customer {
            let at = first.entry(c).or_insert(p.at);
            *at = (*at).min(p.at);
        }
        first
    });
    let now = active(all, since, until);
    let new = now.keys().filter(|c| first[*c] >= since).count();
    let repeat = now.values().filter(|n| **n >= 2).count();
    let before = period.previous();
    let then = active(all, before.since, before.until);
    let churned = then.keys().filter(|c| !now.contains_key(*c)).count();
    let mut buckets: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for p in &mine {
        let bucket = buckets.entry(period.bucket.index_of(p.at)).or_default();
        bucket.0 += 1;
        bucket.1 += p.net;
    }
    let count = |n: usize| i64::try_from(n).expect("count");
    Figures {
        revenue,
        orders,
        aov: rounded_mean(revenue, orders),
        other_currency_orders: count(all.iter().filter(|p| !p.mine && within(p, since, until)).count()),
        active_customers: count(now.len()),
        new_customers: count(new),
        returning_customers: count(now.len() - new),
        repurchase_rate: Rate::new(count(repeat), count(now.len())),
        churn_rate: Rate::new(count(churned), count(then.len())),
        ltv: ltv(all, until),
        points_liability: actual.points_liability,
        trend: period
            .bucket
            .indexes(since, until)
            .map(|b| {
                let (orders, revenue) = buckets.get(&b).copied().unwrap_or_default();
                TrendPoint { at: to_rfc3339(period.bucket.start_ms(b)), revenue, orders }
            })
            .collect(),
    }
}

/// Cohort sizes and retention counts of `period` by the definitions.
fn expected_cohorts(all: &[Purchase], period: Period) -> Vec<(i64, Vec<i64>)> {
    let (first_month, last_month) = (month_index(period.since), month_index(period.until - 1));
    let from = month_start_ms(first_month);
    let mut first: HashMap<i64, i64> = HashMap::new();
    for p in all {
        if let Some(c) = p.customer {
            let at = first.entry(c).or_insert(p.at);
            *at = (*at).min(p.at);
        }
    }
    let mut months: BTreeSet<(i64, i64)> = BTreeSet::new();
    for p in all.iter().filter(|p| within(p, from, period.until)) {
        if let Some(c) = p.customer {
            months.insert((c, month_index(p.at)));
        }
    }
    (first_month..=last_month)
        .map(|cohort| {
            let members: Vec<i64> = first
                .iter()
                .filter(|(_, at)| **at >= from && **at < period.until && month_index(**at) == cohort)
                .map(|(c, _)| *c)
                .collect();
            let retention = (0..=last_month - cohort)
                .map(|k| {
                    let n = members.iter().filter(|c| months.contains(&(**c, cohort + k))).count();
                    i64::try_from(n).expect("n")
                })
                .collect();
            (i64::try_from(members.len()).expect("n"), retention)
        })
        .collect()
}

/// Each purchasing customer's (r, f) by rank, and their spend.
fn expected_rfm(all: &[Purchase]) -> BTreeMap<i64, (i64, i64, i64)> {
    let mut per: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
    for p in all {
        if let Some(c) = p.customer {
            let entry = per.entry(c).or_insert((i64::MIN, 0, 0));
            entry.0 = entry.0.max(p.at);
            entry.1 += 1;
            entry.2 += p.net;
        }
    }
    let n = i64::try_from(per.len()).expect("n");
    let score = |value: i64, values: &mut dyn Iterator<Item = i64>| {
        1 + 5 * i64::try_from(values.filter(|v| *v < value).count()).expect("rank") / n
    };
    per.iter()
        .map(|(c, &(last, count, spent))| {
            let r = score(last, &mut per.values().map(|v| v.0));
            let f = score(count, &mut per.values().map(|v| v.1));
            (*c, (r, f, spent))
        })
        .collect()
}

type PurchaseRow = (i64, i64, String, Option<i64>, Option<i64>, i64, i64, i64, i64, i64, i64, i64);

/// Every rollup row of a shop, in key order.
async fn rollup_rows(
    conn: &mut sqlx::AnyConnection,
    shop_id: i64,
) -> (Vec<(i64, i64, i64, i64, i64, i64, i64)>, Vec<PurchaseRow>, Vec<(i64, String, i64, i64)>) {
    let customers = sqlx::query_as(
        "SELECT customer_id, purchases, spent, first_at, last_at, purchases_cur, net_cur FROM customer_rollups \
         WHERE shop_id = $1 ORDER BY customer_id",
    )
    .bind(shop_id)
    .fetch_all(&mut *conn)
    .await
    .expect("customer rollups");
    let purchases = sqlx::query_as(
        "SELECT customer_id, placed_at, order_id, prev_at, next_at, cur, net_cur, cum_cur, cum_net_cur, month, \
         cohort, month_first FROM customer_purchases WHERE shop_id = $1 ORDER BY customer_id, placed_at, order_id",
    )
    .bind(shop_id)
    .fetch_all(&mut *conn)
    .await
    .expect("customer purchases");
    let days = sqlx::query_as(
        "SELECT day, currency, purchases, revenue FROM shop_days WHERE shop_id = $1 ORDER BY day, currency",
    )
    .bind(shop_id)
    .fetch_all(&mut *conn)
    .await
    .expect("shop days");
    (customers, purchases, days)
}

/// Checks the rollups against a rebuild and every figure against the definitions.
async fn check(db: &Db, shop: &Shop, stage: &str) {
    let kept = rollup_rows(&mut db.pool().acquire().await.expect("conn"), shop.id).await;
    let mut w = db.write().await.expect("tx");
    patron::store::rollups::rebuild(&mut w.tx, shop.id).await.expect("rebuild");
    let derived = rollup_rows(&mut w.tx, shop.id).await;
    w.rollback().await.expect("rollback");
    assert_eq!(kept.0, derived.0, "{stage}: customer_rollups");
    assert_eq!(kept.1, derived.1, "{stage}: customer_purchases");
    assert_eq!(kept.2, derived.2, "{stage}: shop_days");
    assert!(!kept.1.is_empty(), "{stage}: purchases rolled up");

    let all = purchases(db, shop).await;
    let hour = 3_600_000;
    let periods = [
        (BASE + 30 * DAY_MS, BASE + 60 * DAY_MS, Bucket::Day),
        (BASE + 10 * DAY_MS + 12_345, BASE + 100 * DAY_MS + 777, Bucket::Week),
        (BASE - 5 * DAY_MS, BASE + 200 * DAY_MS, Bucket::Month),
        (BASE + 40 * DAY_MS + 5 * hour, BASE + 40 * DAY_MS + 9 * hour, Bucket::Day),
        (BASE + 41 * DAY_MS - hour, BASE + 42 * DAY_MS + hour, Bucket::Day),
        (BASE + 120 * DAY_MS + 1, BASE + 400 * DAY_MS, Bucket::Month),
    ];
    for (since, until, bucket) in periods {
        let period = Period::new(since, until, Some(bucket)).expect("period");
        let overview = db.analytics_overview(shop.id, &shop.currency, period).await.expect("overview");
        assert_eq!(overview.current, expected_figures(&all, period, &overview.current), "{stage}: {period:?}");
        assert_eq!(
            overview.previous,
            expected_figures(&all, period.previous(), &overview.previous),
            "{stage}: before {period:?}"
        );
        let cohorts = db.analytics_cohorts(shop.id, period).await.expect("cohorts");
        let actual: Vec<(i64, Vec<i64>)> =
            cohorts.cohorts.iter().map(|c| (c.customers, c.retention.iter().map(|r| r.numerator).collect())).collect();
        assert_eq!(actual, expected_cohorts(&all, period), "{stage}: cohorts {period:?}");
    }

    let scores = expected_rfm(&all);
    let grid = db.analytics_rfm(shop.id).await.expect("rfm");
    for cell in &grid.cells {
        let members: Vec<(&i64, &(i64, i64, i64))> =
            scores.iter().filter(|(_, (r, f, _))| *r == cell.r && *f == cell.f).collect();
        let spent: i64 = members.iter().map(|(_, s)| s.2).sum();
        assert_eq!(
            (cell.customers, cell.spent),
            (i64::try_from(members.len()).expect("n"), spent),
            "{stage}: {cell:?}"
        );
        let page = db.analytics_rfm_cell(shop.id, cell.r, cell.f, None, 500).await.expect("cell");
        let ids: Vec<String> = members.iter().map(|(c, _)| c.to_string()).collect();
        let mut sorted_ids: Vec<i64> = members.iter().map(|(c, _)| **c).collect();
        sorted_ids.sort_unstable();
        assert_eq!(
            page.customers.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            sorted_ids.iter().map(i64::to_string).collect::<Vec<_>>(),
            "{stage}: cell {} {} ({ids:?})",
            cell.r,
            cell.f
        );
    }
    assert_eq!(SCORES.count() * 5, grid.cells.len());
}

fn order_json(id: &str, customer: Option<usize>, at: i64, amount: i64, status: &str, currency: &str) -> Value {
    let mut body = json!({
        "id": id, "placed_at": to_rfc3339(at), "status": status, "currency": currency,
        "lines": [{"title": "Beans", "quantity": 1, "unit_price": amount}]
    });
    if let Some(c) = customer {
        body["customer"] = json!({"external_id": format!("c{c}"), "email": format!("c{c}@example.com")});
    }
    body
}

async fn post(db: &Db, shop: &Shop, body: Value) {
    let input: OrderInput = serde_json::from_value(body).expect("order");
    let currency = input.currency.clone().unwrap_or_else(|| shop.currency.clone());
    let (order, customer) = input.validate(&currency).expect("valid");
    db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
}

async fn customer_id(db: &Db, shop: &Shop, n: usize) -> i64 {
    db.customer_by_external_id(shop.id, &format!("c{n}")).await.expect("read").expect("customer").id
}

both_backends!(
    async fn rollup_figures_equal_the_definitions_through_every_kind_of_write(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let (other, _) = testing::shop(&db, "b").await;
        let mut rng = StdRng::seed_from_u64(15);
        let statuses = ["paid", "paid", "paid", "fulfilled", "fulfilled", "pending", "cancelled"];
        let mut orders = Vec::new();
        for i in 0..90 {
            let customer = rng.gen_bool(0.9).then(|| rng.gen_range(0..CUSTOMERS));
            let at = BASE + rng.gen_range(0..150 * DAY_MS);
            let currency = if rng.gen_bool(0.1) { "EUR" } else { "USD" };
            let status = statuses[rng.gen_range(0..statuses.len())];
            let body = order_json(&format!("o-{i}"), customer, at, rng.gen_range(500..20_000), status, currency);
            post(&db, &shop, body.clone()).await;
            orders.push(body);
        }
        // Two purchases of one customer in the same millisecond, and another shop's orders.
        for id in ["tie-b", "tie-a"] {
            post(&db, &shop, order_json(id, Some(0), BASE + 33 * DAY_MS + 7, 1_000, "paid", "USD")).await;
        }
        for i in 0..5 {
            post(&db, &other, order_json(&format!("x-{i}"), Some(i), BASE + i64::try_from(i).expect("i") * DAY_MS, 9_000, "paid", "USD"))
                .await;
        }
        check(&db, &shop, "orders").await;

        for (i, order) in orders.iter().enumerate().filter(|(i, _)| i % 7 == 0) {
            let amount = if i % 2 == 0 { Some(250) } else { None };
            let refund = RefundInput { id: format!("r-{i}"), amount, reason: None };
            let _ = db.refund_order(shop.id, order["id"].as_str().expect("id"), &refund).await;
        }
        check(&db, &shop, "refunds").await;

        for (i, order) in orders.iter_mut().enumerate().filter(|(i, _)| i % 5 == 1) {
            match i % 3 {
                0 => order["status"] = json!(if order["status"] == "paid" { "cancelled" } else { "paid" }),
                1 => order["placed_at"] = json!(to_rfc3339(BASE + rng.gen_range(0..200 * DAY_MS))),
                _ => {
                    let c = rng.gen_range(0..CUSTOMERS);
                    order["customer"] = json!({"external_id": format!("c{c}"), "email": format!("c{c}@example.com")});
                }
            }
            post(&db, &shop, order.clone()).await;
        }
        check(&db, &shop, "re-posts").await;

        for (winner, loser) in [(2, 1), (4, 3)] {
            let (winner, loser) = (customer_id(&db, &shop, winner).await, customer_id(&db, &shop, loser).await);
            db.merge_customers(shop.id, winner, loser, patron::store::merges::MergeReason::Manual).await.expect("merge");
        }
        check(&db, &shop, "merges").await;

        let erased = customer_id(&db, &shop, 5).await;
        db.erase_customer(shop.id, erased, Requester::Api).await.expect("erase");
        check(&db, &shop, "erasure").await;

        // An import: new customers by email, known customers, guests, a changed re-post.
        let mut lines: Vec<String> = (0..25)
            .map(|i| {
                let at = BASE + rng.gen_range(0..220 * DAY_MS);
                let mut body = order_json(&format!("imp-{i}"), None, at, rng.gen_range(500..9_000), "paid", "USD");
                match i % 3 {
                    0 => body["customer"] = json!({"email": format!("new{}@example.com", i % 4)}),
                    1 => body["customer"] = json!({"email": format!("c{}@example.com", 6 + i % 5)}),
                    _ => {}
                }
                body.to_string()
            })
            .collect();
        let mut changed = orders[2].clone();
        changed["status"] = json!("fulfilled");
        changed["placed_at"] = json!(to_rfc3339(BASE + 3 * DAY_MS));
        lines.push(changed.to_string());
        let path = std::env::temp_dir().join(format!("patron-rollups-{}.ndjson", patron::store::new_id()));
        std::fs::write(&path, lines.join("\n")).expect("write");
        let summary = patron::import::import_file(&db, &shop, patron::import::ImportKind::Orders, &path, false).await;
        let _ = std::fs::remove_file(&path);
        assert!(summary.expect("import").created >= 25);
        check(&db, &shop, "import").await;
    }
);

both_backends!(
    async fn shops_with_orders_before_the_rollups_get_them_at_start(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        for i in 0..6 {
            let at = BASE + i64::try_from(i).expect("i") * 20 * DAY_MS;
            post(&db, &shop, order_json(&format!("o-{i}"), Some(i % 3), at, 1_000 + 100 * i64::try_from(i).expect("i"), "paid", "USD")).await;
        }
        let kept = rollup_rows(&mut db.pool().acquire().await.expect("conn"), shop.id).await;
        // As a database migrated to 0020 before its first start: rollups empty, the shop listed.
        for sql in ["DELETE FROM customer_rollups", "DELETE FROM customer_purchases", "DELETE FROM shop_days"] {
            sqlx::query(sql).execute(db.pool()).await.expect("empty");
        }
        sqlx::query("INSERT INTO rollup_backfills (shop_id) VALUES ($1)").bind(shop.id).execute(db.pool()).await.expect("list");
        db.backfill_rollups().await.expect("backfill");
        let derived = rollup_rows(&mut db.pool().acquire().await.expect("conn"), shop.id).await;
        assert_eq!(kept, derived);
        assert_eq!(derived.1.len(), 6);
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rollup_backfills").fetch_one(db.pool()).await.expect("count");
        assert_eq!(left, 0);
        check(&db, &shop, "backfill").await;
    }
);
