//! Triggers: one `automation.trigger` job per listening install, queued in the
//! transaction that stores what caused it (an event, a new customer, an order change,
//! a segment or tier change), so a cause stored is a cause heard, and a cause rolled
//! back is never heard. The scheduler drains them ([`super::run`]).
//!
//! The events of one ingest batch travel together: one job per install and customer
//! carries all of that customer's listened events of the batch, in order, so ingest
//! writes one job row per batch rather than one per event.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AnyConnection;

use super::listeners::{self, Listeners};
use crate::store::events::NewEvent;
use crate::store::jobs::{self, NewJob};
use crate::store::order_hooks::OrderChange;
use crate::store::orders::Order;
use crate::store::replenishment::{self, Interval};
use crate::store::segments::MembershipChange;
use crate::store::{StoreError, StoreResult, new_id, now_ms};

/// The job kind of a trigger queued for one automation install.
pub const TRIGGER_JOB: &str = "automation.trigger";

/// The payload of a [`TRIGGER_JOB`]: the event (or events) the install's `on-event` hears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerJob {
    /// The install that listens.
    pub plugin: String,
    pub customer_id: i64,
    /// The event kind, or the host trigger's name (`order.placed`, `segment.entered:vip`).
    pub kind: String,
    /// When it happened (unix ms).
    pub at: i64,
    /// A JSON object: the event's properties, or what the host says about its trigger.
    pub properties: serde_json::Value,
    /// Caused by a browser: its actions never award points or set tiers.
    pub untrusted: bool,
    /// The order a trigger is about, which scopes the points its actions award.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The same ingest batch's later events of this customer that the install listens
    /// to, heard after the first, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<LaterEvent>,
}

/// A further event of a batched trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaterEvent {
    pub kind: String,
    pub at: i64,
    pub properties: serde_json::Value,
}

/// Something that happened to one customer, and a key naming it uniquely in the shop
/// (a cause queued twice is heard once).
struct Cause<'a> {
    kind: &'a str,
    key: String,
    customer_id: i64,
    at: i64,
    properties: serde_json::Value,
    untrusted: bool,
    order_id: Option<&'a str>,
}

