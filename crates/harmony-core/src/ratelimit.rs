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

/// Buckets kept in this process: right for one node; a cluster shares them in Redis.
#[derive(Default)]
pub struct InProcessRateLimiter {
    buckets: Mutex<HashMap<String, (TokenBucket, RateRule)>>,
}

/// Past this many keys, full buckets (which carry no information) are dropped.
const PRUNE_AT: usize = 10_000;

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn check(&self, key: &str, rule: RateRule) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, (bucket, rule)| !bucket.is_full(*rule, now));
        }
        let (bucket, stored_rule) = buckets
            .entry(key.to_owned())
            .or_insert_with(|| (TokenBucket::full(rule, now), rule));
        *stored_rule = rule;
        bucket.take(rule, now)
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
