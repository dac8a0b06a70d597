//! `/chats`: create, list, read, rename, delete, and the member list.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use harmony_core::model::ChatKind;
use harmony_core::usecases::{ChatCursor, NewChat};
use harmony_core::values::{ChatName, ValidationError};
use harmony_core::{ChatId, UserId};
use harmony_protocol::dto::{
    AddMemberRequest, ChatDto, ChatListItem, CreateChatRequest, MemberDto, RenameChatRequest,
};
use harmony_protocol::errors::{ErrorCode, Problem};

use super::{body_id, path_id, Fields};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

pub(crate) fn chat_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::ChatNotFound, "Chat not found")
}

/// Members one create request may name.
pub(crate) const MAX_MEMBER_IDS: usize = 999;

#[utoipa::path(operation_id = "create_chat", post, path = "/api/v1/chats", tag = "chats", request_body = CreateChatRequest,
    responses((status = 201, description = "Created", body = ChatDto), (status = 200, description = "The existing direct chat", body = ChatDto),
              (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<CreateChatRequest>,
) -> ApiResult<(StatusCode, Json<ChatDto>)> {
    let mut fields = Fields::default();
    let kind = fields.take(
        ChatKind::parse(&body.kind).ok_or(ValidationError::new("kind", "must be group or direct")),
    );
    let name = match body.name.as_deref() {
        Some(raw) => fields.take(ChatName::parse(raw)).map(Some),
        None => Some(None),
    };
    if body.member_ids.len() > MAX_MEMBER_IDS {
        fields.take::<()>(Err(ValidationError::new("member_ids", "too many members")));
    }
    let member_ids: Vec<Option<UserId>> = body
        .member_ids
        .iter()
        .map(|raw| fields.take(body_id(raw, "member_ids")))
        .collect();
    fields.finish()?;
    let (Some(kind), Some(name)) = (kind, name) else {
        return Err(ApiError::internal());
    };
    let request = NewChat {
        kind,
        name,
        member_ids: member_ids.into_iter().flatten().collect(),
    };
    let (chat, created) = state.use_cases.chats.create(caller.id, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ChatDto::from(&chat))))
}

/// Chats per page of `GET /chats`, at most and by default.
pub const CHAT_PAGE_MAX: usize = 200;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChatListQuery {
    /// Chats per page, 1..=200 (default 200).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
    /// Where the previous page ended: the `cursor` of its `Link: <...>; rel="next"` header.
    #[param(
        pattern = "^[0-9]{1,18}\\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    cursor: Option<String>,
}

#[utoipa::path(operation_id = "list_chats", get, path = "/api/v1/chats", tag = "chats", params(ChatListQuery),
    description = "The caller's chats, the most recently active first. When more follow, the answer has a \
                   `Link: </api/v1/chats?cursor=...&limit=...>; rel=\"next\"` header.",
    responses((status = 200, body = [ChatListItem],
               headers(("link" = String, description = "The next page, when there is one"))),
              (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(query): ApiQuery<ChatListQuery>,
) -> ApiResult<axum::response::Response> {
    let limit = query.limit.unwrap_or(CHAT_PAGE_MAX);
    if !(1..=CHAT_PAGE_MAX).contains(&limit) {
        return Err(ValidationError::new("limit", "must be 1 to 200").into());
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(str::parse::<ChatCursor>)
        .transpose()?;
    let (chats, next) = state
        .use_cases
        .chats
        .list(caller.id, limit, cursor.as_ref())
        .await?;
    let body: Vec<ChatListItem> = chats.iter().map(ChatListItem::from).collect();
    let mut response = Json(body).into_response();
    if let Some(next) = next {
        let link = format!("</api/v1/chats?cursor={next}&limit={limit}>; rel=\"next\"");
        if let Ok(value) = axum::http::HeaderValue::from_str(&link) {
            response
                .headers_mut()
                .insert(axum::http::header::LINK, value);
        }
    }
    Ok(response)
}

#[utoipa::path(operation_id = "get_chat", get, path = "/api/v1/chats/{id}", tag = "chats", params(("id" = String, Path)),
    responses((status = 200, body = ChatDto), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ChatDto>> {
    let id: ChatId = path_id(&id, chat_not_found)?;
    let chat = state.use_cases.chats.get(caller.id, id).await?;
    Ok(Json(ChatDto::from(&chat)))
}

#[utoipa::path(patch, path = "/api/v1/chats/{id}", tag = "chats", params(("id" = String, Path)), request_body = RenameChatRequest,
    responses((status = 200, body = ChatDto), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn rename(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenameChatRequest>,
) -> ApiResult<Json<ChatDto>> {
    let id: ChatId = path_id(&id, chat_not_found)?;
    let name = ChatName::parse(&body.name)?;
    let chat = state.use_cases.chats.rename(caller.id, id, name).await?;
    Ok(Json(ChatDto::from(&chat)))
}

#[utoipa::path(operation_id = "delete_chat", delete, path = "/api/v1/chats/{id}", tag = "chats", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: ChatId = path_id(&id, chat_not_found)?;
    state.use_cases.chats.delete(caller.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/chats/{id}/members", tag = "chats", params(("id" = String, Path)),
    responses((status = 200, body = [MemberDto]), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn members(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MemberDto>>> {
    let id: ChatId = path_id(&id, chat_not_found)?;
    let members = state.use_cases.chats.members(caller.id, id).await?;
    Ok(Json(members.iter().map(MemberDto::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/chats/{id}/members", tag = "chats", params(("id" = String, Path)), request_body = AddMemberRequest,
    responses((status = 201, body = MemberDto), (status = 403, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<MemberDto>)> {
    let id: ChatId = path_id(&id, chat_not_found)?;
    let user: UserId = body_id(&body.user_id, "user_id")?;
    let member = state
        .use_cases
        .chats
        .add_member(caller.id, id, user)
        .await?;
    Ok((StatusCode::CREATED, Json(MemberDto::from(&member))))
}

#[utoipa::path(delete, path = "/api/v1/chats/{id}/members/{user_id}", tag = "chats",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: ChatId = path_id(&id, chat_not_found)?;
    let user: UserId = path_id(&user_id, || {
        ApiError::not_found(ErrorCode::MemberNotFound, "Not a member of this chat")
    })?;
    state
        .use_cases
        .chats
        .remove_member(caller.id, id, user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
