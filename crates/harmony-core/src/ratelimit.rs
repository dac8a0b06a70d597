//! Token buckets: the pure arithmetic of rate limits, and an in-process limiter for one node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::ports::{RateLimiter, RateRule};

/// A bucket that holds up to `burst` tokens and refills continuously.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn full(rule: RateRule, now: Instant) -> Self {
        Self {
            tokens: f64::from(rule.burst),
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn take(&mut self, rule: RateRule, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rule.per_second).min(f64::from(rule.burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        if rule.per_second <= 0.0 {
            return Err(Duration::from_secs(3600));
        }
        Err(Duration::from_secs_f64(
            (1.0 - self.tokens) / rule.per_second,
        ))
    }

    fn is_full(&self, rule: RateRule, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * rule.per_second >= f64::from(rule.burst)
    }
}

/// Buckets kept in this process: right for one node; a cluster shares them in Redis (and falls
/// back to these while Redis is away).
pub struct InProcessRateLimiter {
    buckets: Mutex<Buckets>,
}

struct Buckets {
    map: HashMap<String, (TokenBucket, RateRule)>,
    /// The size at which full buckets (which carry no information) are next dropped: twice
    /// what the last pruning kept, so pruning costs O(1) per check however many keys are live.
    prune_at: usize,
}

/// The fewest keys at which pruning starts.
const PRUNE_AT: usize = 10_000;

impl Default for InProcessRateLimiter {
    fn default() -> Self {
        Self {
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        }
    }
}

impl InProcessRateLimiter {
    /// Takes a token from `key`'s bucket (synchronous: nothing here waits).
    pub fn take(&self, key: &str, rule: RateRule) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.map.len() >= buckets.prune_at {
            buckets
                .map
                .retain(|_, (bucket, rule)| !bucket.is_full(*rule, now));
            buckets.prune_at = (buckets.map.len() * 2).max(PRUNE_AT);
        }
        let (bucket, stored_rule) = buckets
            .map
            .entry(key.to_owned())
            .or_insert_with(|| (TokenBucket::full(rule, now), rule));
        *stored_rule = rule;
        bucket.take(rule, now)
    }

    /// Keys held now, for tests.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn check(&self, key: &str, rule: RateRule) -> Result<(), Duration> {
        self.take(key, rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: RateRule = RateRule {
        burst: 3,
        per_second: 2.0,
    };

    #[test]
    fn a_burst_passes_then_waits_for_refill() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(RULE, start);
        for _ in 0..3 {
            assert!(bucket.take(RULE, start).is_ok());
        }
        let wait = bucket.take(RULE, start).err();
        assert_eq!(wait, Some(Duration::from_millis(500)));
        assert!(bucket
            .take(RULE, start + Duration::from_millis(499))
            .is_err());
        assert!(bucket
            .take(RULE, start + Duration::from_millis(1000))
            .is_ok());
    }

    #[test]
    fn refill_never_exceeds_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(RULE, start);
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(bucket.take(RULE, later).is_ok());
        }
        assert!(bucket.take(RULE, later).is_err());
    }

    #[test]
    fn many_live_keys_are_pruned_rarely_and_full_ones_dropped() {
        let limiter = InProcessRateLimiter::default();
        let slow = RateRule {
            burst: 2,
            per_second: 0.001,
        };
        // 15,000 keys that each hold information (a token taken, refill takes 1,000 s).
        for i in 0..15_000 {
            assert!(limiter.take(&format!("live{i}"), slow).is_ok());
        }
        assert_eq!(limiter.len(), 15_000, "nothing full to drop");
        let prune_at = limiter
            .buckets
            .lock()
            .map(|b| b.prune_at)
            .unwrap_or_default();
        assert_eq!(
            prune_at, 20_000,
            "the next pruning waits for twice what was kept"
        );
        assert!(limiter.take("live0", slow).is_ok(), "burst of 2");
        assert!(limiter.take("live0", slow).is_err(), "kept its state");
    }

    #[tokio::test]
    async fn keys_are_limited_independently() {
        let limiter = InProcessRateLimiter::default();
        for _ in 0..3 {
            assert!(limiter.check("a", RULE).await.is_ok());
        }
        assert!(limiter.check("a", RULE).await.is_err());
        assert!(limiter.check("b", RULE).await.is_ok());
    }
}
