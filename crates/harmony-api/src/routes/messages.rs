//! `/chats/{id}/messages` and `/chats/{id}/read`: send, page through history, mark as read.

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use harmony_core::ports::{AppendOutcome, PageCursor};
use harmony_core::usecases::HISTORY_PAGE_MAX;
use harmony_core::values::{ClientMsgId, MessageContent, ValidationError};
use harmony_core::{ChatId, MessageId};
use harmony_protocol::dto::{MessageDto, MessagePage, ReadMarkerRequest, SendMessageRequest};
use harmony_protocol::errors::Problem;
use serde::Deserialize;

use super::chats::chat_not_found;
use super::{path_id, Fields};
use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

/// Set on the answer to a retried send: the message is the one the first attempt created.
const REPLAY_HEADER: &str = "idempotent-replay";

#[utoipa::path(operation_id = "send_message", post, path = "/api/v1/chats/{id}/messages", tag = "messages", params(("id" = String, Path)), request_body = SendMessageRequest,
    responses((status = 201, description = "Committed to the log (or the same message, for a retry)", body = MessageDto),
              (status = 403, body = Problem), (status = 409, description = "The message replied to was deleted", body = Problem),
              (status = 429, body = Problem)), security(("bearer" = [])))]
pub async fn send(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SendMessageRequest>,
) -> ApiResult<Response> {
    let chat: ChatId = path_id(&id, chat_not_found)?;
    let mut fields = Fields::default();
    let content = fields.take(MessageContent::parse(&body.content));
    let client_msg_id = match body.client_msg_id.as_deref() {
        Some(raw) => fields.take(ClientMsgId::parse(raw)).map(Some),
        None => Some(None),
    };
    let reply_to = match body.reply_to.as_deref() {
        Some(raw) => fields
            .take(super::body_id::<MessageId>(raw, "reply_to"))
            .map(Some),
        None => Some(None),
    };
    fields.finish()?;
    let (Some(content), Some(client_msg_id), Some(reply_to)) = (content, client_msg_id, reply_to)
    else {
        return Err(crate::error::ApiError::internal());
    };
    let outcome = state
        .use_cases
        .messages
        .send(caller.id, chat, content, client_msg_id, reply_to)
        .await?;
    let Some(message) = outcome.message() else {
        return Err(crate::error::ApiError::internal());
    };
    let mut response = (StatusCode::CREATED, Json(MessageDto::from(message))).into_response();
    match outcome {
        AppendOutcome::Created(_) => {
            state.metrics.messages_appended.inc();
        }
        AppendOutcome::Duplicate(_) => {
            response.headers_mut().insert(
                HeaderName::from_static(REPLAY_HEADER),
                HeaderValue::from_static("true"),
            );
        }
        AppendOutcome::Refused(_) => {}
    }
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages older than this message id.
    before: Option<String>,
    /// Messages newer than this message id.
    after: Option<String>,
    /// Page size, 1..=100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/chats/{id}/messages", tag = "messages", params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = Problem), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<MessagePage>> {
    let chat: ChatId = path_id(&id, chat_not_found)?;
    let cursor_id = |raw: &str, field| {
        raw.parse::<MessageId>()
            .map_err(|_| ValidationError::new(field, "must be a message id"))
    };
    let cursor = match (query.before.as_deref(), query.after.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(
                ValidationError::new("before", "use either before or after, not both").into(),
            )
        }
        (Some(raw), None) => PageCursor::Before(cursor_id(raw, "before")?),
        (None, Some(raw)) => PageCursor::After(cursor_id(raw, "after")?),
        (None, None) => PageCursor::Latest,
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=HISTORY_PAGE_MAX).contains(&limit) {
        return Err(ValidationError::new("limit", "must be 1 to 100").into());
    }
    let page = state
        .use_cases
        .messages
        .history(caller.id, chat, cursor, limit)
        .await?;
    Ok(Json(MessagePage {
        messages: page.messages.iter().map(MessageDto::from).collect(),
        has_more: page.has_more,
    }))
}

#[utoipa::path(post, path = "/api/v1/chats/{id}/read", tag = "messages", params(("id" = String, Path)), request_body = ReadMarkerRequest,
    responses((status = 204), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReadMarkerRequest>,
) -> ApiResult<StatusCode> {
    let chat: ChatId = path_id(&id, chat_not_found)?;
    state
        .use_cases
        .chats
        .mark_read(caller.id, chat, body.seq)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
