//! Customers: search (the same [`Db::search_customers`] as `GET /v1/customers`) and the
//! 360° view of one customer — identities, stats, tags, segments and their history,
//! tier and points ledger, coupons, orders, the event timeline and messages.
//!
//! [`Db::search_customers`]: crate::store::Db::search_customers

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::{Deserialize, Serialize};

use super::auth::Signed;
use super::views::{ConsoleError, ConsoleResult, money, page, shown_email, shown_phone};
use super::wants_fragment;
use crate::api::state::AppState;
use crate::store::console::Role;
use crate::store::customers::Customer;
use crate::store::outbox::MessageFilter;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/customers", get(search))
        .route("/admin/customers/{id}", get(customer))
        .route("/admin/customers/{id}/tags", post(set_tag))
}

const PAGE: i64 = 25;

/// A customer as a row of a list, personal data shown as the role may see it.
#[derive(Serialize)]
pub(super) struct CustomerRow {
    id: String,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    external_id: Option<String>,
    orders: i64,
    spent: String,
    last_order_at: Option<i64>,
}

pub(super) fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (first, last) => first.or(last).map(ToOwned::to_owned),
    }
}

pub(super) fn row(customer: &Customer, role: Role, currency: &str) -> CustomerRow {
    CustomerRow {
        id: customer.id.to_string(),
        name: full_name(customer.first_name.as_deref(), customer.last_name.as_deref()),
        email: shown_email(role, customer.email.as_deref()),
        phone: shown_phone(role, customer.phone.as_deref()),
        external_id: customer.external_id.clone(),
        orders: customer.stats.order_count,
        spent: money(Some(customer.stats.total_spent), currency),
        last_order_at: customer.stats.last_order_at,
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct SearchPage {
    q: String,
    rows: Vec<CustomerRow>,
    next: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> ConsoleResult<Response> {
    let q = query.q.unwrap_or_default();
    let cursor = query.cursor.as_deref().and_then(|c| c.parse::<i64>().ok());
    let found = state.db.search_customers(signed.shop.id, &q, cursor, PAGE).await?;
    let rows = found.customers.iter().map(|c| row(c, signed.user.role, &signed.shop.currency)).collect();
    let next = found.next_cursor.map(|cursor| {
        let mut url = format!("/admin/customers?cursor={cursor}");
        if !q.is_empty() {
            url.push_str("&q=");
            url.push_str(&encode(&q));
        }
        url
    });
    let view = SearchPage { q, rows, next };
    let template = if wants_fragment(&headers, "results") { "customer_rows.html" } else { "customers.html" };
    Ok(page(&signed, template, "customers", "/admin/customers", view))
}

/// Percent-encodes a query parameter value.
pub(super) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[derive(Serialize)]
struct Event {
    kind: String,
    at: i64,
    url: Option<String>,
    detail: String,
}

#[derive(Serialize)]
struct CouponRow {
    code: String,
    description: String,
    source: String,
    expires_at: Option<i64>,
}

#[derive(Serialize)]
struct MessageRow {
    channel: String,
    template: String,
    journey: Option<String>,
    status: String,
    reason: Option<String>,
    created_at: i64,
}

#[derive(Serialize)]
struct LedgerRow {
    delta: i64,
    kind: String,
    reason: String,
    created_at: i64,
}

#[derive(Serialize)]
struct OrderRow {
    id: String,
    status: String,
    total: String,
    refunded: Option<String>,
    quantity: i64,
    placed_at: i64,
}

#[derive(Serialize)]
struct CustomerPage {
    customer: CustomerRow,
    id: String,
    birthday: Option<String>,
    marketing_consent: bool,
    created_at: i64,
    first_order_at: Option<i64>,
    aov: String,
    identities: Vec<crate::store::customer_view::IdentityRow>,
    merged: Vec<String>,
    tags: Vec<String>,
    segments: Vec<String>,
    segment_history: Vec<crate::store::customer_view::SegmentStint>,
    tier: Option<String>,
    points: i64,
    ledger: Vec<LedgerRow>,
    coupons: Vec<CouponRow>,
    orders: Vec<OrderRow>,
    events: Vec<Event>,
    messages: Vec<MessageRow>,
}

/// The customer with id `text` in the signed-in shop: another shop's id is not found.
async fn find(state: &AppState, signed: &Signed, text: &str) -> ConsoleResult<Customer> {
    let id = text.parse::<i64>().map_err(|_| ConsoleError::NotFound)?;
    state.db.customer(signed.shop.id, id).await?.ok_or(ConsoleError::NotFound)
}

/// What an event adds to its kind on the timeline: a product, a search, an amount.
fn event_detail(properties: &serde_json::Value) -> String {
    ["title", "product_id", "query", "placement", "order_id"]
        .iter()
        .find_map(|key| properties.get(*key).and_then(|v| v.as_str()).map(ToOwned::to_owned))
        .unwrap_or_default()
}

async fn customer(State(state): State<AppState>, signed: Signed, Path(id): Path<String>) -> ConsoleResult<Response> {
    let customer = find(&state, &signed, &id).await?;
    let (shop_id, cid) = (signed.shop.id, customer.id);
    let db = &state.db;
    let filter = MessageFilter { customer_id: Some(cid), status: None, limit: 20 };
    let (identities, merged, tags, segments, history, tier, points, ledger, coupons, orders, events, messages) = tokio::try_join!(
        db.customer_identities(shop_id, cid),
        db.merged_records(shop_id, cid),
        db.tags(shop_id, cid),
        db.current_segments(shop_id, cid),
        db.segment_history(shop_id, cid),
        db.tier(shop_id, cid),
        db.points_balance(shop_id, cid),
        db.ledger(shop_id, cid, 20),
        db.active_coupons(shop_id, cid),
        db.customer_orders(shop_id, cid, 20),
        db.customer_events(shop_id, cid, 50),
        db.messages(shop_id, &filter),
    )?;
    let role = signed.user.role;
    let currency = signed.shop.currency.as_str();
    // Identities that are emails or phones are personal data too.
    let identities = identities
        .into_iter()
        .map(|mut identity| {
            identity.value = match identity.kind.as_str() {
                "email" => shown_email(role, Some(&identity.value)).unwrap_or_default(),
                "phone" => shown_phone(role, Some(&identity.value)).unwrap_or_default(),
                _ => identity.value,
            };
            identity
        })
        .collect();
    let view = CustomerPage {
        customer: row(&customer, role, currency),
        id: customer.id.to_string(),
        birthday: customer.birthday.clone().filter(|_| role.sees_personal_data()),
        marketing_consent: customer.marketing_consent,
        created_at: customer.created_at,
        first_order_at: customer.stats.first_order_at,
        aov: money((customer.stats.order_count > 0).then_some(customer.stats.average_order_value), currency),
        identities,
        merged: merged.iter().map(ToString::to_string).collect(),
        tags,
        segments,
        segment_history: history,
        tier,
        points,
        ledger: ledger
            .into_iter()
            .map(|l| LedgerRow { delta: l.delta, kind: l.kind, reason: l.reason, created_at: l.created_at })
            .collect(),
        coupons: coupons
            .into_iter()
            .map(|c| CouponRow { code: c.code, description: c.description, source: c.source, expires_at: c.expires_at })
            .collect(),
        orders: orders
            .into_iter()
            .map(|o| OrderRow {
                total: money(Some(o.total), &o.currency),
                refunded: (o.refunded > 0).then(|| money(Some(o.refunded), &o.currency)),
                id: o.id,
                status: o.status,
                quantity: o.items,
                placed_at: o.placed_at,
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| Event { detail: event_detail(&e.properties), kind: e.kind, at: e.occurred_at, url: e.url })
            .collect(),
        messages: messages
            .into_iter()
            .map(|m| MessageRow {
                channel: m.channel,
                template: m.template,
                journey: m.journey,
                status: m.status,
                reason: m.reason,
                created_at: m.created_at,
            })
            .collect(),
    };
    Ok(page(&signed, "customer.html", "customers", "/admin/customers", view))
}

#[derive(Deserialize)]
struct TagForm {
    tag: String,
    /// `add` or `remove`.
    action: String,
}

#[derive(Serialize)]
struct TagsFragment {
    id: String,
    tags: Vec<String>,
}

/// Adds or removes a tag by hand (marketers and owners), recorded in the audit log.
async fn set_tag(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TagForm>,
) -> ConsoleResult<Response> {
    if !signed.user.role.may_edit() {
        return Err(ConsoleError::Forbidden);
    }
    let customer = find(&state, &signed, &id).await?;
    let tag = form.tag.trim();
    let present = form.action != "remove";
    if !tag.is_empty() && tag.chars().count() <= 64 {
        let changed = state.db.set_customer_tag(signed.shop.id, customer.id, tag, present).await?;
        if changed {
            let action = if present { "tag_added" } else { "tag_removed" };
            let target = format!("customer {}", customer.id);
            state.db.audit(signed.shop.id, Some(&signed.user), &signed.user.email, action, Some(&target), tag).await?;
        }
    }
    if wants_fragment(&headers, "tags") {
        let tags = state.db.tags(signed.shop.id, customer.id).await?;
        let view = TagsFragment { id: customer.id.to_string(), tags };
        return Ok(page(&signed, "tags.html", "customers", "/admin/customers", view));
    }
    Ok(Redirect::to(&format!("/admin/customers/{}", customer.id)).into_response())
}
