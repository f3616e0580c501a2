//! Identities: anonymous browser ids, emails and phones that point at a customer.

use sqlx::AnyConnection;

use super::merges::{MergeReason, merge};
use super::{Db, StoreResult, now_ms};

/// Points identity `(kind, value)` at `customer_id`, moving it if it pointed elsewhere.
pub(crate) async fn link(
    conn: &mut AnyConnection,
    shop_id: i64,
    kind: &str,
    value: &str,
    customer_id: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO identities (shop_id, kind, value, customer_id, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (shop_id, kind, value) DO UPDATE SET customer_id = excluded.customer_id",
    )
    .bind(shop_id)
    .bind(kind)
    .bind(value)
    .bind(customer_id)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn customer_for_anonymous(
    conn: &mut AnyConnection,
    shop_id: i64,
    anonymous_id: &str,
) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT customer_id FROM identities WHERE shop_id = $1 AND kind = 'anonymous' AND value = $2",
    )
    .bind(shop_id)
    .bind(anonymous_id)
    .fetch_optional(conn)
    .await?)
}

/// What linking an anonymous browser to a customer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Identified {
    #[serde(serialize_with = "crate::api::ids::string")]
    pub customer_id: i64,
    /// Anonymous events that joined the customer's history.
    pub events_attributed: u64,
}

impl Db {
    /// Links an anonymous browser id to a customer (whose identity the caller has verified).
    /// The browser's anonymous history joins the customer. If the browser was linked to
    /// a customer record without an external id (known so far only by email), that
    /// record is the same person and is merged into this one.
    pub async fn identify(&self, shop_id: i64, anonymous_id: &str, customer_id: i64) -> StoreResult<Identified> {
        let mut w = self.write_storefront().await?;
        if let Some(previous) = customer_for_anonymous(&mut w.tx, shop_id, anonymous_id).await?
            && previous != customer_id
        {
            let previous_external: Option<Option<String>> =
                sqlx::query_scalar("SELECT external_id FROM customers WHERE shop_id = $1 AND id = $2")
                    .bind(shop_id)
                    .bind(previous)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            if matches!(previous_external, Some(None)) {
                merge(&mut w.tx, shop_id, customer_id, previous, MergeReason::Identify).await?;
            }
        }
        link(&mut w.tx, shop_id, "anonymous", anonymous_id, customer_id).await?;
        let attributed = sqlx::query(
            "UPDATE events SET customer_id = $3 WHERE shop_id = $1 AND anonymous_id = $2 AND customer_id IS NULL",
        )
        .bind(shop_id)
        .bind(anonymous_id)
        .bind(customer_id)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(Identified { customer_id, events_attributed: attributed })
    }
}
