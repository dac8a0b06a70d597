//! Access tokens are HS256 JWTs with `sub`, `sid` (the session: its refresh-token family),
//! `iat`, `exp` and `typ: "access"` all required and the algorithm pinned, so `alg: none`, a token
//! of another type or one that names no session is refused. Refresh tokens are 256
//! random bits, base64url; only their SHA-256 is stored.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use harmony_core::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const ACCESS_TYP: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: uuid::Uuid,
    iat: i64,
    exp: i64,
    typ: String,
}

/// The signing key and the access tokens' lifetime.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // `iat` and `typ` are required by `Claims` itself: a token without them does not decode.
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    pub fn issue(&self, user: UserId, session: uuid::Uuid) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            sid: session,
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            typ: ACCESS_TYP.into(),
        };
        // HS256 signing of a small struct does not fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// What a valid access token says; `None` for anything else. Whether its session was
    /// ended is the caller's check.
    pub fn verify(&self, token: &str) -> Option<Access> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        if data.claims.typ != ACCESS_TYP {
            return None;
        }
        Some(Access {
            user: data.claims.sub.parse().ok()?,
            session: data.claims.sid,
            expires_at: data.claims.exp,
        })
    }
}

/// A verified access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub user: UserId,
    /// The session (refresh-token family) it was issued for.
    pub session: uuid::Uuid,
    /// When it expires, Unix seconds.
    pub expires_at: i64,
}

/// A freshly minted refresh token: the text the client keeps and the hash the store keeps.
pub struct RefreshToken {
    pub text: String,
    pub hash: [u8; 32],
}

impl RefreshToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let text = URL_SAFE_NO_PAD.encode(bytes);
        let hash = Self::hash_of(&text);
        Self { text, hash }
    }

    pub fn hash_of(text: &str) -> [u8; 32] {
        Sha256::digest(text.as_bytes()).into()
    }
}

/// 256 random bits, base64url: for CSRF tokens and session ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(900),
        )
    }

    fn forge(header: &str, claims: serde_json::Value, signature: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{h}.{c}.{signature}")
    }

    #[test]
    fn issued_tokens_verify() {
        let user = UserId::new();
        let session = uuid::Uuid::new_v4();
        let access = keys().verify(&keys().issue(user, session)).expect("valid");
        assert_eq!((access.user, access.session), (user, session));
    }

    #[test]
    fn alg_none_and_other_keys_are_refused() {
        let user = UserId::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let sid = uuid::Uuid::new_v4();
        let claims = serde_json::json!({"sub": user.to_string(), "sid": sid, "iat": now, "exp": now + 60, "typ": "access"});
        assert_eq!(
            keys().verify(&forge(r#"{"alg":"none","typ":"JWT"}"#, claims, "")),
            None
        );
        let other = TokenKeys::new(
            b"another-key-another-key-another!!",
            Duration::from_secs(900),
        );
        assert_eq!(keys().verify(&other.issue(user, sid)), None);
    }

    #[test]
    fn expired_tokens_and_wrong_types_are_refused() {
        let user = UserId::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let k = keys();
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &k.encoding)
                .expect("signs")
        };
        let sid = uuid::Uuid::new_v4();
        let expired = sign(
            serde_json::json!({"sub": user.to_string(), "sid": sid, "iat": now - 3600, "exp": now - 600, "typ": "access"}),
        );
        assert_eq!(k.verify(&expired), None);
        let refresh_typ = sign(
            serde_json::json!({"sub": user.to_string(), "sid": sid, "iat": now, "exp": now + 60, "typ": "refresh"}),
        );
        assert_eq!(k.verify(&refresh_typ), None);
        let no_iat = sign(
            serde_json::json!({"sub": user.to_string(), "sid": sid, "exp": now + 60, "typ": "access"}),
        );
        assert_eq!(k.verify(&no_iat), None);
        let no_session = sign(
            serde_json::json!({"sub": user.to_string(), "iat": now, "exp": now + 60, "typ": "access"}),
        );
        assert_eq!(k.verify(&no_session), None, "a token from before sessions");
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_ne!(a.text, b.text);
        assert_eq!(a.text.len(), 43);
        assert_eq!(RefreshToken::hash_of(&a.text), a.hash);
    }
}
