//! Delivery: the worker that drains the outbox through the contact policy to the
//! shop's channels and records what became of every message.
//!
//! A message goes `queued` → (`deferred` →) `sending` → `sent`, or ends `suppressed`
//! (with the policy's reason) or `failed` (dead-lettered, with the last error). One
//! transaction leases due messages, applies the policy (`policy::decide`) and marks
//! those allowed `sending`, with `sent_at` set so caps count them at once; on
//! PostgreSQL it also locks each recipient's customer row, so two workers never both
//! pass one customer's cap. The send happens after that commit, concurrently and under
//! a deadline, then its outcome is recorded.
//!
//! **At least once, with the same key.** A worker that dies after the channel accepted
//! a message and before recording it leaves the message `sending`; when its lease
//! runs out another worker sends it again, without asking the policy again, with the
//! same idempotency key: the SMTP `Message-ID` and the webhook `webhook-id` are the
//! outbox id. Receivers that drop duplicate ids (as Standard Webhooks asks) see it
//! once. Neither SMTP nor a webhook can be asked "did you get id X?", so a send the
//! channel confirmed but we failed to record cannot be told from one that never
//! arrived; resending with the same key is the only safe choice.

pub mod channels;
pub mod links;
pub mod policy;
pub mod report;
pub mod smtp;
pub mod ssrf;
pub mod templates;
pub mod webhook;

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use crate::store::customers::{Customer, lock_customers};
use crate::store::outbox::{self, Message, Purpose, Transition};
use crate::store::shops::Shop;
use crate::store::{Db, StoreError, new_id, now_ms};
use channels::ChannelSettings;
use policy::{Decision, Facts, PolicySettings};

/// Why a send did not go through.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (timeouts, 5xx, connection errors).
    #[error("{0}")]
    Transient(String),
    /// Will fail the same way every time (bad address, refused, no such channel).
    #[error("{0}")]
    Permanent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building the webhook client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The operator's delivery settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Where links in messages (unsubscribe, click tracking) point: this host as the
    /// public reaches it.
    pub public_url: String,
    /// Lets webhooks reach private and loopback addresses (local sinks, tests).
    pub allow_private_targets: bool,
    pub webhook_timeout: Duration,
    pub smtp_timeout: Duration,
    /// How long a worker holds a message it is sending before another may resend it.
    pub lease: Duration,
    /// How many messages one pass leases and sends concurrently.
    pub batch: i64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            allow_private_targets: false,
            webhook_timeout: Duration::from_secs(10),
            smtp_timeout: Duration::from_secs(30),
            lease: Duration::from_secs(5 * 60),
            batch: 64,
        }
    }
}

const MINUTE_MS: i64 = 60 * 1000;
/// The first retry waits this long; each further one twice as long as the one before.
const FIRST_RETRY_MS: i64 = MINUTE_MS;
const MAX_RETRY_GAP_MS: i64 = 6 * 60 * MINUTE_MS;
/// A message still failing this long after it was queued is dead-lettered.
pub const GIVE_UP_AFTER_MS: i64 = 3 * 24 * 60 * MINUTE_MS;

/// When a message that failed its `attempts`-th send at `now` is tried again, or `None`
/// if it has been failing for too long.
pub fn retry_at(created_at: i64, now: i64, attempts: i64) -> Option<i64> {
    let gap = (FIRST_RETRY_MS << (attempts - 1).clamp(0, 20)).min(MAX_RETRY_GAP_MS);
    let at = now + gap;
    (at <= created_at + GIVE_UP_AFTER_MS).then_some(at)
}

/// A message the worker holds, to be sent, with what sending it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub message: Message,
    pub shop: Arc<Shop>,
    pub customer: Customer,
    pub channel: ChannelSettings,
    secrets: Vec<String>,
    /// The template in the shop's locale (the merchant's own or the built-in one);
    /// `None` if there is no such template.
    source: Option<Arc<templates::Source>>,
    /// Where the message's cart link points.
    cart_url: String,
    /// A resend after a lease ran out mid-send.
    pub resend: bool,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub deferred: usize,
    pub suppressed: usize,
    pub failed: usize,
}

impl Pass {
    pub fn total(&self) -> usize {
        self.sent + self.deferred + self.suppressed + self.failed
    }
}

/// The outcome of trying to send one message.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent,
    Failed(SendError),
}

