//! One WebSocket session: `ready` first, then live frames from the hub, client frames
//! (`resume`, `ping`), and a clean close on overflow (4008) or shutdown (1001).
//!
//! Live delivery and resume split a chat's messages at the position announced in `ready`:
//! live frames carry every message after it, `resume` the ones up to it that the client missed.
//! Together they give each message once; a live message at or below what this session already
//! delivered (a late fan-out) is dropped.

use std::collections::HashMap;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use harmony_core::model::User;
use harmony_core::ChatId;
use harmony_protocol::dto::UserDto;
use harmony_protocol::ws::{
    ChatPositionDto, ClientFrame, ServerFrame, CLOSE_GOING_AWAY, CLOSE_TOO_SLOW,
};
use tokio::sync::mpsc;

use super::hub::Outbound;
use super::resume::resume;
use crate::extract::json_depth;
use crate::AppState;

/// How often a session re-reads its chats when membership changes while it subscribes.
const SUBSCRIBE_ATTEMPTS: usize = 5;

/// Where each chat stood when `ready` went out, and what this session has delivered since.
#[derive(Default)]
pub(super) struct Positions {
    pub(super) at_ready: HashMap<ChatId, i64>,
    pub(super) delivered: HashMap<ChatId, i64>,
    /// Per chat, how far a previous `resume` already went, so a repeated one sends nothing twice.
    pub(super) resumed: HashMap<ChatId, i64>,
}

pub async fn run(mut socket: WebSocket, state: AppState, user: User) {
    let (queue, mut inbox) = mpsc::channel::<Outbound>(state.gateway.session_queue);
    let registration = state.hub.register(user.id, queue);
    state.metrics.ws_sessions.inc();
    let session_id = crate::auth::tokens::random_token();
    tracing::debug!(user = %user.id, session = %session_id, "session opened");
    let reason = match start(&state, &user, registration.id, registration.epoch).await {
        Ok(positions) => {
            let ready = ServerFrame::Ready {
                session_id: session_id.clone(),
                user: UserDto::from(&user),
                chats: positions
                    .at_ready
                    .iter()
                    .map(|(id, seq)| ChatPositionDto {
                        id: id.to_string(),
                        last_seq: *seq,
                    })
                    .collect(),
            };
            if send(&mut socket, &ready).await {
                serve(
                    &mut socket,
                    &state,
                    &user,
                    positions,
                    &mut inbox,
                    &registration.too_slow,
                )
                .await
            } else {
                "client gone"
            }
        }
        Err(()) => {
            close(&mut socket, 1011, "temporarily unavailable; reconnect").await;
            "start failed"
        }
    };
    state.hub.unregister(registration.id);
    state.metrics.ws_sessions.dec();
    tracing::debug!(user = %user.id, session = %session_id, reason, "session closed");
}

/// Subscribes to the user's chats and reads where each stands, retrying if membership changed
/// in between.
async fn start(state: &AppState, user: &User, id: u64, mut epoch: u64) -> Result<Positions, ()> {
    for _ in 0..SUBSCRIBE_ATTEMPTS {
        let chats = state
            .use_cases
            .chats
            .positions(user.id)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not load a session's chats");
            })?;
        let ids: Vec<ChatId> = chats.iter().map(|c| c.chat_id).collect();
        match state.hub.subscribe(id, &ids, epoch) {
            Ok(()) => {
                let at_ready: HashMap<ChatId, i64> =
                    chats.iter().map(|c| (c.chat_id, c.last_seq)).collect();
                return Ok(Positions {
                    delivered: at_ready.clone(),
                    at_ready,
                    resumed: HashMap::new(),
                });
            }
            Err(current) => epoch = current,
        }
    }
    tracing::warn!(user = %user.id, "membership kept changing while a session subscribed");
    Err(())
}

async fn serve(
    socket: &mut WebSocket,
    state: &AppState,
    user: &User,
    mut positions: Positions,
    inbox: &mut mpsc::Receiver<Outbound>,
    too_slow: &tokio_util::sync::CancellationToken,
) -> &'static str {
    loop {
        tokio::select! {
            biased;
            () = state.shutdown.cancelled() => {
                close(socket, CLOSE_GOING_AWAY, "server shutting down; reconnect and resume").await;
                return "shutdown";
            }
            () = too_slow.cancelled() => {
                close(socket, CLOSE_TOO_SLOW, "too slow; reconnect and resume").await;
                return "too slow";
            }
            outbound = inbox.recv() => {
                let Some(outbound) = outbound else { return "hub closed" };
                if let Some((chat, seq)) = outbound.message {
                    let delivered = positions.delivered.entry(chat).or_insert(0);
                    if seq <= *delivered {
                        continue;
                    }
                    *delivered = seq;
                    state.metrics.messages_delivered.inc();
                }
                if socket.send(WsMessage::Text(Utf8Bytes::from(&*outbound.json))).await.is_err() {
                    return "client gone";
                }
            }
            incoming = socket.recv() => {
                let frame = match incoming {
                    Some(Ok(WsMessage::Text(text))) => text,
                    Some(Ok(WsMessage::Binary(_))) => {
                        if !send(socket, &error_frame("bad_frame", "frames are JSON text")).await {
                            return "client gone";
                        }
                        continue;
                    }
                    Some(Ok(WsMessage::Close(_))) | None => return "client closed",
                    Some(Ok(_)) => continue,
                    Some(Err(_)) => return "transport error",
                };
                if !handle(socket, state, user, &mut positions, frame.as_str()).await {
                    return "client gone";
                }
            }
        }
    }
}

/// Answers one client frame; false when the socket is gone.
async fn handle(
    socket: &mut WebSocket,
    state: &AppState,
    user: &User,
    positions: &mut Positions,
    text: &str,
) -> bool {
    if json_depth(text.as_bytes()) > crate::extract::MAX_JSON_DEPTH {
        return send(socket, &error_frame("bad_frame", "JSON nested too deeply")).await;
    }
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Ping) => send(socket, &ServerFrame::Pong).await,
        Ok(ClientFrame::Resume { chats }) => resume(socket, state, user, positions, &chats).await,
        Err(e) => send(socket, &error_frame("bad_frame", &e.to_string())).await,
    }
}

pub(super) fn error_frame(code: &str, message: &str) -> ServerFrame {
    ServerFrame::Error {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

/// Sends one frame; false when the socket is gone.
pub(super) async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> bool {
    match serde_json::to_string(frame) {
        Ok(json) => socket.send(WsMessage::Text(json.into())).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize a frame");
            true
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = socket.send(WsMessage::Close(Some(frame))).await;
}
