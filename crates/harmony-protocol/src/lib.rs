//! Harmony's wire contracts, version 1: the JSON bodies of the REST API, the WebSocket frames,
//! the stable error codes, the message-log record, what Redis carries to the gateways, and the
//! topic names.
//!
//! Everything a client or another node sees on the wire is defined here, once, and converted
//! from the core's domain types. The HTTP edge (`harmony-api`) speaks these types; the OpenAPI
//! document is generated from their `ToSchema` derives, so the web UI's client and the frame
//! types it uses come from the same source as the server's.

pub mod dto;
pub mod errors;
pub mod gateway;
pub mod record;
pub mod ws;

/// The topic that holds every committed message, keyed by chat id (cluster shape).
pub const MESSAGES_TOPIC: &str = "harmony.messages.v1";
/// The topic that holds every outbox event, keyed by aggregate id (cluster shape).
pub const EVENTS_TOPIC: &str = "harmony.events.v1";

/// Formats a time the way every Harmony payload does: RFC 3339, UTC.
pub(crate) mod rfc3339 {
    pub use time::serde::rfc3339::{deserialize, option, serialize};
}
