//! The scheduler's side of journeys: a queued trigger or a due timer is handed to the
//! automation install it is for, and what that returns is applied in the transaction
//! that marks its job done. A worker that dies after the call leaves the job to be run
//! again once its lease runs out; one that dies after the commit leaves nothing to
//! redo; a worker whose lease was taken over commits nothing. So each trigger and
//! each timer applies its actions once.

use patron_runtime::types::{Action, Event, Profile, Timer};
use patron_runtime::{CallContext, Plugin, PluginError, World};

use super::triggers::TriggerJob;
use crate::plugins::actions::Trigger;
use crate::plugins::{PluginHost, convert};
use crate::store::jobs::{self, Job};
use crate::store::shops::Shop;
use crate::store::{StoreError, StoreResult, now_ms};

/// What an automation call is about: the install, the customer, and how far its
/// actions are trusted.
struct Hearing<'a> {
    plugin: &'a str,
    customer_id: i64,
    trigger: Trigger<'a>,
}

/// Calls the install `hearing.plugin` of the shop with the customer's profile, then
/// settles `job` and applies the actions in one transaction.
async fn hear<F>(
    host: &PluginHost,
    shop: &Shop,
    job: &Job,
    owner: &str,
    hearing: Hearing<'_>,
    call: F,
) -> StoreResult<()>
where
    F: FnOnce(&Plugin, &CallContext, &Profile) -> Result<Vec<Action>, PluginError> + Send + 'static,
{
    let db = host.db();
    let Some(active) =
        host.active(shop.id, World::Automation).await?.into_iter().find(|a| a.install.name == hearing.plugin)
    else {
        return Ok(()); // Disabled or removed since it was queued: nobody hears it.
    };
    let Some(customer) = db.customer(shop.id, hearing.customer_id).await? else { return Ok(()) };
    let profile = convert::profile(
        &customer,
        db.tags(shop.id, hearing.customer_id).await?,
        db.current_segments(shop.id, hearing.customer_id).await?,
        now_ms(),
    );
    let list = host
        .call(&active, move |plugin, ctx| call(plugin, ctx, &profile))
        .await
        .map_err(|failure| StoreError::Conflict(failure.to_string()))?;
    let mut w = db.write().await?;
    if !jobs::settle(&mut w.tx, job, owner).await? {
        w.rollback().await?; // Its lease ran out and another worker took it over.
        return Ok(());
    }
    host.apply_recording(w, shop, hearing.customer_id, &active, hearing.trigger, &list).await?;
    Ok(())
}

/// A queued trigger: its install's `on-event` hears its event, then the batch's later
/// ones in order; the actions of all are applied together.
pub async fn run_trigger(host: &PluginHost, shop: &Shop, job: &Job, owner: &str) -> StoreResult<()> {
    let trigger: TriggerJob = serde_json::from_value(job.payload.clone())
        .map_err(|e| StoreError::Corrupt(format!("trigger job payload {}: {e}", job.payload)))?;
    let first = Event { kind: trigger.kind.clone(), at: trigger.at, properties: trigger.properties.to_string() };
    let events: Vec<Event> = std::iter::once(first)
        .chain(trigger.then.iter().map(|e| Event {
            kind: e.kind.clone(),
            at: e.at,
            properties: e.properties.to_string(),
        }))
        .collect();
    let trust = match (&trigger.order_id, trigger.untrusted) {
        (_, true) => Trigger::Behaviour,
        (Some(order_id), false) => Trigger::Order { order_id },
        (None, false) => Trigger::Host,
    };
    let hearing = Hearing { plugin: &trigger.plugin, customer_id: trigger.customer_id, trigger: trust };
    hear(host, shop, job, owner, hearing, move |plugin, ctx, profile| {
        let mut instance = plugin.instantiate(ctx.clone())?;
        let mut actions = Vec::new();
        for event in &events {
            actions.extend(instance.on_event(event, profile)?);
        }
        Ok(actions)
    })
    .await
}

/// A journey timer came due: the install that set it hears of it in `on-timer`.
pub async fn fire_timer(host: &PluginHost, shop: &Shop, job: &Job, owner: &str) -> StoreResult<()> {
    let payload = &job.payload;
    let (Some(plugin), Some(customer_id), Some(name)) =
        (payload["plugin"].as_str(), payload["customer_id"].as_i64(), payload["name"].as_str())
    else {
        return Err(StoreError::Corrupt(format!("timer job payload {payload}")));
    };
    let timer =
        Timer { name: name.to_owned(), at: job.run_at, data: payload["data"].as_str().unwrap_or_default().to_owned() };
    // A timer is as trusted as the browser behaviour that may have set it.
    let hearing = Hearing { plugin, customer_id, trigger: Trigger::Behaviour };
    hear(host, shop, job, owner, hearing, move |plugin, ctx, profile| plugin.on_timer(ctx, &timer, profile)).await
}
