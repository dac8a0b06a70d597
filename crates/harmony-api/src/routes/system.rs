//! Operations: health, readiness, metrics, the OpenAPI document and its browsable page, the
//! start page, and problem+json answers for unknown routes.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use harmony_protocol::errors::ErrorCode;

use crate::error::ApiError;
use crate::AppState;

/// Alive: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the stores answer and the process is not shutting down.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.shutdown.is_cancelled() && (state.ready)().await {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response()
}

pub async fn docs() -> impl axum::response::IntoResponse {
    const PAGE: &str = include_str!("docs.html");
    static CSP: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| crate::csp::for_page(PAGE));
    (
        [(axum::http::header::CONTENT_SECURITY_POLICY, CSP.as_str())],
        Html(PAGE),
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::NotFound,
        "Method not allowed on this route",
    )
}
