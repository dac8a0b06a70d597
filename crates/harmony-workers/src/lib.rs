//! Harmony's consumers: the loops that turn the message log and the outbox into effects.
//!
//! - [`fanout`]: message log → gateways (live delivery), with each message's `prev_seq`;
//! - [`sink`]: message log → message store (history), idempotent by message id;
//! - [`relay`]: outbox change stream (PostgreSQL WAL) → events topic, published before advanced;
//! - [`projector`]: outbox events → cache invalidation, live membership changes, history purges.
//!
//! On one node the fanout and the projector run in the `harmony` process against the embedded
//! log and outbox (the append writes history itself there, so there is no sink); in a cluster
//! each is its own role against Kafka. Every loop is `run(self, shutdown)`: it finishes the batch in hand,
//! commits, and returns when `shutdown` is cancelled. Failures are retried with backoff and jitter;
//! a batch is committed only after every record in it took effect, so nothing is skipped.

pub mod fanout;
pub mod projector;
pub mod relay;
mod retry;
pub mod sink;
mod source;

use std::sync::Arc;

/// Told how many records a worker finished, for metrics.
pub type OnProcessed = Arc<dyn Fn(usize) + Send + Sync>;
