//! Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), run on the blocking pool so a
//! burst of logins never stalls the async workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use harmony_core::ports::{PasswordHasher, StoreError};
use harmony_core::values::Password;

fn argon2() -> Argon2<'static> {
    // OWASP: m = 19456 KiB, t = 2, p = 1. These constants are valid, so the fallback is unused.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes with Argon2id; verifies against a fixed dummy hash when the account does not exist,
/// so both paths cost the same. At most one hash per core runs at a time: each takes 19 MiB, so
/// a burst of logins queues instead of exhausting memory on the blocking pool.
pub struct Argon2Hasher {
    dummy_hash: String,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Argon2Hasher {
    pub fn new() -> Result<Self, StoreError> {
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon2()
            .hash_password(b"not-a-real-password", &salt)
            .map_err(|e| StoreError::Unavailable(format!("argon2: {e}")))?
            .to_string();
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Ok(Self {
            dummy_hash,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)),
        })
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Unavailable(format!("hashing permits: {e}")))
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<String, StoreError> {
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| StoreError::Unavailable(format!("argon2: {e}")))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("hashing task: {e}")))?
    }

    async fn verify(&self, password: Password, hash: Option<String>) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let Ok(permit) = self.permit().await else {
            return false;
        };
        let verified = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                argon2()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        known && verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = Argon2Hasher::new().expect("hasher");
        let password = Password::parse("correct horse").expect("valid");
        let hash = hasher.hash(password.clone()).await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher.verify(password.clone(), Some(hash.clone())).await);
        let wrong = Password::parse("battery staple").expect("valid");
        assert!(!hasher.verify(wrong, Some(hash)).await);
        assert!(!hasher.verify(password.clone(), None).await);
        assert!(!hasher.verify(password, Some("garbage".into())).await);
    }
}
