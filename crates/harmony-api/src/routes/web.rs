//! The web UI, embedded at build time: hashed assets with long caching, and `index.html` for
//! every other page path so deep links work. API paths never fall through to the UI.

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use harmony_protocol::errors::ErrorCode;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// `index.html` of the UI, or a page saying how to build it, with its CSP.
pub async fn index() -> Response {
    static PAGE: std::sync::LazyLock<(&'static [u8], String)> = std::sync::LazyLock::new(|| {
        let page = asset("/index.html").unwrap_or(include_str!("index.html").as_bytes());
        let csp = crate::csp::for_page(&String::from_utf8_lossy(page));
        (page, csp)
    });
    let (page, csp) = &*PAGE;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, csp.as_str()),
        ],
        *page,
    )
        .into_response()
}

/// Everything no route matched: UI assets, UI pages, or a problem+json 404.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let page_request = method == Method::GET || method == Method::HEAD;
    if !page_request || path.starts_with("/api/") {
        return ApiError::not_found(ErrorCode::NotFound, "No such route").into_response();
    }
    if let Some(bytes) = asset(path) {
        let cache = if path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, cache),
            ],
            bytes,
        )
            .into_response();
    }
    if path.starts_with("/assets/") || path.contains('.') {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    index().await
}
