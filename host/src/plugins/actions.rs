//! Applying what plugins return. Plugins never write storage: they return actions,
//! which the host validates and applies for one customer in one transaction.
//!
//! Browser events are untrusted, so actions triggered by them (or by timers they set)
//! may tag, message and schedule, but never award points or set tiers: those come only
//! from orders the store posted with its secret key, or from the merchant's batch runs.

use patron_runtime::types::{Action, CouponSpec as WitCouponSpec, Discount as WitDiscount};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::journeys;
use crate::store::coupons::{self, CouponSpec, Discount};
use crate::store::outbox::{self, OutboxMessage};
use crate::store::points::{self, Entry, EntryKind};
use crate::store::shops::Shop;
use crate::store::{StoreResult, WriteTx, jobs, members, now_ms, segments};

/// Most points one action may award.
pub const MAX_AWARD: i64 = 1_000_000;
/// Most points all the actions of one plugin call may award together.
pub const MAX_AWARD_PER_CALL: i64 = 10_000_000;
/// Longest `points-expiry-days` honoured (a hundred years); longer is read as this.
pub const MAX_EXPIRY_DAYS: i64 = 36_500;
/// Longest tag or segment name, in bytes.
pub const MAX_TAG_LEN: usize = 64;
const MAX_MESSAGE_DATA: usize = 16 * 1024;
const MAX_TIMER_AHEAD_MS: i64 = 400 * 24 * 60 * 60 * 1000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The job kind of a journey timer.
pub const TIMER_JOB: &str = "automation.timer";

/// What made a plugin act.
#[derive(Debug, Clone, Copy)]
pub enum Trigger<'a> {
    /// An order posted by the store (trusted).
    Order { order_id: &'a str },
    /// A batch run the merchant started (trusted).
    Batch,
    /// A trusted write other than an order: a customer created with the secret key, a
    /// segment or tier change.
    Host,
    /// A storefront event or a timer (untrusted).
    Behaviour,
}

impl Trigger<'_> {
    fn trusted(self) -> bool {
        !matches!(self, Self::Behaviour)
    }
}

/// Who acted, and the install settings that shape how actions apply.
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    /// The install's name, which scopes idempotency keys and timers.
    pub plugin: &'a str,
    /// `name@version`, recorded as the source of what is written.
    pub label: String,
    /// Days after which awarded points expire (`points-expiry-days` in the install's config).
    pub points_expiry_days: Option<i64>,
}

/// What applying a list of actions did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Applied {
    pub tags_added: Vec<String>,
    pub tags_removed: Vec<String>,
    pub points_awarded: i64,
    pub tier: Option<String>,
    pub coupons: Vec<String>,
    pub messages: u32,
    pub timers_scheduled: u32,
    pub timers_cancelled: u64,
    /// Actions refused, with why (recorded against the plugin).
    pub refused: Vec<String>,
}

/// Checks a tag, tier or segment name: 1 to `max` bytes, no control characters.
pub(crate) fn check_name(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(format!("{what} `{value}` must be 1 to {max} printable characters"));
    }
    Ok(())
}

/// A coupon a plugin asked for, checked against the shop (currency) and bound to the customer.
pub fn coupon_spec(spec: &WitCouponSpec, shop: &Shop, customer_id: i64, source: &str) -> Result<CouponSpec, String> {
    let (discount, currency) = match &spec.discount {
        WitDiscount::Percent(p) => (Discount::Percent(*p), shop.currency.clone()),
        WitDiscount::Fixed(money) => (Discount::Fixed(money.amount), money.currency.clone()),
        WitDiscount::FreeShipping => (Discount::FreeShipping, shop.currency.clone()),
    };
    if currency != shop.currency {
        return Err(format!("coupon currency {currency} is not the shop's {}", shop.currency));
    }
    if let Some(min) = &spec.minimum_spend
        && min.currency != shop.currency
    {
        return Err(format!("minimum spend currency {} is not the shop's {}", min.currency, shop.currency));
    }
    let spec = CouponSpec {
        discount,
        currency,
        minimum_spend: spec.minimum_spend.as_ref().map_or(0, |m| m.amount),
        expires_at: spec.expires_at,
        customer_id: Some(customer_id),
        source: source.to_owned(),
    };
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

/// A message's data with the code of the coupon issued just before it in the same list
/// as `coupon_code` (a plugin cannot know the code the host generates), unless the
/// data names one already or is not a JSON object.
fn with_coupon_code(data: &str, code: Option<&String>) -> String {
    let Some(code) = code else { return data.to_owned() };
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(mut object)) if !object.contains_key("coupon_code") => {
            object.insert("coupon_code".into(), code.clone().into());
            serde_json::Value::Object(object).to_string()
        }
        _ => data.to_owned(),
    }
}

