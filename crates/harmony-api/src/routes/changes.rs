//! `/chats/{id}/messages/{message_id}`: edit and delete a message, and its reactions. Each
//! change is an entry of the chat's order (decision record 0004); the answer comes once the log
//! holds it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use harmony_core::changes::Emoji;
use harmony_core::values::{ClientMsgId, MessageContent};
use harmony_core::{ChatId, MessageId};
use harmony_protocol::dto::{EditMessageRequest, MessageChangeDto};
use harmony_protocol::errors::{ErrorCode, Problem};

use super::chats::chat_not_found;
use super::{path_id, Fields};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::AppState;

fn message_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::MessageNotFound, "Message not found")
}

/// The chat and message a path names; a malformed id names nothing that exists.
fn ids(chat: &str, message: &str) -> Result<(ChatId, MessageId), ApiError> {
    Ok((
        path_id(chat, chat_not_found)?,
        path_id(message, message_not_found)?,
    ))
}

#[utoipa::path(operation_id = "edit_message", patch, path = "/api/v1/chats/{id}/messages/{message_id}", tag = "messages",
    params(("id" = String, Path), ("message_id" = String, Path)), request_body = EditMessageRequest,
    responses((status = 200, description = "The edit, placed in the chat's order (or the same edit, for a retry)", body = MessageChangeDto),
              (status = 403, description = "Not the author", body = Problem), (status = 409, description = "The message was deleted", body = Problem),
              (status = 429, body = Problem)), security(("bearer" = [])))]
pub async fn edit(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((chat, message)): Path<(String, String)>,
    ApiJson(body): ApiJson<EditMessageRequest>,
) -> ApiResult<Json<MessageChangeDto>> {
    let (chat, target) = ids(&chat, &message)?;
    let mut fields = Fields::default();
    let content = fields.take(MessageContent::parse(&body.content));
    let client_msg_id = match body.client_msg_id.as_deref() {
        Some(raw) => fields.take(ClientMsgId::parse(raw)).map(Some),
        None => Some(None),
    };
    fields.finish()?;
    let (Some(content), Some(client_msg_id)) = (content, client_msg_id) else {
        return Err(ApiError::internal());
    };
    let edit = state
        .use_cases
        .messages
        .edit(caller.id, chat, target, content, client_msg_id)
        .await?;
    MessageChangeDto::of(&edit)
        .map(Json)
        .ok_or_else(ApiError::internal)
}

#[utoipa::path(operation_id = "delete_message", delete, path = "/api/v1/chats/{id}/messages/{message_id}", tag = "messages",
    params(("id" = String, Path), ("message_id" = String, Path)),
    responses((status = 204, description = "Deleted (also when it was already)"),
              (status = 403, description = "A member deleting another's message", body = Problem), (status = 429, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((chat, message)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (chat, target) = ids(&chat, &message)?;
    state
        .use_cases
        .messages
        .delete(caller.id, chat, target)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses a path emoji; anything else is a validation error on it.
fn emoji(raw: &str) -> Result<Emoji, ApiError> {
    Emoji::parse(raw).map_err(|e| ApiError::validation(vec![e]))
}

#[utoipa::path(operation_id = "add_reaction", put, path = "/api/v1/chats/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages",
    params(("id" = String, Path), ("message_id" = String, Path), ("emoji" = String, Path, description = "One emoji, percent-encoded")),
    responses((status = 204, description = "The caller reacts with it (also when they did already)"), (status = 400, body = Problem),
              (status = 409, description = "The message was deleted, or carries the most distinct emoji it may", body = Problem),
              (status = 429, body = Problem)),
    security(("bearer" = [])))]
pub async fn react(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    reaction(&state, &caller, &path, true).await
}

/// Adds (`add`) or removes the caller's reaction the path names.
async fn reaction(
    state: &AppState,
    caller: &AuthUser,
    (chat, message, raw): &(String, String, String),
    add: bool,
) -> ApiResult<StatusCode> {
    let (chat, target) = ids(chat, message)?;
    let emoji = emoji(raw)?;
    state
        .use_cases
        .messages
        .react(caller.id, chat, target, emoji, add)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(operation_id = "remove_reaction", delete, path = "/api/v1/chats/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages",
    params(("id" = String, Path), ("message_id" = String, Path), ("emoji" = String, Path, description = "One emoji, percent-encoded")),
    responses((status = 204, description = "The caller no longer reacts with it"), (status = 400, body = Problem), (status = 429, body = Problem)),
    security(("bearer" = [])))]
pub async fn unreact(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    reaction(&state, &caller, &path, false).await
}
