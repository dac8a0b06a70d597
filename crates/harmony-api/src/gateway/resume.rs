//! `resume`: for each chat, the messages after the client's last `seq` up to the position the
//! session announced in `ready` (live frames carry the ones after it), in order, then `resumed`.

use std::collections::BTreeMap;

use axum::extract::ws::WebSocket;
use harmony_core::model::User;
use harmony_core::usecases::ChatError;
use harmony_core::ChatId;
use harmony_protocol::dto::MessageDto;
use harmony_protocol::ws::ServerFrame;

use super::session::{error_frame, send, Positions};
use crate::AppState;

/// Messages read per round trip to the stores while resuming.
const RESUME_PAGE: u32 = 500;
/// Chats one `resume` frame may name.
const MAX_RESUME_CHATS: usize = 10_000;

/// Sends what the client missed; false when the socket is gone.
pub(super) async fn resume(
    socket: &mut WebSocket,
    state: &AppState,
    user: &User,
    positions: &mut Positions,
    chats: &BTreeMap<String, i64>,
) -> bool {
    if chats.len() > MAX_RESUME_CHATS {
        return send(
            socket,
            &error_frame("bad_frame", "too many chats in one resume"),
        )
        .await;
    }
    for (raw_id, last_seq) in chats {
        let Ok(chat) = raw_id.parse::<ChatId>() else {
            if !send(socket, &error_frame("chat_not_found", raw_id)).await {
                return false;
            }
            continue;
        };
        let Some(&upto) = positions.at_ready.get(&chat) else {
            // Joined after `ready` (or not a member): live frames cover it from the join on.
            continue;
        };
        let from = (*last_seq).max(positions.resumed.get(&chat).copied().unwrap_or(0));
        match replay(socket, state, user, chat, from, upto).await {
            Ok(true) => {
                positions.resumed.insert(chat, upto.max(from));
            }
            Ok(false) => return false,
            Err(e) => {
                let code = match e {
                    ChatError::NotAMember | ChatError::ChatNotFound => "not_a_member",
                    _ => "unavailable",
                };
                if !send(socket, &error_frame(code, raw_id)).await {
                    return false;
                }
            }
        }
    }
    send(socket, &ServerFrame::Resumed).await
}

/// Sends messages with `from < seq <= upto`, page by page. `Ok(false)`: the socket is gone.
async fn replay(
    socket: &mut WebSocket,
    state: &AppState,
    user: &User,
    chat: ChatId,
    from: i64,
    upto: i64,
) -> Result<bool, ChatError> {
    let mut after = from;
    let mut prev = (from > 0).then_some(from);
    while after < upto {
        let page = state
            .use_cases
            .messages
            .missed(user.id, chat, after, RESUME_PAGE)
            .await?;
        if page.is_empty() {
            break;
        }
        for message in page.iter().filter(|m| m.seq <= upto) {
            let frame = ServerFrame::Message {
                chat_id: chat.to_string(),
                prev_seq: prev,
                message: MessageDto::from(message),
            };
            if !send(socket, &frame).await {
                return Ok(false);
            }
            state.metrics.messages_delivered.inc();
            prev = Some(message.seq);
            after = message.seq;
        }
        if page.last().is_some_and(|m| m.seq > upto) {
            break;
        }
    }
    Ok(true)
}
