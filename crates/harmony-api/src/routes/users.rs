//! `/users`: the caller's profile, public profiles, and search by username prefix.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use harmony_core::usecases::AuthError;
use harmony_core::values::{Password, ValidationError};
use harmony_core::UserId;
use harmony_protocol::dto::{ChangePasswordRequest, UserDto};
use harmony_protocol::errors::ErrorCode;
use serde::Deserialize;

use super::path_id;
use crate::auth::AuthUser;
use crate::client::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

fn user_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::UserNotFound, "User not found")
}

#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", responses((status = 200, body = UserDto)), security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, caller: AuthUser) -> ApiResult<Json<UserDto>> {
    let user = state.use_cases.accounts.user(caller.id).await?;
    // A valid token for a user that does not exist: treat it as a bad token.
    let user =
        user.ok_or_else(|| ApiError::unauthorized(ErrorCode::InvalidToken, "Unknown user"))?;
    Ok(Json(UserDto::from(&user)))
}

#[utoipa::path(post, path = "/api/v1/users/me/password", tag = "users", request_body = ChangePasswordRequest,
    description = "Changes the caller's password and ends every other session of theirs (their access \
                   tokens are refused and their WebSockets closed at once); this session goes on.",
    responses((status = 204, description = "Changed"),
              (status = 403, description = "invalid_credentials: the current password is wrong", body = harmony_protocol::errors::Problem)),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    ClientAddr(from): ClientAddr,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let wrong = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InvalidCredentials,
            "The current password is wrong",
        )
    };
    let new = Password::parse(&body.new_password)
        .map_err(|e| ApiError::from(ValidationError::new("new_password", e.reason)))?;
    let current = Password::parse(&body.current_password).map_err(|_| wrong())?;
    let ended = match state
        .use_cases
        .accounts
        .change_password(caller.id, caller.session, current, new, from)
        .await
    {
        Err(AuthError::InvalidCredentials) => return Err(wrong()),
        other => other?,
    };
    tracing::info!(user = %caller.id, sessions_ended = ended, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(operation_id = "get_user", get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = harmony_protocol::errors::Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<UserDto>> {
    let id: UserId = path_id(&id, user_not_found)?;
    let user = state
        .use_cases
        .accounts
        .user(id)
        .await?
        .ok_or_else(user_not_found)?;
    Ok(Json(UserDto::from(&user)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A username prefix.
    search: String,
    /// At most this many (1..50, default 20).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<u32>,
}

#[utoipa::path(operation_id = "search_users", get, path = "/api/v1/users", tag = "users", params(SearchQuery),
    responses((status = 200, body = [UserDto])), security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    _caller: AuthUser,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Vec<UserDto>>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ValidationError::new("limit", "must be 1 to 50").into());
    }
    let users = state
        .use_cases
        .accounts
        .search(&query.search, limit)
        .await?;
    Ok(Json(users.iter().map(UserDto::from).collect()))
}
