//! Secret-key API for the outbox: messages by customer and status, one message with
//! every status it went through, and the dead letters (messages that failed for good).
//! Ids leave as strings.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::keys::SecretShop;
use super::state::AppState;
use crate::store::customers::InvalidInput;
use crate::store::outbox::{HistoryEntry, Message, MessageFilter, Purpose};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
const STATUSES: [&str; 6] = ["queued", "deferred", "sending", "sent", "failed", "suppressed"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/messages", get(list))
        .route("/v1/messages/dead-letters", get(dead_letters))
        .route("/v1/messages/{id}", get(one))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    customer_id: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

/// A message as the API shows it.
#[derive(Debug, Serialize)]
pub struct MessageView {
    pub id: String,
    pub customer_id: String,
    pub channel: String,
    pub template: String,
    pub data: serde_json::Value,
    pub source: String,
    pub journey: Option<String>,
    pub step: Option<String>,
    pub purpose: Purpose,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i64,
    /// When a deferred message is tried next (unix ms).
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub updated_at: i64,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.to_string(),
            customer_id: m.customer_id.to_string(),
            next_attempt_at: (m.status == "deferred" || m.status == "queued").then_some(m.next_attempt_at),
            sent_at: (m.status == "sent").then_some(m.sent_at).flatten(),
            channel: m.channel,
            template: m.template,
            data: m.data,
            source: m.source,
            journey: m.journey,
            step: m.step,
            purpose: m.purpose,
            status: m.status,
            reason: m.reason,
            attempts: m.attempts,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct MessageWithHistory {
    #[serde(flatten)]
    message: MessageView,
    history: Vec<HistoryEntry>,
    clicks: i64,
}

fn parse_id(field: &'static str, text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| InvalidInput::new(field, format!("`{text}` is not an id")).into())
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| InvalidInput::new("query", e.body_text()).into())
}

async fn list(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<MessageView>>> {
    let q = query(q)?;
    let customer_id = q.customer_id.as_deref().map(|c| parse_id("customer_id", c)).transpose()?;
    if let Some(status) = &q.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(InvalidInput::new("status", format!("`{status}` is not one of {}", STATUSES.join(", "))).into());
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(InvalidInput::new("limit", format!("must be 1 to {MAX_LIMIT}")).into());
    }
    let filter = MessageFilter { customer_id, status: q.status, limit };
    let messages = state.db.messages(shop.id, &filter).await?;
    Ok(Json(messages.into_iter().map(MessageView::from).collect()))
}

/// Messages that failed for good, newest first, with their last error.
async fn dead_letters(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
) -> ApiResult<Json<Vec<MessageView>>> {
    let filter = MessageFilter { customer_id: None, status: Some("failed".into()), limit: MAX_LIMIT };
    let messages = state.db.messages(shop.id, &filter).await?;
    Ok(Json(messages.into_iter().map(MessageView::from).collect()))
}

async fn one(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageWithHistory>> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("message"))?;
    let message = state.db.message(shop.id, id).await?.ok_or(ApiError::NotFound("message"))?;
    let history = state.db.message_history(shop.id, id).await?;
    let clicks = state.db.message_clicks(shop.id, id).await?;
    Ok(Json(MessageWithHistory { message: message.into(), history, clicks }))
}
