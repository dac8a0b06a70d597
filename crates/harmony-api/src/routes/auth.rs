//! `/auth`: register, login, refresh, logout. API clients get tokens in the body; the web UI asks
//! for a cookie session (`X-Session-Mode: cookie`) and gets HttpOnly cookies instead.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use harmony_core::model::User;
use harmony_core::values::{DisplayName, Password, Username};
use harmony_protocol::dto::{AuthResponse, LoginRequest, RefreshRequest, RegisterRequest, UserDto};

use super::Fields;
use crate::auth::cookies::{csrf_failed, csrf_ok, CookieName, SESSION_MODE_HEADER};
use crate::auth::tokens::random_token;
use crate::auth::RefreshToken;
use crate::client::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, ApiJson};
use crate::AppState;

fn wants_cookies(headers: &HeaderMap) -> bool {
    headers
        .get(SESSION_MODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cookie"))
}

/// How the caller wants its session: tokens in the body, or cookies. A cookie session that is
/// being refreshed keeps its CSRF token, so other tabs' copies stay valid.
enum Mode {
    Tokens,
    Cookies { csrf: Option<String> },
}

/// Answers with a new session: tokens in the body, or cookies (and no tokens) for the web UI.
async fn session_response(
    state: &AppState,
    user: &User,
    session: uuid::Uuid,
    refresh: RefreshToken,
    status: StatusCode,
    mode: Mode,
) -> Response {
    let access = state.tokens.issue(user.id, session);
    let expires_in = state.tokens.access_ttl.as_secs();
    let Mode::Cookies { csrf } = mode else {
        let body = AuthResponse {
            user: UserDto::from(user),
            access_token: Some(access),
            refresh_token: Some(refresh.text),
            expires_in,
        };
        return (status, axum::Json(body)).into_response();
    };
    let body = AuthResponse {
        user: UserDto::from(user),
        access_token: None,
        refresh_token: None,
        expires_in,
    };
    let mut response = (status, axum::Json(body)).into_response();
    let refresh_ttl = state.refresh_ttl.as_secs();
    let cookies = [
        (CookieName::Access, access, expires_in),
        (CookieName::Refresh, refresh.text, refresh_ttl),
        (
            CookieName::Csrf,
            csrf.unwrap_or_else(random_token),
            refresh_ttl,
        ),
    ];
    for (name, value, max_age) in cookies {
        if let Some(v) = state.cookies.set_cookie(name, &value, max_age) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

async fn start_session(
    state: &AppState,
    user: &User,
    status: StatusCode,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let refresh = RefreshToken::generate();
    let session = state
        .use_cases
        .accounts
        .start_session(user.id, refresh.hash)
        .await?;
    let mode = if wants_cookies(headers) {
        Mode::Cookies { csrf: None }
    } else {
        Mode::Tokens
    };
    Ok(session_response(state, user, session, refresh, status, mode).await)
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse), (status = 409, description = "username_taken", body = harmony_protocol::errors::Problem)))]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    let mut fields = Fields::default();
    let username = fields.take(Username::parse(&body.username));
    let password = fields.take(Password::parse(&body.password));
    let display_name = match body.display_name.as_deref() {
        Some(raw) => fields.take(DisplayName::parse(raw)).map(Some),
        None => Some(None),
    };
    fields.finish()?;
    let (Some(username), Some(password), Some(display_name)) = (username, password, display_name)
    else {
        return Err(ApiError::internal());
    };
    let user = state
        .use_cases
        .accounts
        .register(username, password, display_name, from)
        .await?;
    tracing::info!(user = %user.id, username = %user.username, "registered");
    start_session(&state, &user, StatusCode::CREATED, &headers).await
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401, description = "invalid_credentials", body = harmony_protocol::errors::Problem),
              (status = 429, description = "rate_limited", body = harmony_protocol::errors::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    // A malformed name or password cannot match an account: same answer as a wrong one.
    let invalid = || {
        ApiError::unauthorized(
            harmony_protocol::errors::ErrorCode::InvalidCredentials,
            "Wrong username or password",
        )
    };
    let username = Username::parse(&body.username).map_err(|_| invalid())?;
    let password = Password::parse(&body.password).map_err(|_| invalid())?;
    let user = state
        .use_cases
        .accounts
        .login(username, password, from)
        .await?;
    start_session(&state, &user, StatusCode::OK, &headers).await
}

/// The refresh token a refresh or logout names: in the body (API clients) or, with the CSRF
/// check, in the cookie (web UI). The flag says which.
fn presented_refresh(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<(String, bool)> {
    let request: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        parse_json(body)?
    };
    if let Some(token) = request.refresh_token {
        return Ok((token, false));
    }
    let Some(cookie) = state.cookies.read(headers, CookieName::Refresh) else {
        return Err(ApiError::unauthorized(
            harmony_protocol::errors::ErrorCode::InvalidRefreshToken,
            "Send refresh_token in the body or the session cookie",
        ));
    };
    if !csrf_ok(&state.cookies, headers) {
        return Err(csrf_failed());
    }
    Ok((cookie.to_owned(), true))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = AuthResponse), (status = 401, description = "invalid_refresh_token or refresh_token_reused", body = harmony_protocol::errors::Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (presented, cookie_mode) = presented_refresh(&state, &headers, &body)?;
    let successor = RefreshToken::generate();
    let (user, session) = state
        .use_cases
        .accounts
        .refresh(RefreshToken::hash_of(&presented), successor.hash)
        .await?;
    let mode = if cookie_mode {
        let csrf = state
            .cookies
            .read(&headers, CookieName::Csrf)
            .map(str::to_owned);
        Mode::Cookies { csrf }
    } else {
        Mode::Tokens
    };
    Ok(session_response(&state, &user, session, successor, StatusCode::OK, mode).await)
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "The session is over")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (presented, cookie_mode) = presented_refresh(&state, &headers, &body)?;
    state
        .use_cases
        .accounts
        .logout(RefreshToken::hash_of(&presented))
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if cookie_mode {
        for name in [CookieName::Access, CookieName::Refresh, CookieName::Csrf] {
            if let Some(v) = state.cookies.set_cookie(name, "", 0) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    Ok(response)
}
