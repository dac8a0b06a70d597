//! Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), run on the blocking pool so a
//! burst of logins never stalls the async workers.

use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use harmony_core::ports::{PasswordHasher, StoreError};
use harmony_core::values::Password;

/// OWASP: m = 19456 KiB, t = 2, p = 1.
fn params() -> Params {
    // These constants are valid, so the fallback is unused.
    Params::new(19_456, 2, 1, Some(32)).unwrap_or_default()
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("argon2: {e}"))
}

/// Argon2's working memory, reused: one buffer per hash that may run at once. Allocating 19 MiB
/// per hash instead leaves the freed buffers in the allocator's per-thread arenas (measured:
/// 620 MiB resident after 60 registrations), because glibc raises its mmap threshold past them.
#[derive(Default)]
struct Buffers(Mutex<Vec<Vec<Block>>>);

impl Buffers {
    fn with<T>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let taken = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut buffer = taken.unwrap_or_default();
        buffer.resize(blocks, Block::default());
        let result = f(&mut buffer);
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(buffer);
        result
    }
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
fn hash_phc(buffers: &Buffers, password: &[u8]) -> Result<String, StoreError> {
    let params = params();
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt).map_err(unavailable)?;
    let mut out = [0u8; 32];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    buffers
        .with(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password, raw_salt, &mut out, blocks)
        })
        .map_err(unavailable)?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(unavailable)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(unavailable)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash` (with the parameters it was made with).
fn verify_phc(buffers: &Buffers, password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let mut raw_salt = [0u8; 64];
    let Ok(raw_salt) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let hashed = buffers.with(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, raw_salt, &mut out, blocks)
    });
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|actual| actual == expected)
}

/// Hashes with Argon2id; verifies against a fixed dummy hash when the account does not exist,
/// so both paths cost the same. At most one hash per core runs at a time, each in a reused
/// 19 MiB buffer, and at most `queue` more wait: past that the work is shed (`Busy`, answered
/// 503 with Retry-After), so a flood of logins costs bounded memory and latency.
pub struct Argon2Hasher {
    dummy_hash: String,
    permits: Arc<tokio::sync::Semaphore>,
    buffers: Arc<Buffers>,
    waiting: std::sync::atomic::AtomicUsize,
    queue: usize,
}

/// What a shed request is told to wait.
const SHED_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Argon2Hasher {
    pub fn new(queue: usize) -> Result<Self, StoreError> {
        let buffers = Arc::new(Buffers::default());
        let dummy_hash = hash_phc(&buffers, b"not-a-real-password")?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Ok(Self {
            dummy_hash,
            permits: Arc::new(tokio::sync::Semaphore::new(cores)),
            buffers,
            waiting: std::sync::atomic::AtomicUsize::new(0),
            queue,
        })
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::Busy(SHED_RETRY));
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit.map_err(|e| StoreError::Unavailable(format!("hashing permits: {e}")))
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<String, StoreError> {
        let permit = self.permit().await?;
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_phc(&buffers, password.expose().as_bytes())
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("hashing task: {e}")))?
    }

    async fn verify(&self, password: Password, hash: Option<String>) -> Result<bool, StoreError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let permit = self.permit().await?;
        let buffers = self.buffers.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_phc(&buffers, password.expose().as_bytes(), &hash)
        })
        .await
        .unwrap_or(false);
        Ok(known && verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = Argon2Hasher::new(8).expect("hasher");
        let password = Password::parse("correct horse").expect("valid");
        let hash = hasher.hash(password.clone()).await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher
            .verify(password.clone(), Some(hash.clone()))
            .await
            .expect("verify"));
        let wrong = Password::parse("battery staple").expect("valid");
        assert!(!hasher.verify(wrong, Some(hash)).await.expect("verify"));
        assert!(!hasher.verify(password.clone(), None).await.expect("verify"));
        assert!(!hasher
            .verify(password, Some("garbage".into()))
            .await
            .expect("verify"));
    }

    #[tokio::test]
    async fn hashes_made_by_the_library_path_still_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"stored before", &salt)
            .expect("hash")
            .to_string();
        let hasher = Argon2Hasher::new(8).expect("hasher");
        let right = Password::parse("stored before").expect("valid");
        assert!(hasher
            .verify(right, Some(stored.clone()))
            .await
            .expect("verify"));
        let wrong = Password::parse("stored after").expect("valid");
        assert!(!hasher.verify(wrong, Some(stored)).await.expect("verify"));
    }
}
