//! Extractors whose failures are problem+json: JSON bodies (content type, size, depth, shape),
//! query strings and path ids.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use harmony_protocol::errors::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Deepest JSON nesting a request body may have; contract bodies need 3.
pub const MAX_JSON_DEPTH: usize = 16;

/// A JSON request body. Refuses a wrong content type (415), an oversized body (413), nesting
/// deeper than [`MAX_JSON_DEPTH`] and anything that does not fit `T` (400).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "Send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    "The request body is too large",
                )
            } else {
                malformed(e.body_text())
            }
        })?;
        parse_json(&bytes).map(Self)
    }
}

/// Parses a JSON document after checking its nesting depth.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if json_depth(bytes) > MAX_JSON_DEPTH {
        return Err(malformed("JSON nested too deeply"));
    }
    serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))
}

fn malformed(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::MalformedRequest,
        "The request is malformed",
    )
    .with_detail(detail)
}

/// The deepest nesting of arrays and objects, ignoring brackets inside strings. Linear and
/// allocation-free, so it is safe to run before parsing hostile input.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A query string; a bad one is a 400 problem.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|e| malformed(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_outside_strings() {
        assert_eq!(json_depth(br#"{"a":1}"#), 1);
        assert_eq!(json_depth(br#"{"a":[{"b":[]}]}"#), 4);
        assert_eq!(json_depth(br#"{"a":"[[[[{{{{\"]]"}"#), 1);
        assert_eq!(json_depth(b"[[[[[[[[[[[[[[[[[[[[[["), 22);
    }

    #[test]
    fn deep_documents_are_refused_before_parsing() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let parsed = parse_json::<serde_json::Value>(deep.as_bytes());
        assert_eq!(
            parsed.err().map(|e| e.code()),
            Some(ErrorCode::MalformedRequest)
        );
    }
}