/// The jobs queueing `cause` for each of `plugins`, added to `jobs`.
fn trigger_jobs(plugins: &[String], cause: &Cause<'_>, jobs: &mut Vec<NewJob>) -> StoreResult<()> {
    let run_at = now_ms();
    for plugin in plugins {
        let payload = TriggerJob {
            plugin: plugin.clone(),
            customer_id: cause.customer_id,
            kind: cause.kind.to_owned(),
            at: cause.at,
            properties: cause.properties.clone(),
            untrusted: cause.untrusted,
            order_id: cause.order_id.map(str::to_owned),
            then: Vec::new(),
        };
        let payload = serde_json::to_string(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        jobs.push(NewJob { kind: TRIGGER_JOB, payload, dedup_key: format!("trigger:{plugin}:{}", cause.key), run_at });
    }
    Ok(())
}

async fn queue_for(conn: &mut AnyConnection, shop_id: i64, plugins: &[String], cause: Cause<'_>) -> StoreResult<()> {
    let mut jobs = Vec::with_capacity(plugins.len());
    trigger_jobs(plugins, &cause, &mut jobs)?;
    jobs::enqueue_many(conn, shop_id, &jobs).await?;
    Ok(())
}

/// Queues a host trigger for the installs the stored table says listen to it.
async fn queue(conn: &mut AnyConnection, shop_id: i64, cause: Cause<'_>) -> StoreResult<()> {
    let plugins = listeners::listening(conn, shop_id, cause.kind).await?;
    if plugins.is_empty() {
        return Ok(());
    }
    queue_for(conn, shop_id, &plugins, cause).await
}

/// Newly stored events of known customers, for the installs listening to their kinds
/// (`listeners`: the ingest path's cached copy): one job per install and customer
/// carrying that customer's listened events of the batch, all queued with one multi-row
/// INSERT. Anonymous events trigger nothing: no journey can reach a shopper it does not know.
pub(crate) async fn events(
    conn: &mut AnyConnection,
    shop_id: i64,
    listeners: &Listeners,
    events: &[NewEvent],
    inserted: &HashSet<String>,
) -> StoreResult<()> {
    if listeners.is_empty() {
        return Ok(());
    }
    // (install, customer) → its job and the key of its first event, in first-seen order.
    let mut batched: Vec<(&str, TriggerJob, &str)> = Vec::new();
    for event in events {
        let plugins = listeners.of(&event.kind);
        let Some(customer_id) = event.customer_id else { continue };
        if plugins.is_empty() || !inserted.contains(&event.event_id) {
            continue;
        }
        let properties: serde_json::Value = serde_json::from_str(&event.properties)
            .map_err(|e| StoreError::Corrupt(format!("event properties: {e}")))?;
        for plugin in plugins {
            match batched.iter_mut().find(|(p, job, _)| *p == plugin.as_str() && job.customer_id == customer_id) {
                Some((_, job, _)) => job.then.push(LaterEvent {
                    kind: event.kind.clone(),
                    at: event.occurred_at,
                    properties: properties.clone(),
                }),
                None => batched.push((
                    plugin,
                    TriggerJob {
                        plugin: plugin.clone(),
                        customer_id,
                        kind: event.kind.clone(),
                        at: event.occurred_at,
                        properties: properties.clone(),
                        untrusted: true,
                        order_id: None,
                        then: Vec::new(),
                    },
                    &event.event_id,
                )),
            }
        }
    }
    let run_at = now_ms();
    let jobs = batched
        .into_iter()
        .map(|(plugin, job, first_event)| {
            let payload = serde_json::to_string(&job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            // The first event was stored by this batch alone, so its id names the job.
            Ok(NewJob {
                kind: TRIGGER_JOB,
                payload,
                dedup_key: format!("trigger:{plugin}:event:{first_event}"),
                run_at,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    jobs::enqueue_many(conn, shop_id, &jobs).await?;
    Ok(())
}

/// `customer.created`.
pub(crate) async fn customer_created(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    at: i64,
) -> StoreResult<()> {
    let cause = Cause {
        kind: "customer.created",
        key: format!("customer.created:{customer_id}"),
        customer_id,
        at,
        properties: json!({"customer_id": customer_id.to_string()}),
        untrusted: false,
        order_id: None,
    };
    queue(conn, shop_id, cause).await
}

/// `order.placed` (it became a purchase) or `order.refunded` (refunded in part or
/// whole, or no longer a purchase), with the order's id, total and products; a placed
/// order also carries, as `replenish`, the learned repurchase interval of each of its
/// products that has one, with the product's title and URL.
pub(crate) async fn order_changed(
    conn: &mut AnyConnection,
    shop_id: i64,
    order: &Order,
    change: &OrderChange,
) -> StoreResult<()> {
    let Some(customer_id) = order.customer_id else { return Ok(()) };
    let kind = match change {
        OrderChange::Placed => "order.placed",
        OrderChange::Reversed | OrderChange::Refunded { .. } => "order.refunded",
    };
    let plugins = listeners::listening(conn, shop_id, kind).await?;
    if plugins.is_empty() {
        return Ok(());
    }
    let products: Vec<&str> = order.lines.iter().filter_map(|l| l.product_id.as_deref()).collect();
    let mut properties = json!({
        "order_id": order.id,
        "total": order.total,
        "refunded": order.refunded,
        "currency": order.currency,
        "status": order.status.as_str(),
        "placed_at": order.placed_at,
        "products": products,
    });
    if matches!(change, OrderChange::Placed) {
        let intervals = replenishment::intervals_of(conn, shop_id, &products).await?;
        if !intervals.is_empty() {
            properties["replenish"] = replenish(order, &intervals).into();
        }
    }
    let cause = Cause {
        kind,
        key: format!("{kind}:{}:{}", change.key(), order.id),
        customer_id,
        at: now_ms(),
        properties,
        untrusted: false,
        order_id: Some(&order.id),
    };
    queue_for(conn, shop_id, &plugins, cause).await
}

/// The `replenish` entries of a placed order: one per product with a learned interval.
fn replenish(order: &Order, intervals: &[Interval]) -> Vec<serde_json::Value> {
    intervals
        .iter()
        .map(|interval| {
            let line = order.lines.iter().find(|l| l.product_id.as_deref() == Some(interval.product_id.as_str()));
            json!({
                "product_id": interval.product_id,
                "product_title": line.map(|l| l.title.as_str()),
                "product_url": interval.url,
                "days": interval.days,
            })
        })
        .collect()
}

/// `segment.entered:<name>` and `segment.left:<name>` for real membership changes
/// (`listeners`: the shop's, read once for a batch).
pub(crate) async fn segments_changed(
    conn: &mut AnyConnection,
    shop_id: i64,
    listeners: &Listeners,
    customer_id: i64,
    change: &MembershipChange,
    at: i64,
) -> StoreResult<()> {
    let moves =
        change.joined.iter().map(|s| ("segment.entered", s)).chain(change.left.iter().map(|s| ("segment.left", s)));
    for (what, segment) in moves {
        let kind = format!("{what}:{segment}");
        let plugins = listeners.of(&kind);
        if plugins.is_empty() {
            continue;
        }
        let cause = Cause {
            kind: &kind,
            key: format!("{kind}:{customer_id}:{at}"),
            customer_id,
            at,
            properties: json!({"segment": segment}),
            untrusted: false,
            order_id: None,
        };
        queue_for(conn, shop_id, plugins, cause).await?;
    }
    Ok(())
}

/// [`segments_changed`] reading the shop's listeners in the transaction.
pub(crate) async fn segments_changed_one(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    change: &MembershipChange,
    at: i64,
) -> StoreResult<()> {
    if change.joined.is_empty() && change.left.is_empty() {
        return Ok(());
    }
    let listeners = listeners::load(conn, shop_id).await?;
    segments_changed(conn, shop_id, &listeners, customer_id, change, at).await
}

/// `tier.changed`: a member moved to `tier`.
pub(crate) async fn tier_changed(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    tier: &str,
) -> StoreResult<()> {
    let cause = Cause {
        kind: "tier.changed",
        key: format!("tier.changed:{customer_id}:{}", new_id()),
        customer_id,
        at: now_ms(),
        properties: json!({"tier": tier}),
        untrusted: false,
        order_id: None,
    };
    queue(conn, shop_id, cause).await
}

/// `customer.birthday` on the shop's local `date`, for `plugins` (the installs listening,
/// read by the caller); queued once per customer and date.
pub(crate) async fn customer_birthday(
    conn: &mut AnyConnection,
    shop_id: i64,
    plugins: &[String],
    customer_id: i64,
    date: chrono::NaiveDate,
    at: i64,
) -> StoreResult<()> {
    let cause = Cause {
        kind: "customer.birthday",
        key: format!("customer.birthday:{customer_id}:{date}"),
        customer_id,
        at,
        properties: json!({"date": date.to_string()}),
        untrusted: false,
        order_id: None,
    };
    queue_for(conn, shop_id, plugins, cause).await
}
