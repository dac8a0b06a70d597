//! Authentication at the edge: password hashing, access tokens (JWT), refresh-token bytes, and
//! the two ways a request proves who it is: a bearer token, or the web UI's cookies with a CSRF
//! token.

pub mod cookies;
pub mod password;
pub mod revocations;
pub mod tokens;

pub use cookies::{AuthUser, CookieSettings};
pub use password::Argon2Hasher;
pub use tokens::{RefreshToken, TokenKeys};