/// Applies `actions` for `customer_id` in the transaction `conn`.
pub async fn apply_in(
    conn: &mut AnyConnection,
    shop: &Shop,
    customer_id: i64,
    actor: &Actor<'_>,
    trigger: Trigger<'_>,
    actions: &[Action],
) -> StoreResult<Applied> {
    let mut applied = Applied::default();
    let now = now_ms();
    for (index, action) in actions.iter().enumerate() {
        let outcome: Result<(), String> = match action {
            Action::AddTag(tag) => match check_name("tag", tag, MAX_TAG_LEN) {
                Ok(()) => {
                    segments::add_tag(conn, shop.id, customer_id, tag, &actor.label).await?;
                    applied.tags_added.push(tag.clone());
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Action::RemoveTag(tag) => {
                segments::remove_tag(conn, shop.id, customer_id, tag).await?;
                applied.tags_removed.push(tag.clone());
                Ok(())
            }
            Action::AwardPoints(_) | Action::SetTier(_) if !trigger.trusted() => {
                Err("points and tiers come only from orders and merchant batch runs, not from storefront behaviour"
                    .into())
            }
            Action::AwardPoints(award) if award.amount <= 0 || award.amount > MAX_AWARD => {
                Err(format!("award of {} points is outside 1..={MAX_AWARD}", award.amount))
            }
            // Both are at most 10^7, so the sum cannot overflow.
            Action::AwardPoints(award) if applied.points_awarded + award.amount > MAX_AWARD_PER_CALL => {
                Err(format!("awards of one call may total at most {MAX_AWARD_PER_CALL} points"))
            }
            Action::AwardPoints(award) => {
                let order_id = match trigger {
                    Trigger::Order { order_id } => Some(order_id),
                    _ => None,
                };
                let key = match order_id {
                    Some(order_id) => format!("earn:{order_id}:{}:{index}", actor.plugin),
                    None => format!("award:{}:{customer_id}:{now}:{index}", actor.plugin),
                };
                let entry = Entry {
                    customer_id,
                    delta: award.amount,
                    kind: EntryKind::Earn,
                    reason: &award.reason,
                    order_id,
                    source: &actor.label,
                    idempotency_key: key,
                    // At most 100 years of days, so this cannot overflow for any real `now`.
                    expires_at: actor.points_expiry_days.map(|days| now + days.clamp(1, MAX_EXPIRY_DAYS) * DAY_MS),
                };
                if points::append(conn, shop.id, &entry).await? {
                    applied.points_awarded += award.amount;
                }
                Ok(())
            }
            Action::SetTier(tier) => match check_name("tier", tier, 32) {
                Ok(()) => {
                    if members::set_tier(conn, shop.id, customer_id, tier).await? {
                        journeys::triggers::tier_changed(conn, shop.id, customer_id, tier).await?;
                        applied.tier = Some(tier.clone());
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Action::IssueCoupon(spec) => match coupon_spec(spec, shop, customer_id, &actor.label) {
                Ok(spec) => {
                    applied.coupons.push(coupons::issue(conn, shop.id, &spec).await?.code);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Action::SendMessage(message) => {
                match check_name("channel", &message.channel, 32)
                    .and_then(|()| check_name("template", &message.template, 64))
                {
                    Err(e) => Err(e),
                    Ok(()) if message.data.len() > MAX_MESSAGE_DATA => {
                        Err(format!("message data over {MAX_MESSAGE_DATA} bytes"))
                    }
                    Ok(()) => {
                        let queued = OutboxMessage {
                            customer_id,
                            channel: message.channel.clone(),
                            template: message.template.clone(),
                            data: with_coupon_code(&message.data, applied.coupons.last()),
                            source: actor.label.clone(),
                        };
                        outbox::push(conn, shop.id, &queued).await?;
                        applied.messages += 1;
                        Ok(())
                    }
                }
            }
            Action::ScheduleTimer(timer) => match check_name("timer", &timer.name, 64) {
                Err(e) => Err(e),
                Ok(()) if timer.at < now - DAY_MS || timer.at > now + MAX_TIMER_AHEAD_MS => {
                    Err(format!("timer `{}` is not within the next 400 days", timer.name))
                }
                Ok(()) => {
                    let payload = serde_json::json!({
                        "plugin": actor.plugin, "customer_id": customer_id, "name": timer.name, "data": timer.data,
                    });
                    let key = format!("timer:{}:{customer_id}:{}:{}", actor.plugin, timer.name, timer.at);
                    if jobs::enqueue(conn, shop.id, TIMER_JOB, &payload, timer.at, &key, None).await?.is_some() {
                        applied.timers_scheduled += 1;
                    }
                    Ok(())
                }
            },
            Action::CancelTimer(name) => {
                let prefix = format!("timer:{}:{customer_id}:{name}:", actor.plugin);
                applied.timers_cancelled += jobs::cancel_queued(conn, shop.id, &prefix).await?;
                Ok(())
            }
        };
        if let Err(reason) = outcome {
            applied.refused.push(reason);
        }
    }
    Ok(applied)
}

/// Applies `actions` in `w`, after what it already wrote, and commits it all.
pub async fn apply(
    mut w: WriteTx<'_>,
    shop: &Shop,
    customer_id: i64,
    actor: &Actor<'_>,
    trigger: Trigger<'_>,
    actions: &[Action],
) -> StoreResult<Applied> {
    let applied = apply_in(&mut w.tx, shop, customer_id, actor, trigger, actions).await?;
    w.commit().await?;
    if !applied.refused.is_empty() {
        tracing::warn!(plugin = %actor.label, refused = ?applied.refused, "plugin actions refused");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::with_coupon_code;

    #[test]
    fn a_message_after_a_coupon_carries_its_code_unless_it_names_one() {
        let code = "WB-1234".to_owned();
        let data: serde_json::Value =
            serde_json::from_str(&with_coupon_code(r#"{"journey":"win_back"}"#, Some(&code))).expect("json");
        assert_eq!(data, serde_json::json!({"journey": "win_back", "coupon_code": "WB-1234"}));
        assert_eq!(with_coupon_code(r#"{"coupon_code":"MINE"}"#, Some(&code)), r#"{"coupon_code":"MINE"}"#);
        assert_eq!(with_coupon_code("not json", Some(&code)), "not json");
        assert_eq!(with_coupon_code(r#"{"a":1}"#, None), r#"{"a":1}"#);
    }
}
