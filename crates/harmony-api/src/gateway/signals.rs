//! What a client says about its user while connected: typing in a chat, and what its session
//! shows (online, idle, invisible). Each is rate-limited per session; neither is stored.

use harmony_core::ports::RateRule;
use harmony_core::presence::Shown;
use harmony_core::ratelimit::TokenBucket;
use harmony_core::ChatId;

use super::session::{error_frame, Io};
use crate::AppState;

/// The `typing` frames a session passes on: a few at once (a new bout right after a send), then
/// one a second.
const TYPING_RULE: RateRule = RateRule {
    burst: 3,
    per_second: 1.0,
};
/// The `presence` frames a session may send: a few at once, then one a second (each may reach
/// every friend of the user).
const PRESENCE_RULE: RateRule = RateRule {
    burst: 5,
    per_second: 1.0,
};

/// What a session's client may still say: each bucket full when the first signal comes.
#[derive(Debug)]
pub(super) struct Buckets {
    typing: TokenBucket,
    presence: TokenBucket,
}

fn buckets(slot: &mut Option<Box<Buckets>>) -> &mut Buckets {
    slot.get_or_insert_with(|| {
        let now = std::time::Instant::now();
        Box::new(Buckets {
            typing: TokenBucket::full(TYPING_RULE, now),
            presence: TokenBucket::full(PRESENCE_RULE, now),
        })
    })
}

/// A `typing` frame: passed on to the chat's members if the session follows the chat and is
/// within its rule; false when the socket is gone.
pub(super) async fn typing(
    io: &mut Io<'_>,
    state: &AppState,
    slot: &mut Option<Box<Buckets>>,
    chat_id: &str,
) -> bool {
    let followed = chat_id
        .parse::<ChatId>()
        .ok()
        .filter(|chat| state.hub.follows(io.id, *chat));
    let Some(chat) = followed else {
        return io
            .send(&error_frame(
                "chat_not_found",
                "this session has no such chat",
            ))
            .await;
    };
    // Past the rule, more adds nothing a reader could see: dropped quietly.
    let now = std::time::Instant::now();
    if buckets(slot).typing.take(TYPING_RULE, now).is_ok() {
        state.use_cases.chats.typing(io.user, chat).await;
    }
    true
}

/// A `presence` frame: the session now shows `to`, told to this node's presence task; refused
/// past the rule (the session keeps what it showed). False when the socket is gone.
pub(super) async fn presence(
    io: &mut Io<'_>,
    state: &AppState,
    slot: &mut Option<Box<Buckets>>,
    to: Shown,
) -> bool {
    let now = std::time::Instant::now();
    if buckets(slot).presence.take(PRESENCE_RULE, now).is_err() {
        return io
            .send(&error_frame(
                "rate_limited",
                "presence changed too often; try again in a second",
            ))
            .await;
    }
    state.presence.switched(io.user, io.shown, to);
    io.shown = to;
    true
}
