//! Secret-key API for the outbox: messages by customer and status, one message with
//! every status it went through, and the dead letters (messages that failed for good).
//! Ids leave as strings.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::keys::SecretShop;
use super::state::AppState;
use crate::store::customers::InvalidInput;
use crate::store::outbox::{HistoryEntry, Message, MessageFilter, Purpose};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
const STATUSES: [&str; 6] = ["queued", "deferred", "sending", "sent", "failed", "suppressed"];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(dead_letters)).routes(routes!(one))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this customer's messages (Patron's customer id).
    #[param(pattern = "^-?[0-9]+$")]
    customer_id: Option<String>,
    /// Only messages in this status.
    #[param(pattern = "^(queued|deferred|sending|sent|failed|suppressed)$")]
    status: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A message as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Message)]
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
    /// queued, deferred, sending, sent, failed (dead-lettered) or suppressed.
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

/// A message with every status it went through and its clicks.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MessageDetail)]
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

/// The shop's messages, newest first, by customer and status.
#[utoipa::path(
    get,
    operation_id = "list_messages",
    path = "/v1/messages",
    tag = "messages",
    params(ListQuery),
    responses((status = 200, description = "The messages", body = Vec<MessageView>)),
    security(("secret_key" = [])),
)]
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

/// Messages that failed for good, newest first, with their last error; at most 1000.
#[utoipa::path(
    get,
    path = "/v1/messages/dead-letters",
    tag = "messages",
    responses((status = 200, description = "The dead letters", body = Vec<MessageView>)),
    security(("secret_key" = [])),
)]
async fn dead_letters(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
) -> ApiResult<Json<Vec<MessageView>>> {
    let filter = MessageFilter { customer_id: None, status: Some("failed".into()), limit: MAX_LIMIT };
    let messages = state.db.messages(shop.id, &filter).await?;
    Ok(Json(messages.into_iter().map(MessageView::from).collect()))
}

/// One message with every status it went through.
#[utoipa::path(
    get,
    operation_id = "get_message",
    path = "/v1/messages/{id}",
    tag = "messages",
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = MessageWithHistory),
        (status = 404, description = "No such message", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
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