/// A delivery worker; cloning it is cheap and clones share the lease owner.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    config: DeliveryConfig,
    owner: String,
    http: reqwest::Client,
}

/// A shop's channel as the claim needs it.
struct ShopChannel {
    settings: ChannelSettings,
    secrets: Vec<String>,
}

/// What one claim looks up per shop, once.
struct ShopContext {
    shop: Arc<Shop>,
    policy: PolicySettings,
    timezone: Tz,
    channels: HashMap<String, Option<Arc<ShopChannel>>>,
    templates: HashMap<String, Option<Arc<templates::Source>>>,
    /// Where messages' cart links point: the policy's `cart_url`, else the shop's first
    /// origin + `/cart`.
    cart_url: String,
}

impl Worker {
    pub fn new(db: Db, config: DeliveryConfig) -> Result<Self, DeliveryError> {
        let http = webhook::client(config.webhook_timeout, config.allow_private_targets)?;
        let owner = format!("delivery-{}", new_id());
        Ok(Self { inner: Arc::new(Inner { db, config, owner, http }) })
    }

    /// Sends due messages until `shutdown` completes; idle, it looks again every second.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let pause = match self.run_once_at(now_ms()).await {
                Ok(pass) if pass.total() > 0 => Duration::ZERO,
                Ok(_) => Duration::from_secs(1),
                Err(error) => {
                    tracing::error!(%error, "delivery pass failed");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass as if it were `now`: claim what is due, send it concurrently, record.
    pub async fn run_once_at(&self, now: i64) -> Result<Pass, DeliveryError> {
        let (claimed, mut pass) = self.claim_at(now).await?;
        let mut sends = tokio::task::JoinSet::new();
        for claimed in claimed {
            let worker = self.clone();
            sends.spawn(async move {
                let outcome = worker.deliver(&claimed, now).await;
                (claimed, outcome)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = sends.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(error) => tracing::error!(%error, "a delivery task panicked"),
            }
        }
        for status in self.record_all(&results, now).await? {
            match status {
                Some("sent") => pass.sent += 1,
                Some("deferred") => pass.deferred += 1,
                Some(_) => pass.failed += 1,
                None => tracing::warn!("a message's lease ran out while it was being sent"),
            }
        }
        Ok(pass)
    }

    /// Leases due messages, applies the policy and marks those allowed `sending`.
    /// Returns them (and resends whose lease ran out), with counts of the rest.
    ///
    /// Set-based: one statement leases the batch; per shop one reads (and on PostgreSQL
    /// locks) its recipients and one per kind of policy fact reads theirs; the
    /// decisions are then made in memory, in message order, each counting the sends the
    /// batch already decided; and the transitions are written grouped.
    pub async fn claim_at(&self, now: i64) -> Result<(Vec<Claimed>, Pass), DeliveryError> {
        let db = &self.inner.db;
        let lease_until = now + i64::try_from(self.inner.config.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut pass = Pass::default();
        let mut w = db.write().await?;
        let mut due =
            outbox::lease_due(&mut w.tx, db.backend(), now, &self.inner.owner, lease_until, self.inner.config.batch)
                .await?;
        due.sort_by_key(|m| (m.shop_id, m.customer_id, m.created_at));
        let mut changes: Vec<(&Message, Transition<'_>)> = Vec::with_capacity(due.len());
        let mut sends = Vec::new();
        for shop_messages in due.chunk_by(|a, b| a.shop_id == b.shop_id) {
            let shop_id = shop_messages[0].shop_id;
            let mut customer_ids: Vec<i64> = shop_messages.iter().map(|m| m.customer_id).collect();
            customer_ids.dedup();
            let recipients: HashMap<i64, Customer> = lock_customers(&mut w.tx, db.backend(), shop_id, &customer_ids)
                .await?
                .into_iter()
                .map(|c| (c.id, c))
                .collect();
            let mut facts =
                outbox::RecipientFacts::read(&mut w.tx, shop_id, &customer_ids, now - policy::CAP_WINDOW_MS).await?;
            let mut context = self.shop_context(shop_id).await?;
            for message in shop_messages {
                let (Some(context), Some(customer)) = (context.as_mut(), recipients.get(&message.customer_id)) else {
                    changes.push((message, suppressed(policy::Suppression::NoAddress)));
                    pass.suppressed += 1;
                    continue;
                };
                let Some(channel) = self.channel(context, &message.channel).await? else {
                    let reason = format!("no channel named `{}` is configured", message.channel);
                    changes.push((message, failed(Cow::Owned(reason))));
                    pass.failed += 1;
                    continue;
                };
                let resend = message.status == "sending";
                let decision = if resend {
                    Decision::Send
                } else {
                    let (sent_in_window, last_sent_at) = facts.marketing_sends(message.customer_id, &message.channel);
                    policy::decide(
                        &context.policy,
                        &Facts {
                            shop_id,
                            customer_id: message.customer_id,
                            purpose: message.purpose,
                            has_address: address(&channel.settings, customer).is_some(),
                            consent: customer.marketing_consent,
                            unsubscribed: facts.unsubscribed(message.customer_id),
                            sent_in_window,
                            last_sent_at,
                            now,
                            timezone: context.timezone,
                        },
                    )
                };
                match decision {
                    Decision::Send => {
                        if message.purpose == Purpose::Marketing {
                            facts.note_marketing_send(message.customer_id, &message.channel, now, resend);
                        }
                        changes.push((
                            message,
                            Transition {
                                status: "sending",
                                reason: resend
                                    .then_some(Cow::Borrowed("lease expired mid-send: resent with the same id")),
                                next_attempt_at: None,
                                sent_at: Some(now),
                                lease_until: Some(lease_until),
                                count_attempt: true,
                            },
                        ));
                        sends.push(Claimed {
                            message: message.clone(),
                            shop: context.shop.clone(),
                            customer: customer.clone(),
                            channel: channel.settings.clone(),
                            secrets: channel.secrets.clone(),
                            source: self.template(context, &message.template).await?,
                            cart_url: context.cart_url.clone(),
                            resend,
                        });
                    }
                    Decision::Defer { until } => {
                        changes.push((
                            message,
                            Transition {
                                status: "deferred",
                                reason: Some(Cow::Borrowed("quiet_hours")),
                                next_attempt_at: Some(until),
                                sent_at: None,
                                lease_until: None,
                                count_attempt: false,
                            },
                        ));
                        pass.deferred += 1;
                    }
                    Decision::Suppress(reason) => {
                        changes.push((message, suppressed(reason)));
                        pass.suppressed += 1;
                    }
                }
            }
        }
        let applied = outbox::apply_transitions(&mut w.tx, &self.inner.owner, now, &changes).await?;
        sends.retain(|claimed| applied.contains(&claimed.message.id));
        w.commit().await?;
        Ok((sends, pass))
    }

    async fn shop_context(&self, shop_id: i64) -> Result<Option<ShopContext>, StoreError> {
        let Some(shop) = self.inner.db.shop(shop_id).await? else { return Ok(None) };
        let policy = match self.inner.db.delivery_settings(shop_id).await? {
            Some(stored) => serde_json::from_value(stored).unwrap_or_default(),
            None => PolicySettings::default(),
        };
        let timezone = shop.timezone.parse().unwrap_or(Tz::UTC);
        let cart_url = policy
            .cart_url
            .clone()
            .unwrap_or_else(|| format!("{}/cart", shop.allowed_origins.first().map_or("", String::as_str)));
        Ok(Some(ShopContext {
            shop: Arc::new(shop),
            policy,
            timezone,
            channels: HashMap::new(),
            templates: HashMap::new(),
            cart_url,
        }))
    }

    async fn channel(&self, context: &mut ShopContext, name: &str) -> Result<Option<Arc<ShopChannel>>, StoreError> {
        if let Some(known) = context.channels.get(name) {
            return Ok(known.clone());
        }
        let now = now_ms();
        let loaded = self.inner.db.channel(context.shop.id, name).await?.and_then(|stored| {
            let settings = ChannelSettings::from_json(&stored.kind, stored.settings).ok()?;
            let previous = stored.previous_secret.filter(|_| stored.previous_secret_until.is_some_and(|u| u > now));
            let secrets = stored.secret.into_iter().chain(previous).collect();
            Some(Arc::new(ShopChannel { settings, secrets }))
        });
        context.channels.insert(name.to_owned(), loaded.clone());
        Ok(loaded)
    }

    /// A template in the shop's locale, looked up once per claim.
    async fn template(
        &self,
        context: &mut ShopContext,
        name: &str,
    ) -> Result<Option<Arc<templates::Source>>, StoreError> {
        if let Some(known) = context.templates.get(name) {
            return Ok(known.clone());
        }
        let locale = templates::locale_for(&context.shop.locale);
        let source = match self.inner.db.template(context.shop.id, name, locale).await? {
            Some(stored) => Some(templates::Source { subject: stored.subject, body: stored.body }),
            None => templates::builtin(name, locale),
        }
        .map(Arc::new);
        context.templates.insert(name.to_owned(), source.clone());
        Ok(source)
    }

    /// Renders and sends one claimed message; records nothing.
    pub async fn deliver(&self, claimed: &Claimed, now: i64) -> Outcome {
        match self.try_deliver(claimed, now).await {
            Ok(()) => Outcome::Sent,
            Err(error) => Outcome::Failed(error),
        }
    }

    async fn try_deliver(&self, claimed: &Claimed, now: i64) -> Result<(), SendError> {
        let config = &self.inner.config;
        let message = &claimed.message;
        let shop = &claimed.shop;
        let locale = templates::locale_for(&shop.locale);
        let source = claimed
            .source
            .as_deref()
            .ok_or_else(|| SendError::Permanent(format!("unknown template `{}`", message.template)))?;
        let unsubscribe_url = links::unsubscribe_url(&config.public_url, shop, message.id);
        let shop_url = shop.allowed_origins.first().cloned().unwrap_or_default();
        let track = {
            let (public_url, shop, id) = (config.public_url.clone(), shop.clone(), message.id);
            move |target: &str| links::tracked_url(&public_url, &shop, id, target)
        };
        let context = serde_json::json!({
            "customer": {"first_name": claimed.customer.first_name, "email": claimed.customer.email},
            "shop": {"name": shop.name, "url": shop_url},
            "data": message.data,
            "unsubscribe_url": unsubscribe_url,
            "cart_url": track(&claimed.cart_url),
        });
        let rendered = templates::render(&message.template, source, &context, track)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let to = address(&claimed.channel, &claimed.customer)
            .ok_or_else(|| SendError::Permanent("the customer has no address for this channel".into()))?;
        match &claimed.channel {
            ChannelSettings::Smtp(settings) => {
                let email = smtp::Email {
                    message_id: format!("<{}.{}@patron>", message.id, shop.id),
                    to: &to,
                    rendered: &rendered,
                    unsubscribe_url: &unsubscribe_url,
                    purpose: message.purpose.as_str(),
                };
                smtp::send(settings, &email, config.smtp_timeout).await
            }
            ChannelSettings::Webhook(settings) => {
                let body = webhook_body(claimed, locale, &rendered, &unsubscribe_url, now).to_string();
                let secrets: Vec<&str> = claimed.secrets.iter().map(String::as_str).collect();
                let delivery = webhook::Delivery {
                    url: &settings.url,
                    id: &webhook_id(message.id),
                    timestamp: now / 1000,
                    body: body.as_bytes(),
                    secrets: &secrets,
                };
                webhook::send(&self.inner.http, &delivery, config.allow_private_targets).await
            }
        }
    }

    /// Records the outcome of a send, if this worker still holds the message: the
    /// status it now has (`sent`, `deferred` for a retry, `failed`), `None` if it no
    /// longer held it.
    pub async fn record(
        &self,
        claimed: &Claimed,
        outcome: &Outcome,
        now: i64,
    ) -> Result<Option<&'static str>, StoreError> {
        let statuses = self.record_all(&[(claimed.clone(), outcome.clone())], now).await?;
        Ok(statuses.into_iter().next().flatten())
    }

    /// [`Worker::record`] for a whole pass, in one transaction.
    pub async fn record_all(
        &self,
        results: &[(Claimed, Outcome)],
        now: i64,
    ) -> Result<Vec<Option<&'static str>>, StoreError> {
        let mut statuses = Vec::with_capacity(results.len());
        if results.is_empty() {
            return Ok(statuses);
        }
        let gave_up: Vec<Option<String>> = results
            .iter()
            .map(|(claimed, outcome)| match outcome {
                Outcome::Failed(SendError::Transient(error)) => {
                    let (message, attempts) = (&claimed.message, claimed.message.attempts + 1);
                    retry_at(message.created_at, now, attempts)
                        .is_none()
                        .then(|| format!("gave up after {attempts} attempts: {error}"))
                }
                _ => None,
            })
            .collect();
        let changes: Vec<(&Message, Transition<'_>)> = results
            .iter()
            .zip(&gave_up)
            .map(|((claimed, outcome), gave_up)| {
                let message = &claimed.message;
                let transition = match (outcome, gave_up) {
                    (_, Some(gave_up)) => failed(Cow::Borrowed(gave_up)),
                    (Outcome::Sent, None) => Transition {
                        status: "sent",
                        reason: (message.purpose == Purpose::Transactional).then_some(Cow::Borrowed("transactional")),
                        next_attempt_at: None,
                        sent_at: Some(now),
                        lease_until: None,
                        count_attempt: false,
                    },
                    (Outcome::Failed(SendError::Transient(error)), None) => Transition {
                        status: "deferred",
                        reason: Some(Cow::Borrowed(error.as_str())),
                        next_attempt_at: retry_at(message.created_at, now, message.attempts + 1),
                        sent_at: None,
                        lease_until: None,
                        count_attempt: false,
                    },
                    (Outcome::Failed(SendError::Permanent(error)), None) => failed(Cow::Borrowed(error)),
                };
                (message, transition)
            })
            .collect();
        let mut w = self.inner.db.write().await?;
        let applied = outbox::apply_transitions(&mut w.tx, &self.inner.owner, now, &changes).await?;
        w.commit().await?;
        statuses.extend(
            changes.iter().map(|(message, transition)| applied.contains(&message.id).then_some(transition.status)),
        );
        Ok(statuses)
    }
}

fn suppressed(reason: policy::Suppression) -> Transition<'static> {
    Transition {
        status: "suppressed",
        reason: Some(Cow::Borrowed(reason.as_str())),
        next_attempt_at: None,
        sent_at: None,
        lease_until: None,
        count_attempt: false,
    }
}

fn failed(reason: Cow<'_, str>) -> Transition<'_> {
    Transition {
        status: "failed",
        reason: Some(reason),
        next_attempt_at: None,
        sent_at: None,
        lease_until: None,
        count_attempt: false,
    }
}

/// The `webhook-id` of a message: the same on every attempt.
pub fn webhook_id(message_id: i64) -> String {
    format!("msg_{message_id}")
}

/// Where a channel reaches a customer: the email for SMTP; for a webhook the email or
/// phone (the merchant's provider picks).
fn address(channel: &ChannelSettings, customer: &Customer) -> Option<String> {
    match channel {
        ChannelSettings::Smtp(_) => customer.email.clone(),
        ChannelSettings::Webhook(_) => customer.phone.clone().or_else(|| customer.email.clone()),
    }
}

/// The JSON a webhook carries, Standard Webhooks style: `type`, `timestamp`, `data`.
fn webhook_body(
    claimed: &Claimed,
    locale: &str,
    rendered: &templates::Rendered,
    unsubscribe_url: &str,
    now: i64,
) -> serde_json::Value {
    let (message, customer) = (&claimed.message, &claimed.customer);
    let timestamp = chrono::DateTime::from_timestamp_millis(now).map(|t| t.to_rfc3339()).unwrap_or_default();
    serde_json::json!({
        "type": "message.send",
        "timestamp": timestamp,
        "data": {
            "id": message.id.to_string(),
            "channel": message.channel,
            "template": message.template,
            "purpose": message.purpose,
            "journey": message.journey,
            "step": message.step,
            "locale": locale,
            "to": {
                "customer_id": customer.id.to_string(),
                "external_id": customer.external_id,
                "email": customer.email,
                "phone": customer.phone,
                "first_name": customer.first_name,
            },
            "subject": rendered.subject,
            "body": rendered.body,
            "unsubscribe_url": unsubscribe_url,
            "data": message.data,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_then_give_up_after_three_days() {
        let created = 0;
        assert_eq!(retry_at(created, 1_000, 1), Some(1_000 + MINUTE_MS));
        assert_eq!(retry_at(created, 1_000, 3), Some(1_000 + 4 * MINUTE_MS));
        assert_eq!(retry_at(created, 1_000, 30), Some(1_000 + MAX_RETRY_GAP_MS));
        assert_eq!(retry_at(created, GIVE_UP_AFTER_MS - MINUTE_MS, 10), None);
    }
}
