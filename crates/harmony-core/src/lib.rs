//! Harmony's domain: the types that cannot be wrong, the ports every adapter implements, and the
//! use cases that drive them.
//!
//! This crate sits in the middle of the data flow and does no I/O of its own. The HTTP edge
//! (`harmony-api`) parses requests into the types here and calls the use cases; the use cases talk
//! only to the ports in [`ports`]; the adapters (`harmony-sqlite` on one node, PostgreSQL, Kafka and
//! Redis in a cluster) implement those ports; the workers (`harmony-workers`) drive the consumer
//! ports. Nothing here knows which shape is running.

pub mod authors;
pub mod cache;
pub mod changes;
pub mod events;
pub mod ids;
pub mod model;
pub mod ports;
pub mod presence;
pub mod ratelimit;
pub mod refresh;
pub mod sessions;
pub mod tiered;
pub mod transfer;
pub mod usecases;
pub mod values;

pub use ids::{ChatId, FriendRequestId, MessageId, UserId};
pub use values::ValidationError;

/// The wall clock, truncated to milliseconds so that a time survives every store's round trip.
pub fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}
