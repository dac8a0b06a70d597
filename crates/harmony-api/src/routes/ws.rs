//! `GET /api/v1/ws`: the WebSocket handshake. Authenticated by bearer header or the session
//! cookie; for a cookie, the `Origin` must be this server's own (cross-site WebSocket hijacking).

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use harmony_protocol::errors::ErrorCode;
use harmony_protocol::ws::MAX_CLIENT_FRAME_BYTES;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::gateway::session;
use crate::AppState;

#[utoipa::path(get, path = "/api/v1/ws", tag = "gateway",
    description = "Upgrades to a WebSocket speaking the frames of `ServerFrame` and `ClientFrame`.",
    responses((status = 101, description = "Switching protocols"), (status = 401, body = harmony_protocol::errors::Problem),
              (status = 403, description = "Foreign Origin for a cookie session", body = harmony_protocol::errors::Problem)),
    security(("bearer" = [])))]
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    if !state.gateway.enabled {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "This node does not run the gateway role; connect to a gateway node",
        ));
    }
    let caller = AuthUser::from_headers(&state, &headers, &Method::GET)?;
    if caller.via_cookie && !state.cookies.origin_allowed(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "Origin not allowed",
        ));
    }
    if state.hub.sessions_of_user(caller.id) >= state.gateway.max_sessions_per_user {
        return Err(ApiError::rate_limited(std::time::Duration::from_secs(10))
            .with_detail("Too many open WebSockets for this user on this node; close one first"));
    }
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            "Expected a WebSocket upgrade",
        )
        .with_detail(e.body_text())
    })?;
    let user = state
        .use_cases
        .accounts
        .user(caller.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized(ErrorCode::InvalidToken, "Unknown user"))?;
    // Small socket buffers: the default 128 KiB each way would cost 256 KiB per idle connection;
    // frames are small and the session's own queue absorbs bursts. Client frames are tiny
    // (`ping`, `resume`) and rare, so the read buffer starts at 256 bytes: it grows to a larger
    // frame's length, read 256 bytes per call (harmony-bench S1 at 10,000 connections: 4 KiB
    // -> 1 KiB took 14.4 -> 11.2 KB per connection; 1 KiB -> 256 bytes about 0.7 KB more).
    Ok(upgrade
        .read_buffer_size(256)
        .write_buffer_size(4 * 1024)
        .max_message_size(MAX_CLIENT_FRAME_BYTES)
        .max_frame_size(MAX_CLIENT_FRAME_BYTES)
        .on_upgrade(move |socket| session::run(socket, state, user, caller)))
}
