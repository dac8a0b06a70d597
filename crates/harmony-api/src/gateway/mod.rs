//! The WebSocket gateway: the hub that routes gateway events to this process's sessions, and the
//! session loop that speaks contract v1's frames to one client.

pub mod hub;
mod presence;
mod queue;
mod resume;
pub mod session;
mod signals;

pub use hub::{Hub, Keepalive};
pub use presence::{PresenceTask, PresenceTiming, PresenceTracker};
