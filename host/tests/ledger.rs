//! The points ledger, coupons and the job lease, on both backends.

use patron::store::Db;
use patron::store::coupons::{CouponSpec, Discount};
use patron::store::customers::CustomerInput;
use patron::store::points::{Entry, EntryKind, PointsError};
use patron::{both_backends, testing};

async fn customer(db: &Db, shop_id: i64, external_id: &str) -> i64 {
    let input = CustomerInput { external_id: Some(external_id.into()), ..CustomerInput::default() };
    db.upsert_customer(shop_id, &input).await.expect("customer").0.id
}

fn earn(customer_id: i64, delta: i64, key: &str, expires_at: Option<i64>) -> Entry<'static> {
    Entry {
        customer_id,
        delta,
        kind: EntryKind::Earn,
        reason: "test",
        order_id: None,
        source: "test",
        idempotency_key: key.to_owned(),
        expires_at,
    }
}

both_backends!(
    async fn concurrent_redemptions_never_overspend(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let c = customer(&db, shop.id, "c1").await;
        db.append_points(shop.id, &earn(c, 1000, "seed", None)).await.expect("earn");
        let mut tasks = Vec::new();
        for i in 0..50 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let entry = Entry {
                    customer_id: c,
                    delta: -100,
                    kind: EntryKind::Redeem,
                    reason: "reward",
                    order_id: None,
                    source: "test",
                    idempotency_key: format!("redeem-{i}"),
                    expires_at: None,
                };
                db.append_points(shop.id, &entry).await
            }));
        }
        let (mut ok, mut refused) = (0, 0);
        for task in tasks {
            match task.await.expect("task") {
                Ok(true) => ok += 1,
                Err(PointsError::Insufficient { .. }) => refused += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((ok, refused), (10, 40));
        assert_eq!(db.points_balance(shop.id, c).await.expect("balance"), 0);
        assert_eq!(db.ledger_sum(shop.id, c).await.expect("sum"), 0);
    }
);

both_backends!(
    async fn an_entry_is_appended_once_per_key(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let c = customer(&db, shop.id, "c1").await;
        assert!(db.append_points(shop.id, &earn(c, 50, "order-1", None)).await.expect("earn"));
        assert!(!db.append_points(shop.id, &earn(c, 50, "order-1", None)).await.expect("again"));
        assert_eq!(db.points_balance(shop.id, c).await.expect("balance"), 50);
        assert_eq!(db.ledger(shop.id, c, 10).await.expect("ledger").len(), 1);
    }
);

both_backends!(
    async fn expiry_writes_off_unspent_points_once(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let c = customer(&db, shop.id, "c1").await;
        db.append_points(shop.id, &earn(c, 300, "old", Some(1_000))).await.expect("earn");
        db.append_points(shop.id, &earn(c, 200, "new", Some(10_000))).await.expect("earn");
        let spend = Entry { delta: -100, kind: EntryKind::Redeem, ..earn(c, 0, "spend", None) };
        db.append_points(shop.id, &spend).await.expect("spend");
        // The 100 spent came out of the earliest-expiring 300.
        assert_eq!(db.points_expiring_by(shop.id, c, 5_000).await.expect("expiring"), 200);
        assert_eq!(db.expire_points(shop.id, 5_000).await.expect("expire"), (1, 200));
        assert_eq!(db.expire_points(shop.id, 5_000).await.expect("again"), (0, 0));
        assert_eq!(db.points_balance(shop.id, c).await.expect("balance"), 200);
        assert_eq!(db.expire_points(shop.id, 20_000).await.expect("later"), (1, 200));
        assert_eq!(db.points_balance(shop.id, c).await.expect("balance"), 0);
        assert_eq!(db.ledger_sum(shop.id, c).await.expect("sum"), 0);
    }
);

both_backends!(
    async fn coupons_are_listed_until_used_or_expired(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let c = customer(&db, shop.id, "c1").await;
        let spec = CouponSpec {
            discount: Discount::Percent(10),
            currency: "USD".into(),
            minimum_spend: 5000,
            expires_at: None,
            customer_id: Some(c),
            source: "test".into(),
        };
        let coupon = db.issue_coupon(shop.id, &spec).await.expect("issue");
        assert_eq!(coupon.description, "10% off on orders over 50.00 USD");
        let expired = CouponSpec { expires_at: Some(1), ..spec.clone() };
        db.issue_coupon(shop.id, &expired).await.expect("issue");
        let bad = CouponSpec { discount: Discount::Percent(0), ..spec.clone() };
        assert!(db.issue_coupon(shop.id, &bad).await.is_err());
        let active = db.active_coupons(shop.id, c).await.expect("list");
        assert_eq!(active.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(), [coupon.code.as_str()]);
    }
);

both_backends!(
    async fn a_job_is_leased_by_one_worker_and_retried_after_a_crash(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let payload = serde_json::json!({"what": "expire"});
        assert!(db.enqueue_job(shop.id, "points.expire", &payload, 0, "expire:day-1").await.expect("enqueue"));
        assert!(!db.enqueue_job(shop.id, "points.expire", &payload, 0, "expire:day-1").await.expect("dedup"));
        let mut leases = Vec::new();
        for worker in 0..8 {
            let db = db.clone();
            leases.push(tokio::spawn(async move { db.lease_job(&format!("w{worker}"), 60_000).await }));
        }
        let mut leased = Vec::new();
        for lease in leases {
            if let Some(job) = lease.await.expect("task").expect("lease") {
                leased.push(job);
            }
        }
        assert_eq!(leased.len(), 1, "one job, one worker");
        // A worker whose lease expired (it crashed) loses the job to the next one.
        let job = db.lease_job("w-crashing", -1).await.expect("lease");
        assert!(job.is_none(), "the live lease holds");
        let crashed = leased.remove(0);
        sqlx_expire_lease(&db, &crashed).await;
        let retried = db.lease_job("w-next", 60_000).await.expect("lease").expect("retried");
        assert_eq!((retried.id, retried.attempts), (crashed.id, 2));
        assert!(!db.complete_job(&crashed, "w0-stale").await.expect("stale owner"));
        assert!(db.complete_job(&retried, "w-next").await.expect("complete"));
        assert!(db.lease_job("w-other", 60_000).await.expect("lease").is_none());
    }
);

/// Simulates a worker that died: its lease is in the past.
async fn sqlx_expire_lease(db: &Db, job: &patron::store::jobs::Job) {
    sqlx::query("UPDATE jobs SET lease_until = 0 WHERE shop_id = $1 AND id = $2")
        .bind(job.shop_id)
        .bind(job.id)
        .execute(db.pool())
        .await
        .expect("expire lease");
}
