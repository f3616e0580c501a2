//! The scheduler's side of journeys: a queued trigger or a due timer is handed to the
//! automation install it is for, and what that returns is applied in the transaction
//! that marks its job done. A worker that dies after the call leaves the job to be run
//! again once its lease runs out; one that dies after the commit leaves nothing to
//! redo; a worker whose lease was taken over commits nothing. So each trigger and
//! each timer applies its actions once.

use std::collections::HashMap;

use patron_runtime::types::{Action, Event, Profile, Timer};
use patron_runtime::{CallContext, Plugin, PluginError, World};

use super::triggers::TriggerJob;
use crate::plugins::actions::{self, Trigger};
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

/// The profiles an automation install is shown of these customers (those that exist),
/// read with one query each for the records, tags, segments and predictions.
async fn profiles_of(host: &PluginHost, shop: &Shop, ids: &[i64]) -> StoreResult<HashMap<i64, Profile>> {
    let db = host.db();
    let customers = db.customers_by_ids(shop.id, ids).await?;
    let mut tags = db.tags_of_customers(shop.id, ids).await?;
    let mut segments = db.current_segments_of_customers(shop.id, ids).await?;
    let predictions = db.predictions_of_customers(shop.id, ids).await?;
    let now = now_ms();
    Ok(customers
        .iter()
        .map(|customer| {
            let facts = convert::Facts {
                tags: tags.remove(&customer.id).unwrap_or_default(),
                segments: segments.remove(&customer.id).unwrap_or_default(),
                predictions: predictions.get(&customer.id),
            };
            (customer.id, convert::profile(customer, facts, now))
        })
        .collect())
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
    let Some(profile) = profiles_of(host, shop, &[hearing.customer_id]).await?.remove(&hearing.customer_id) else {
        return Ok(());
    };
    let list = host
        .call(&active, move |plugin, ctx| call(plugin, ctx, &profile))
        .await
        .map_err(|failure| StoreError::Plugin(failure.to_string()))?;
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

/// A due timer job's install, customer and timer.
fn timer_of(job: &Job) -> StoreResult<(&str, i64, Timer)> {
    let payload = &job.payload;
    let (Some(plugin), Some(customer_id), Some(name)) =
        (payload["plugin"].as_str(), payload["customer_id"].as_i64(), payload["name"].as_str())
    else {
        return Err(StoreError::Corrupt(format!("timer job payload {payload}")));
    };
    let timer =
        Timer { name: name.to_owned(), at: job.run_at, data: payload["data"].as_str().unwrap_or_default().to_owned() };
    Ok((plugin, customer_id, timer))
}

/// A journey timer came due: the install that set it hears of it in `on-timer`.
pub async fn fire_timer(host: &PluginHost, shop: &Shop, job: &Job, owner: &str) -> StoreResult<()> {
    let (plugin, customer_id, timer) = timer_of(job)?;
    // A timer is as trusted as the browser behaviour that may have set it.
    let hearing = Hearing { plugin, customer_id, trigger: Trigger::Behaviour };
    hear(host, shop, job, owner, hearing, move |plugin, ctx, profile| plugin.on_timer(ctx, &timer, profile)).await
}

/// Due timers of one shop, fired together: one instance per install hears each in
/// `on-timer`, and one transaction settles every job and applies every timer's actions,
/// so a backlog of timers costs a transaction per batch instead of per timer. The jobs
/// of an install whose call failed are returned, untouched, for [`fire_timer`] to run
/// one by one (so each failure is its own, and the breaker counts it).
pub async fn fire_timers<'a>(
    host: &PluginHost,
    shop: &Shop,
    jobs: &'a [Job],
    owner: &str,
) -> StoreResult<Vec<&'a Job>> {
    // Each install's due timers: the job, its customer and its timer.
    let mut batches: std::collections::BTreeMap<&str, Vec<(&'a Job, i64, Timer)>> = std::collections::BTreeMap::new();
    let mut settle_only = Vec::new();
    let mut retry = Vec::new();
    for job in jobs {
        let Ok((plugin, customer_id, timer)) = timer_of(job) else {
            retry.push(job); // Fails on its own, with its own error.
            continue;
        };
        batches.entry(plugin).or_default().push((job, customer_id, timer));
    }
    let active = host.active(shop.id, World::Automation).await?;
    let customer_ids: Vec<i64> = batches.values().flatten().map(|(_, customer_id, _)| *customer_id).collect();
    let profiles = profiles_of(host, shop, &customer_ids).await?;
    let mut results = Vec::new();
    for (plugin, batch) in batches {
        let Some(active) = active.iter().find(|a| a.install.name == plugin) else {
            settle_only.extend(batch.into_iter().map(|(job, ..)| job)); // Disabled or removed since: nobody hears them.
            continue;
        };
        let mut calls = Vec::new();
        let mut heard_jobs = Vec::new();
        for (job, customer_id, timer) in batch {
            // A customer with two timers in the batch is shown the same profile twice.
            match profiles.get(&customer_id) {
                Some(profile) => {
                    calls.push((timer, profile.clone()));
                    heard_jobs.push((job, customer_id));
                }
                None => settle_only.push(job),
            }
        }
        let outcome = host
            .call(active, move |plugin, ctx| {
                let mut instance = plugin.instantiate(ctx.clone())?;
                calls.iter().map(|(timer, profile)| instance.on_timer(timer, profile)).collect::<Result<Vec<_>, _>>()
            })
            .await;
        match outcome {
            Ok(lists) => results.push((active, heard_jobs, lists)),
            Err(_) => retry.extend(heard_jobs.into_iter().map(|(job, _)| job)),
        }
    }
    let mut w = host.db().write().await?;
    // One statement settles the batch; a job whose lease another worker took over is
    // left out, and theirs to apply.
    let to_settle: Vec<&Job> = settle_only
        .iter()
        .copied()
        .chain(results.iter().flat_map(|(_, heard, _)| heard.iter().map(|(job, _)| *job)))
        .collect();
    let settled = jobs::settle_many(&mut w.tx, shop.id, &to_settle, owner).await?;
    let mut refused = Vec::new();
    for (active, heard_jobs, lists) in &results {
        let actor = crate::plugins::hooks::actor(active);
        for ((job, customer_id), list) in heard_jobs.iter().zip(lists) {
            if settled.contains(&job.id) {
                let applied =
                    actions::apply_in(&mut w.tx, shop, *customer_id, &actor, Trigger::Behaviour, list).await?;
                if let Some(reason) = applied.refused.first() {
                    refused.push((
                        active.install.name.clone(),
                        format!("{} refused action(s): {reason}", applied.refused.len()),
                    ));
                }
            }
        }
    }
    w.commit().await?;
    for (plugin, message) in refused {
        host.db().record_plugin_failures(shop.id, &plugin, 0, Some(&message), false).await?;
    }
    Ok(retry)
}
