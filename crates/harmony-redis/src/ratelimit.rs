//! Token-bucket rate limits in Redis, one script per check, shared by every api node. While
//! Redis cannot be reached, each node limits with buckets of its own: per node rather than per
//! cluster, but never not at all.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::ports::{RateLimiter, RateRule};
use harmony_core::ratelimit::InProcessRateLimiter;
use redis::aio::ConnectionManager;
use redis::Script;

use crate::Keys;

/// KEYS: bucket. ARGV: burst, per second, now (ms). Returns 0 when allowed, else ms to wait.
const TAKE: &str = r#"
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"#;

pub struct RedisRateLimiter {
    conn: ConnectionManager,
    keys: Keys,
    script: Script,
    /// Used while Redis is away.
    fallback: InProcessRateLimiter,
    /// After a failure, Redis is left alone until then: each try would cost the caller a
    /// reconnection attempt (about 1.5 s), and a send or login must not wait on a cache.
    resting_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long the limiter keeps to its own buckets after Redis failed once.
const REST: Duration = Duration::from_secs(5);

impl RedisRateLimiter {
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            script: Script::new(TAKE),
            fallback: InProcessRateLimiter::default(),
            resting_until: std::sync::Mutex::new(None),
        }
    }
}

impl RedisRateLimiter {
    fn rest(&self) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
        self.resting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    /// When Redis cannot be reached, this node's own buckets decide: limits must neither take
    /// the service down with Redis nor vanish with it. The failure is logged.
    async fn check(&self, key: &str, rule: RateRule) -> Result<(), Duration> {
        if self.rest().is_some_and(|t| std::time::Instant::now() < t) {
            return self.fallback.take(key, rule);
        }
        let mut conn = self.conn.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let wait: Result<u64, _> = self
            .script
            .key(self.keys.rate(key))
            .arg(rule.burst)
            .arg(rule.per_second)
            .arg(now)
            .invoke_async(&mut conn)
            .await;
        match wait {
            Ok(0) => Ok(()),
            Ok(ms) => Err(Duration::from_millis(ms)),
            Err(e) => {
                tracing::warn!(error = %e, "Redis rate limiter unreachable; limiting per node");
                *self.rest() = Some(std::time::Instant::now() + REST);
                self.fallback.take(key, rule)
            }
        }
    }
}
