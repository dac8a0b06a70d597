//! `resume`: for each chat, the messages after the client's last `seq` that this session has not
//! sent, in order, then `resumed`. Between pages the session's queue is drained, so a long
//! resume does not make a busy session overflow.

use std::collections::BTreeMap;

use harmony_core::usecases::ChatError;
use harmony_core::ChatId;
use harmony_protocol::ws::{ServerFrame, CLOSE_UNAVAILABLE};

use super::session::{close, error_frame, Io, Positions};
use crate::AppState;

/// Messages read per round trip to the stores while resuming.
const RESUME_PAGE: u32 = 500;
/// Chats one `resume` frame may name.
const MAX_RESUME_CHATS: usize = 10_000;

/// How many ids an error frame names before it only counts the rest.
const IDS_NAMED: usize = 20;

/// `ids` for an error frame: the first `IDS_NAMED`, then how many more.
fn listed(ids: &[&str]) -> String {
    let mut out = ids
        .iter()
        .take(IDS_NAMED)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > IDS_NAMED {
        out.push_str(&format!(" and {} more", ids.len() - IDS_NAMED));
    }
    out
}

/// Sends what the client missed; false when the socket is gone.
pub(super) async fn resume(
    io: &mut Io<'_>,
    state: &AppState,
    positions: &mut Positions,
    chats: &BTreeMap<String, i64>,
) -> bool {
    if chats.len() > MAX_RESUME_CHATS {
        return io
            .send(&error_frame("bad_frame", "too many chats in one resume"))
            .await;
    }
    // Only chats this session follows are resumed: it subscribed to them from the member's chat
    // list, and a removal unfollows them. Anything else costs one lookup in the hub and is
    // answered with one frame per kind, however many ids the frame names.
    let mut unknown = Vec::new();
    let mut unfollowed = Vec::new();
    let mut followed = Vec::new();
    for (raw_id, last_seq) in chats {
        match raw_id.parse::<ChatId>() {
            Err(_) => unknown.push(raw_id.as_str()),
            Ok(chat) if !state.hub.follows(io.id, chat) => unfollowed.push(raw_id.as_str()),
            Ok(chat) => followed.push((chat, *last_seq)),
        }
    }
    for (code, ids) in [("chat_not_found", &unknown), ("not_a_member", &unfollowed)] {
        if !ids.is_empty() && !io.send(&error_frame(code, &listed(ids))).await {
            return false;
        }
    }
    for (chat, last_seq) in followed {
        match resume_chat(io, state, positions, chat, last_seq).await {
            Ok(true) => {}
            Ok(false) => return false,
            // A store that failed must not end in `resumed`: that frame promises everything
            // missed was sent. The client reconnects and resumes again (S6 found this: under a
            // reconnect storm a store timed out and the session said `resumed` with a hole).
            Err(e) => {
                tracing::warn!(chat = %chat, error = %e, "resume failed; closing the session");
                close(
                    io.socket,
                    CLOSE_UNAVAILABLE,
                    "temporarily unavailable; reconnect and resume",
                )
                .await;
                return false;
            }
        }
    }
    io.send(&ServerFrame::Resumed).await
}

async fn resume_chat(
    io: &mut Io<'_>,
    state: &AppState,
    positions: &mut Positions,
    chat: ChatId,
    last_seq: i64,
) -> Result<bool, ChatError> {
    // Seqs start at 1; a client's position outside 0..i64::MAX - 1 means nothing real.
    let last_seq = last_seq.clamp(0, i64::MAX - 1);
    let start = last_seq.max(positions.resumed.get(&chat).copied().unwrap_or(0));
    let upto = match positions.sent.get(&chat) {
        // Everything from `lo` on was or will be sent live.
        Some(&(lo, _)) => lo - 1,
        // A chat joined after `ready` with nothing sent yet: claim up to its head now, so live
        // frames at or below it (already queued) are dropped as duplicates.
        None => {
            let heads = state.use_cases.chats.heads(&[chat]).await?;
            let head = heads.get(&chat).copied().unwrap_or(0);
            positions.sent.insert(chat, (start + 1, head));
            head
        }
    };
    let sent_all = replay(io, state, positions, chat, start, upto).await?;
    if sent_all {
        positions.resumed.insert(chat, upto.max(start));
    }
    Ok(sent_all)
}

/// Sends messages with `from < seq <= upto`, page by page. `Ok(false)`: the socket is gone.
async fn replay(
    io: &mut Io<'_>,
    state: &AppState,
    positions: &mut Positions,
    chat: ChatId,
    from: i64,
    upto: i64,
) -> Result<bool, ChatError> {
    if from >= upto {
        // Nothing missed: most chats of a reconnecting client, and they cost no read.
        return Ok(true);
    }
    let mut after = from;
    let mut page = state
        .use_cases
        .messages
        .missed(chat, after, RESUME_PAGE)
        .await?;
    while after < upto && !page.is_empty() {
        for message in page.iter().filter(|m| m.seq <= upto) {
            if !io.send(&ServerFrame::message(message)).await {
                return Ok(false);
            }
            state.metrics.messages_delivered.inc();
            after = message.seq;
        }
        if page.last().is_some_and(|m| m.seq >= upto) {
            break;
        }
        if !io.drain(state, positions).await {
            return Ok(false);
        }
        page = state
            .use_cases
            .messages
            .missed(chat, after, RESUME_PAGE)
            .await?;
    }
    if after < upto {
        // Messages up to `upto` exist (the chat's head said so) but no source could give them
        // (e.g. the message store lags the log): `resumed` would promise a hole. The session
        // closes with 1011 and the client resumes again.
        return Err(ChatError::Store(
            harmony_core::ports::StoreError::Unavailable(format!(
                "chat {chat}: messages {}..={upto} could not be read",
                after + 1
            )),
        ));
    }
    Ok(true)
}
