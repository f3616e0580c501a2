//! A customer's journey state as the host knows it: the timers each automation install
//! has pending for them (the next step of each journey they are in).

use serde::Serialize;
use sqlx::Row;

use crate::plugins::actions::TIMER_JOB;
use crate::store::{Db, StoreError, StoreResult};

/// A timer an install set for the customer, not yet fired.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PendingTimer {
    pub name: String,
    /// When it is due (unix ms).
    pub due_at: i64,
    /// The data it hands back to `on-timer` (JSON when it is JSON, else the raw string).
    pub data: serde_json::Value,
    /// `queued`, or `running` while a worker fires it.
    pub status: String,
}

/// One install's pending timers for the customer.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct InstallState {
    pub plugin: String,
    pub timers: Vec<PendingTimer>,
}

/// The customer's pending timers, by install, soonest first.
pub async fn pending(db: &Db, shop_id: i64, customer_id: i64) -> StoreResult<Vec<InstallState>> {
    // Timer dedup keys are `timer:<install>:<customer>:<name>:<at>`; install names hold no `:`.
    let rows = sqlx::query(
        "SELECT payload, run_at, status FROM jobs WHERE shop_id = $1 AND kind = $2 \
         AND status IN ('queued', 'running') AND dedup_key LIKE $3 ORDER BY run_at",
    )
    .bind(shop_id)
    .bind(TIMER_JOB)
    .bind(format!("timer:%:{customer_id}:%"))
    .fetch_all(db.pool())
    .await?;
    let mut installs: Vec<InstallState> = Vec::new();
    for row in rows {
        let payload: String = row.try_get("payload")?;
        let payload: serde_json::Value =
            serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("timer payload: {e}")))?;
        if payload["customer_id"].as_i64() != Some(customer_id) {
            continue;
        }
        let (Some(plugin), Some(name)) = (payload["plugin"].as_str(), payload["name"].as_str()) else {
            return Err(StoreError::Corrupt(format!("timer payload {payload}")));
        };
        let raw = payload["data"].as_str().unwrap_or_default();
        let timer = PendingTimer {
            name: name.to_owned(),
            due_at: row.try_get("run_at")?,
            data: serde_json::from_str(raw).unwrap_or_else(|_| raw.into()),
            status: row.try_get("status")?,
        };
        match installs.iter_mut().find(|i| i.plugin == plugin) {
            Some(install) => install.timers.push(timer),
            None => installs.push(InstallState { plugin: plugin.to_owned(), timers: vec![timer] }),
        }
    }
    Ok(installs)
}
