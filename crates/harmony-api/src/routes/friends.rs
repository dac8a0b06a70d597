//! `/friends`: requests by username, answers, the friend list, and unfriending.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use harmony_core::values::Username;
use harmony_core::{FriendRequestId, UserId};
use harmony_protocol::dto::{FriendRequestDto, FriendRequestsDto, SendFriendRequest, UserDto};
use harmony_protocol::errors::{ErrorCode, Problem};

use super::path_id;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::AppState;

fn request_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::FriendRequestNotFound, "Friend request not found")
}

#[utoipa::path(post, path = "/api/v1/friends/requests", tag = "friends", request_body = SendFriendRequest,
    responses((status = 201, body = FriendRequestDto), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn send_request(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<SendFriendRequest>,
) -> ApiResult<(StatusCode, Json<FriendRequestDto>)> {
    let username = Username::parse(&body.username)?;
    let request = state.use_cases.friends.request(caller.id, username).await?;
    Ok((StatusCode::CREATED, Json(FriendRequestDto::from(&request))))
}

#[utoipa::path(get, path = "/api/v1/friends/requests", tag = "friends",
    responses((status = 200, body = FriendRequestsDto)), security(("bearer" = [])))]
pub async fn list_requests(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<FriendRequestsDto>> {
    let (incoming, outgoing) = state.use_cases.friends.pending(caller.id).await?;
    Ok(Json(FriendRequestsDto {
        incoming: incoming.iter().map(FriendRequestDto::from).collect(),
        outgoing: outgoing.iter().map(FriendRequestDto::from).collect(),
    }))
}

async fn answer(
    state: &AppState,
    caller: AuthUser,
    id: &str,
    accept: bool,
) -> ApiResult<Json<FriendRequestDto>> {
    let id: FriendRequestId = path_id(id, request_not_found)?;
    let request = state
        .use_cases
        .friends
        .respond(caller.id, id, accept)
        .await?;
    Ok(Json(FriendRequestDto::from(&request)))
}

#[utoipa::path(post, path = "/api/v1/friends/requests/{id}/accept", tag = "friends", params(("id" = String, Path)),
    responses((status = 200, body = FriendRequestDto), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<FriendRequestDto>> {
    answer(&state, caller, &id, true).await
}

#[utoipa::path(post, path = "/api/v1/friends/requests/{id}/decline", tag = "friends", params(("id" = String, Path)),
    responses((status = 200, body = FriendRequestDto), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn decline(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<FriendRequestDto>> {
    answer(&state, caller, &id, false).await
}

#[utoipa::path(operation_id = "list_friends", get, path = "/api/v1/friends", tag = "friends", responses((status = 200, body = [UserDto])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<Vec<UserDto>>> {
    let friends = state.use_cases.friends.list(caller.id).await?;
    Ok(Json(friends.iter().map(UserDto::from).collect()))
}

#[utoipa::path(operation_id = "remove_friend", delete, path = "/api/v1/friends/{user_id}", tag = "friends", params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    let other: UserId = path_id(&user_id, || {
        ApiError::not_found(ErrorCode::NotFriends, "Not friends")
    })?;
    state.use_cases.friends.remove(caller.id, other).await?;
    Ok(StatusCode::NO_CONTENT)
}
