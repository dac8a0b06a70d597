//! Harmony's HTTP edge (axum): the REST API of contract v1, authentication, and the WebSocket
//! gateway. HTTP exists only in this crate.
//!
//! In the data flow it stands first and last: requests are parsed here into the core's types and
//! handed to the use cases (which append to the log and write state); the gateway's [`Hub`]
//! receives what the fan-out and the projector publish and pushes it to live sessions.

pub mod auth;
pub mod client;
mod csp;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod metrics;
pub mod openapi;
pub mod routes;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use harmony_core::usecases::UseCases;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

pub use auth::{CookieSettings, TokenKeys};
pub use gateway::{Hub, Keepalive, PresenceTask, PresenceTiming, PresenceTracker};
pub use metrics::Metrics;

use crate::error::ApiError;
use crate::metrics::HttpLabels;

/// Answers whether the process's stores are reachable, for `/readyz`.
pub type ReadyCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Limits of the HTTP edge.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a request may take, reading its body included; past it the answer is 503.
    pub request_timeout: Duration,
    /// Whether `/metrics` is served here (false: on a listener of its own, `metrics_router`).
    pub metrics: bool,
}

/// Limits of the WebSocket gateway.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// Frames a session may have queued before it is closed with 4008.
    pub session_queue: usize,
    /// Whether this process runs the gateway role (serves `/api/v1/ws`).
    pub enabled: bool,
    /// WebSockets one user may have open on this process; more are refused with 429.
    pub max_sessions_per_user: usize,
    /// Server pings and the silence after which a session is closed.
    pub keepalive: gateway::Keepalive,
}

/// Everything a handler may use: one shared [`AppParts`]. Every request clones the state, so a
/// clone is one reference count (the parts hold dozens of `Arc`s and the token validator's
/// sets, which would be copied per request otherwise).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct AppParts {
    pub use_cases: UseCases,
    pub tokens: TokenKeys,
    pub refresh_ttl: Duration,
    pub cookies: CookieSettings,
    pub hub: Arc<Hub>,
    /// Where sessions tell this node's presence task that they came, left or changed status.
    pub presence: gateway::PresenceTracker,
    pub metrics: Arc<Metrics>,
    pub gateway: GatewaySettings,
    pub ready: ReadyCheck,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: client::TrustedProxies,
    /// Cancelled when the process stops: sessions close with "reconnect and resume".
    pub shutdown: CancellationToken,
    /// The parent of every session's end: cancelled once the sessions were drained (closed a
    /// few at a time over `gateway.drain_secs`, `Hub::drain`) after `shutdown`.
    pub sessions_end: CancellationToken,
}

/// The whole HTTP surface: API, gateway, operations endpoints.
pub fn router(state: AppState, limits: &HttpLimits) -> Router {
    use routes::{auth as a, chats as c, friends as f, messages as m, system as s, users as u};
    let api = Router::new()
        .route("/auth/register", post(a::register))
        .route("/auth/login", post(a::login))
        .route("/auth/refresh", post(a::refresh))
        .route("/auth/logout", post(a::logout))
        .route("/users/me", get(u::me))
        .route("/users/me/password", post(u::change_password))
        .route("/users/{id}", get(u::get))
        .route("/users", get(u::search))
        .route(
            "/friends/requests",
            post(f::send_request).get(f::list_requests),
        )
        .route("/friends/requests/{id}/accept", post(f::accept))
        .route("/friends/requests/{id}/decline", post(f::decline))
        .route("/friends", get(f::list))
        .route("/friends/{user_id}", axum::routing::delete(f::remove))
        .route("/chats", post(c::create).get(c::list))
        .route(
            "/chats/{id}",
            get(c::get).patch(c::rename).delete(c::delete),
        )
        .route("/chats/{id}/members", get(c::members).post(c::add_member))
        .route(
            "/chats/{id}/members/{user_id}",
            axum::routing::delete(c::remove_member),
        )
        .route("/chats/{id}/messages", post(m::send).get(m::history))
        .route(
            "/chats/{id}/messages/{message_id}",
            axum::routing::patch(routes::changes::edit).delete(routes::changes::delete),
        )
        .route(
            "/chats/{id}/messages/{message_id}/reactions/{emoji}",
            axum::routing::put(routes::changes::react).delete(routes::changes::unreact),
        )
        .route("/chats/{id}/read", post(m::mark_read))
        .route("/presence", get(routes::presence::get))
        .route("/ws", get(routes::ws::upgrade))
        .route("/openapi.json", get(s::openapi))
        .method_not_allowed_fallback(s::method_not_allowed);
    let site = Router::new()
        .nest("/api/v1", api)
        .route("/", get(routes::web::index))
        .route("/docs", get(s::docs))
        .route("/healthz", get(s::healthz))
        .route("/readyz", get(s::readyz));
    let site = if limits.metrics {
        site.route("/metrics", get(s::metrics))
    } else {
        site
    };
    let timeout = limits.request_timeout;
    site.fallback(routes::web::fallback)
        .method_not_allowed_fallback(s::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            deadline(timeout, request, next)
        }))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::internal().into_response()
        }))
        .with_state(state)
}

/// Only `/metrics`, for a listener of its own (`server.metrics_listen`): kept off the public
/// address, since it tells anyone how busy the server is.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(routes::system::metrics))
        .with_state(state)
}

/// Ends a request that takes longer than `timeout` (a body trickled in, a store that hangs)
/// with 503 and Retry-After. An upgraded WebSocket is not a request any more: its handshake
/// answers at once.
async fn deadline(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            harmony_protocol::errors::ErrorCode::Unavailable,
            "The request took too long",
        )
        .with_retry_after(Duration::from_secs(1))
        .into_response(),
    }
}

/// Headers on every answer: no MIME sniffing, no referrer leaving the origin, never framed
/// (clickjacking), no plugins, no `<base>` or form posts to another origin. HTML pages set their
/// own, stricter policy first (`csp::for_page`).
fn protect(headers: &mut axum::http::HeaderMap) {
    use axum::http::{header, HeaderValue};
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, csp::FOR_DATA),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
}

/// The method as a metric label: the standard ones by name, anything else as `other`, so a
/// client inventing methods cannot grow the metrics without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    [
        M::GET,
        M::POST,
        M::PUT,
        M::PATCH,
        M::DELETE,
        M::HEAD,
        M::OPTIONS,
    ]
    .into_iter()
    .zip(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    .find_map(|(known, name)| (known == method).then_some(name))
    .unwrap_or("other")
}

/// Records each request in the metrics and the log, by route pattern.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    protect(response.headers_mut());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    tracing::debug!(%method, %route, status, ms = elapsed.as_secs_f64() * 1000.0, "request");
    state.metrics.observe_http(
        HttpLabels {
            method,
            route,
            status,
        },
        elapsed,
    );
    response
}
