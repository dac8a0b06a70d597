//! Who is calling: the `AuthUser` extractor. API clients send `Authorization: Bearer <jwt>`. The
//! web UI never sees a token: the server sets HttpOnly, SameSite=Strict cookies (with the
//! `__Host-` prefix and `Secure` when served over HTTPS) and a CSRF token that the UI echoes in
//! `X-CSRF-Token` on every unsafe request (double submit).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use harmony_core::UserId;
use harmony_protocol::errors::ErrorCode;

use super::tokens::Access;
use crate::error::ApiError;
use crate::AppState;

/// The header the web UI sends to ask for a cookie session instead of tokens in the body.
pub const SESSION_MODE_HEADER: &str = "x-session-mode";
/// The header that must echo the CSRF cookie on cookie-authenticated unsafe requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Clone, Debug)]
pub struct CookieSettings {
    /// Served over HTTPS: cookies get `Secure` and the `__Host-` prefix.
    pub secure: bool,
    /// The origin the web UI is served from, when it differs from the Host header (a proxy).
    pub public_origin: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieName {
    Access,
    Refresh,
    Csrf,
}

impl CookieSettings {
    pub fn name(&self, cookie: CookieName) -> &'static str {
        match (cookie, self.secure) {
            (CookieName::Access, true) => "__Host-harmony_access",
            (CookieName::Access, false) => "harmony_access",
            (CookieName::Refresh, true) => "__Host-harmony_refresh",
            (CookieName::Refresh, false) => "harmony_refresh",
            (CookieName::Csrf, true) => "__Host-harmony_csrf",
            (CookieName::Csrf, false) => "harmony_csrf",
        }
    }

    /// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
    pub fn set_cookie(&self, cookie: CookieName, value: &str, max_age: u64) -> Option<HeaderValue> {
        let http_only = if cookie == CookieName::Csrf {
            ""
        } else {
            "; HttpOnly"
        };
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!(
            "{}={value}; Path=/; Max-Age={max_age}; SameSite=Strict{http_only}{secure}",
            self.name(cookie)
        );
        HeaderValue::from_str(&text).ok()
    }

    pub fn read<'a>(&self, headers: &'a HeaderMap, cookie: CookieName) -> Option<&'a str> {
        cookie_value(headers, self.name(cookie))
    }

    /// True when the request's `Origin` is this server's own: the configured public origin, or
    /// the scheme and `Host` the request came to.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if let Some(public) = &self.public_origin {
            return origin == public.trim_end_matches('/');
        }
        let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let scheme = if self.secure { "https" } else { "http" };
        origin == format!("{scheme}://{host}")
    }
}

/// The value of the named cookie in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Checks the double-submit CSRF token: the header must equal the cookie.
pub fn csrf_ok(settings: &CookieSettings, headers: &HeaderMap) -> bool {
    let cookie = settings.read(headers, CookieName::Csrf);
    let header = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    matches!((cookie, header), (Some(c), Some(h)) if !c.is_empty() && constant_time_eq(c, h))
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The authenticated caller.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser {
    pub id: UserId,
    /// The session (refresh-token family) the access token belongs to.
    pub session: uuid::Uuid,
    /// Authenticated by cookie (the web UI) rather than a bearer token.
    pub via_cookie: bool,
    /// When the access token expires (Unix seconds): a WebSocket session ends then.
    pub expires_at: i64,
}

impl AuthUser {
    /// Authenticates from headers: a bearer token wins; otherwise the access cookie, with the
    /// CSRF check for unsafe methods.
    pub fn from_headers(
        state: &AppState,
        headers: &HeaderMap,
        method: &Method,
    ) -> Result<Self, ApiError> {
        if let Some(token) = bearer(headers) {
            let access = verified(state, token)?;
            return Ok(Self {
                id: access.user,
                session: access.session,
                via_cookie: false,
                expires_at: access.expires_at,
            });
        }
        let Some(token) = state.cookies.read(headers, CookieName::Access) else {
            return Err(ApiError::unauthorized(
                ErrorCode::Unauthorized,
                "Sign in: send a bearer token or a session cookie",
            ));
        };
        let access = verified(state, token)?;
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !csrf_ok(&state.cookies, headers) {
            return Err(csrf_failed());
        }
        Ok(Self {
            id: access.user,
            session: access.session,
            via_cookie: true,
            expires_at: access.expires_at,
        })
    }
}

/// A valid access token of a session that was not ended.
fn verified(state: &AppState, token: &str) -> Result<Access, ApiError> {
    let access = state.tokens.verify(token).ok_or_else(invalid_token)?;
    if state.use_cases.accounts.is_revoked(access.session) {
        return Err(ApiError::unauthorized(
            ErrorCode::InvalidToken,
            "This session has ended: sign in again",
        ));
    }
    Ok(access)
}

pub fn csrf_failed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        ErrorCode::CsrfFailed,
        "Missing or wrong X-CSRF-Token header",
    )
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized(
        ErrorCode::InvalidToken,
        "The access token is invalid or expired",
    )
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::from_headers(state, &parts.headers, &parts.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; harmony_access=tok; b=2"),
        );
        assert_eq!(cookie_value(&headers, "harmony_access"), Some("tok"));
        assert_eq!(cookie_value(&headers, "missing"), None);
    }

    #[test]
    fn secure_cookies_use_the_host_prefix() {
        let s = CookieSettings {
            secure: true,
            public_origin: None,
        };
        let v = s
            .set_cookie(CookieName::Access, "x", 60)
            .expect("valid header");
        let v = v.to_str().expect("ascii");
        assert!(v.starts_with("__Host-harmony_access=x; Path=/;"), "{v}");
        assert!(v.contains("HttpOnly") && v.contains("Secure") && v.contains("SameSite=Strict"));
        let csrf = s
            .set_cookie(CookieName::Csrf, "y", 60)
            .expect("valid header");
        assert!(!csrf.to_str().expect("ascii").contains("HttpOnly"));
    }

    #[test]
    fn origin_must_match_host_or_public_origin() {
        let s = CookieSettings {
            secure: false,
            public_origin: None,
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!s.origin_allowed(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(s.origin_allowed(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!s.origin_allowed(&headers));
        let p = CookieSettings {
            secure: true,
            public_origin: Some("https://chat.example".into()),
        };
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://chat.example"),
        );
        assert!(p.origin_allowed(&headers));
    }
}
