//! Refresh-token rotation policy, as pure logic: what to do with a presented token.
//!
//! Every refresh exchanges the token for a successor. The one just exchanged stays usable for a
//! short grace period (two tabs refreshing at once must not log each other out); presented after
//! that, it is a stolen copy being replayed, and the whole family is revoked.

use std::time::Duration;

use time::OffsetDateTime;

use crate::ports::RefreshRecord;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshDecision {
    /// The newest of its family: rotate it and issue a successor.
    Rotate,
    /// Rotated within the grace period: issue another successor, keep the family.
    WithinGrace,
    /// Rotated longer ago than the grace period: revoke the family.
    Reuse,
    /// Expired or revoked: refuse.
    Refuse,
}

pub fn decide(record: &RefreshRecord, now: OffsetDateTime, grace: Duration) -> RefreshDecision {
    if record.revoked || now >= record.expires_at {
        return RefreshDecision::Refuse;
    }
    match record.rotated_at {
        None => RefreshDecision::Rotate,
        Some(at) if now - at <= grace => RefreshDecision::WithinGrace,
        Some(_) => RefreshDecision::Reuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    fn record(rotated_secs_ago: Option<i64>, revoked: bool) -> (RefreshRecord, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        let record = RefreshRecord {
            hash: [7; 32],
            family: uuid::Uuid::new_v4(),
            user_id: UserId::new(),
            created_at: now - time::Duration::hours(1),
            expires_at: now + time::Duration::days(30),
            rotated_at: rotated_secs_ago.map(|s| now - time::Duration::seconds(s)),
            revoked,
        };
        (record, now)
    }

    const GRACE: Duration = Duration::from_secs(10);

    #[test]
    fn fresh_token_rotates() {
        let (r, now) = record(None, false);
        assert_eq!(decide(&r, now, GRACE), RefreshDecision::Rotate);
    }

    #[test]
    fn recently_rotated_token_is_within_grace() {
        let (r, now) = record(Some(3), false);
        assert_eq!(decide(&r, now, GRACE), RefreshDecision::WithinGrace);
    }

    #[test]
    fn token_rotated_long_ago_is_reuse() {
        let (r, now) = record(Some(11), false);
        assert_eq!(decide(&r, now, GRACE), RefreshDecision::Reuse);
    }

    #[test]
    fn revoked_or_expired_tokens_are_refused() {
        let (r, now) = record(None, true);
        assert_eq!(decide(&r, now, GRACE), RefreshDecision::Refuse);
        let (mut r, now) = record(None, false);
        r.expires_at = now - time::Duration::seconds(1);
        assert_eq!(decide(&r, now, GRACE), RefreshDecision::Refuse);
    }
}
