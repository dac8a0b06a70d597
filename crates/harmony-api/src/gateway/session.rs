//! One WebSocket session: `ready` first, then live frames from the hub, client frames
//! (`resume`, `ping`), and a clean close on overflow (4008), token expiry or an ended login
//! (4001) or shutdown (1001).
//!
//! The session subscribes to its chats *before* it reads where each chat stands, so every
//! message after the position announced in `ready` reaches it live. Live frames carry those;
//! `resume` sends the ones the client missed before them. Per chat the session keeps the range
//! of seqs it has sent, so a late or repeated message is never sent twice.

use std::collections::HashMap;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use harmony_core::model::User;
use harmony_core::presence::Shown;
use harmony_core::ChatId;
use harmony_protocol::dto::UserDto;
use harmony_protocol::ws::{
    ChatPositionDto, ClientFrame, ServerFrame, CLOSE_GOING_AWAY, CLOSE_TOO_SLOW,
    CLOSE_UNAUTHORIZED, CLOSE_UNAVAILABLE,
};
use tokio_util::sync::CancellationToken;

use super::hub::{Outbound, Registration};
use super::queue::Queue;
use super::resume::resume;
use crate::auth::AuthUser;
use crate::extract::json_depth;
use crate::AppState;

/// Frames written per flush when a session's queue has several waiting.
const DRAIN_MAX: usize = 64;
/// How long a write to a client may take before the session is closed as too slow (4008): a
/// client that stops reading while its connection stays up must not hold the session forever.
const WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a close frame may take to go out; after that the connection is simply dropped.
const CLOSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);
/// How often a session re-reads its chats when membership changes while it subscribes.
const SUBSCRIBE_ATTEMPTS: usize = 5;

/// What this session has sent, per chat.
#[derive(Debug, Default)]
pub(super) struct Positions {
    /// `(lo, hi)`: every seq in `lo..=hi` was sent, and every seq above `hi` will come live.
    /// A chat listed in `ready` at head `h` starts as `(h + 1, h)`: nothing sent yet.
    pub(super) sent: HashMap<ChatId, (i64, i64)>,
    /// How far below `lo` a `resume` already went, so a repeated one sends nothing twice.
    pub(super) resumed: HashMap<ChatId, i64>,
    /// The rate limits of the client's `typing` and `presence` frames: boxed and made on the
    /// first such frame, so an idle session holds one pointer for them.
    pub(super) signals: Option<Box<super::signals::Buckets>>,
}

impl Positions {
    fn at_ready(heads: &HashMap<ChatId, i64>) -> Self {
        Self {
            sent: heads.iter().map(|(c, h)| (*c, (h + 1, *h))).collect(),
            resumed: HashMap::new(),
            signals: None,
        }
    }

    /// Whether a live message goes out; records it if so.
    pub(super) fn admit(&mut self, chat: ChatId, seq: i64) -> bool {
        match self.sent.get_mut(&chat) {
            None => {
                self.sent.insert(chat, (seq, seq));
                true
            }
            Some((_, hi)) if seq <= *hi => false,
            // Nothing sent live yet, and the first live message is beyond the next expected:
            // the position in `ready` was behind (say a head read just before a message was
            // placed). Everything below this one is `resume`'s, so the client's resume after
            // seeing this frame's `prev_seq` finds the messages in between.
            Some((lo, hi)) if *hi < *lo => {
                *lo = seq;
                *hi = seq;
                true
            }
            Some((_, hi)) => {
                *hi = seq;
                true
            }
        }
    }
}

/// The socket and the session's queue, which `resume` keeps draining between pages.
pub(super) struct Io<'a> {
    /// The session's id in the hub.
    pub(super) id: u64,
    /// Whose session it is.
    pub(super) user: harmony_core::UserId,
    pub(super) socket: &'a mut WebSocket,
    pub(super) queue: &'a Queue,
    /// What the session shows of its user (the client's `presence` frame).
    pub(super) shown: Shown,
}

impl Io<'_> {
    /// Sends one frame; false when the socket is gone.
    pub(super) async fn send(&mut self, frame: &ServerFrame) -> bool {
        match serde_json::to_string(frame) {
            Ok(json) => self.socket.send(WsMessage::Text(json.into())).await.is_ok(),
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a frame");
                true
            }
        }
    }

    /// Sends a queued frame unless it is a message this session already sent.
    pub(super) async fn forward(
        &mut self,
        state: &AppState,
        positions: &mut Positions,
        out: Outbound,
    ) -> bool {
        if let Some((chat, seq)) = out.message {
            if !positions.admit(chat, seq) {
                return true;
            }
            state.metrics.messages_delivered.inc();
        }
        let frame = if out.ping {
            WsMessage::Ping(axum::body::Bytes::new())
        } else {
            WsMessage::Text(out.json.clone())
        };
        // Buffered only: `drain` flushes once for everything queued (one write, not one per frame).
        self.socket.feed(frame).await.is_ok()
    }

    /// Forwards everything queued right now (at most `DRAIN_MAX` frames), then flushes them in
    /// one write; false when the socket is gone.
    pub(super) async fn drain(&mut self, state: &AppState, positions: &mut Positions) -> bool {
        let mut forwarded = 0;
        while forwarded < DRAIN_MAX {
            let Some(out) = self.queue.pop() else {
                break;
            };
            forwarded += 1;
            if !self.forward(state, positions, out).await {
                return false;
            }
        }
        self.socket.flush().await.is_ok()
    }
}

/// Runs a session until the client leaves, the server stops, the queue overflows, or the access
/// token expires or its login session ends.
///
/// Not an `async fn`: one would copy its arguments (the socket alone is 368 bytes) into its state
/// a second time, and thousands of these futures are kept while their sessions idle.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice"
)]
pub fn run(
    mut socket: WebSocket,
    state: AppState,
    user: User,
    caller: AuthUser,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let registration =
            state
                .hub
                .register(&caller, state.gateway.session_queue, &state.sessions_end);
        state.metrics.ws_sessions.inc();
        let session_id = crate::auth::tokens::random_token();
        tracing::debug!(user = %user.id, session = %session_id, "session opened");
        let mut io = Io {
            id: registration.id,
            user: user.id,
            socket: &mut socket,
            queue: &registration.queue,
            shown: Shown::Online,
        };
        // Both boxed, like `resume` below: a session's own future stays small while it idles,
        // since thousands are kept. Inline, the start's and the serving loop's states did not
        // share space (harmony-bench S1: about 1 KB more per idle connection). Each box is made
        // in a statement of its own: in `Box::pin(f()).await` the temporary `f()` lives until
        // the statement ends, across the await, so the caller's state would hold the unboxed
        // future after all (this future was 856 bytes larger that way).
        let greeting = Box::pin(greet(&mut io, &state, &user, &registration, &session_id));
        let greeted = greeting.await;
        let reason = match greeted {
            Ok(positions) => {
                let ends = Ends {
                    ended: &registration.ended,
                    caller: &caller,
                };
                state.presence.opened(user.id);
                let serving = Box::pin(serve(&mut io, &state, positions, ends));
                let reason = serving.await;
                state.presence.closed(user.id, io.shown);
                reason
            }
            Err(reason) => reason,
        };
        state.hub.unregister(registration.id);
        state.metrics.ws_sessions.dec();
        tracing::debug!(user = %user.id, session = %session_id, reason, "session closed");
    }
}

/// Starts the session and sends `ready`: the positions it announced, or why the session ended.
async fn greet(
    io: &mut Io<'_>,
    state: &AppState,
    user: &User,
    registration: &Registration,
    session_id: &str,
) -> Result<Positions, &'static str> {
    let Ok(heads) = start(state, user, registration.id, registration.epoch).await else {
        close(
            io.socket,
            CLOSE_UNAVAILABLE,
            "temporarily unavailable; reconnect",
        )
        .await;
        return Err("start failed");
    };
    let ready = ServerFrame::Ready {
        session_id: session_id.to_owned(),
        user: UserDto::from(user),
        chats: heads
            .iter()
            .map(|(id, seq)| ChatPositionDto {
                id: id.to_string(),
                last_seq: *seq,
            })
            .collect(),
    };
    if io.send(&ready).await {
        Ok(Positions::at_ready(&heads))
    } else {
        Err("client gone")
    }
}

/// Subscribes to the user's chats (retrying if membership changed meanwhile), then reads where
/// each stands.
async fn start(
    state: &AppState,
    user: &User,
    id: u64,
    mut epoch: u64,
) -> Result<HashMap<ChatId, i64>, ()> {
    let fail = |e: harmony_core::usecases::ChatError| {
        tracing::warn!(error = %e, "could not load a session's chats");
    };
    for _ in 0..SUBSCRIBE_ATTEMPTS {
        let ids = state
            .use_cases
            .chats
            .chat_ids(user.id)
            .await
            .map_err(fail)?;
        match state.hub.subscribe(id, &ids, epoch) {
            Ok(()) => {
                // In a cluster: Redis confirms the subscriptions before the heads are read.
                if !state.hub.barrier().await {
                    tracing::warn!(user = %user.id, "the Redis subscriber did not confirm a session's chats in time");
                    return Err(());
                }
                return state.use_cases.chats.heads(&ids).await.map_err(fail);
            }
            Err(current) => epoch = current,
        }
    }
    tracing::warn!(user = %user.id, "membership kept changing while a session subscribed");
    Err(())
}

/// The reasons a session ends besides the client leaving: `ended` is cancelled for each of
/// them, and `caller` tells token expiry or an ended login from the queue's overflow.
struct Ends<'a> {
    ended: &'a CancellationToken,
    caller: &'a AuthUser,
}

async fn serve(
    io: &mut Io<'_>,
    state: &AppState,
    mut positions: Positions,
    ends: Ends<'_>,
) -> &'static str {
    // Created once, on the session's own token (a child of the server's shutdown token, also
    // cancelled by the hub when the queue overflows or the token expires): polling a
    // `cancelled()` future takes its token's lock, so a shared token, or a future made per
    // frame, would cost every delivery.
    let ended = ends.ended.cancelled();
    tokio::pin!(ended);
    loop {
        tokio::select! {
            biased;
            () = &mut ended => {
                let ending = Box::pin(end(io.socket, io.queue, state, ends.caller));
                return ending.await;
            }
            outbound = io.queue.next() => {
                // A write that does not finish (the client stopped reading) is raced against
                // the session's end and a deadline, so a stuck reader is closed and freed.
                // The usual write completes at its first poll and costs neither a clock read
                // nor another look at `ended`.
                let written = {
                    let writing = async {
                        io.forward(state, &mut positions, outbound).await
                            && io.drain(state, &mut positions).await
                    };
                    tokio::pin!(writing);
                    match futures_util::poll!(&mut writing) {
                        std::task::Poll::Ready(wrote) => Some(Ok(wrote)),
                        std::task::Poll::Pending => tokio::select! {
                            biased;
                            () = &mut ended => None,
                            wrote = tokio::time::timeout(WRITE_DEADLINE, &mut writing) => Some(wrote),
                        },
                    }
                };
                match written {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) => return "client gone",
                    None => {
                        let ending = Box::pin(end(io.socket, io.queue, state, ends.caller));
                        return ending.await;
                    }
                    Some(Err(_)) => {
                        close(io.socket, CLOSE_TOO_SLOW, "too slow; reconnect and resume").await;
                        return "write deadline";
                    }
                }
            }
            incoming = io.socket.recv() => {
                // Boxed: client frames are rare, and the loop's own state stays small while idle.
                let handling = Box::pin(receive(io, state, &mut positions, incoming));
                if let Err(reason) = handling.await {
                    return reason;
                }
            }
        }
    }
}

/// Closes the socket with the reason the hub ended the session for; returns that reason.
async fn end(
    socket: &mut WebSocket,
    queue: &Queue,
    state: &AppState,
    caller: &AuthUser,
) -> &'static str {
    if state.shutdown.is_cancelled() {
        close(
            socket,
            CLOSE_GOING_AWAY,
            "server shutting down; reconnect and resume",
        )
        .await;
        return "shutdown";
    }
    if state.use_cases.accounts.is_revoked(caller.session) {
        close(socket, CLOSE_UNAUTHORIZED, "session ended; sign in again").await;
        return "login ended";
    }
    if caller.expires_at <= time::OffsetDateTime::now_utc().unix_timestamp() {
        close(
            socket,
            CLOSE_UNAUTHORIZED,
            "session expired; refresh and reconnect",
        )
        .await;
        return "token expired";
    }
    let silent = time::OffsetDateTime::now_utc().unix_timestamp() - queue.last_heard();
    if silent >= state.gateway.keepalive.idle_after_secs {
        close(
            socket,
            CLOSE_TOO_SLOW,
            "no answer to pings; reconnect and resume",
        )
        .await;
        return "silent";
    }
    close(socket, CLOSE_TOO_SLOW, "too slow; reconnect and resume").await;
    "too slow"
}

/// Acts on what the socket read; `Err` ends the session, with the reason.
async fn receive(
    io: &mut Io<'_>,
    state: &AppState,
    positions: &mut Positions,
    incoming: Option<Result<WsMessage, axum::Error>>,
) -> Result<(), &'static str> {
    if matches!(incoming, Some(Ok(_))) {
        io.queue
            .hear(time::OffsetDateTime::now_utc().unix_timestamp());
    }
    let answered = match incoming {
        Some(Ok(WsMessage::Text(text))) => handle(io, state, positions, text.as_str()).await,
        Some(Ok(WsMessage::Binary(_))) => {
            io.send(&error_frame("bad_frame", "frames are JSON text"))
                .await
        }
        Some(Ok(WsMessage::Close(_))) | None => return Err("client closed"),
        Some(Ok(_)) => true,
        Some(Err(_)) => return Err("transport error"),
    };
    if answered {
        Ok(())
    } else {
        Err("client gone")
    }
}

/// Answers one client frame; false when the socket is gone.
async fn handle(io: &mut Io<'_>, state: &AppState, positions: &mut Positions, text: &str) -> bool {
    if json_depth(text.as_bytes()) > crate::extract::MAX_JSON_DEPTH {
        return io
            .send(&error_frame("bad_frame", "JSON nested too deeply"))
            .await;
    }
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Ping) => io.send(&ServerFrame::Pong).await,
        Ok(ClientFrame::Typing { chat_id }) => {
            super::signals::typing(io, state, &mut positions.signals, &chat_id).await
        }
        Ok(ClientFrame::Presence { status }) => {
            super::signals::presence(io, state, &mut positions.signals, status.into()).await
        }
        Ok(ClientFrame::Resume { chats }) => {
            let resuming = Box::pin(resume(io, state, positions, &chats));
            resuming.await
        }
        Err(e) => io.send(&error_frame("bad_frame", &e.to_string())).await,
    }
}

pub(super) fn error_frame(code: &str, message: &str) -> ServerFrame {
    ServerFrame::Error {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

pub(super) async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    // A client that stopped reading cannot take the frame: the connection is dropped instead.
    let _ = tokio::time::timeout(CLOSE_DEADLINE, socket.send(WsMessage::Close(Some(frame)))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_messages_at_or_below_the_sent_range_are_dropped() {
        let chat = ChatId::new();
        let mut p = Positions::at_ready(&HashMap::from([(chat, 5)]));
        assert!(!p.admit(chat, 5), "announced in ready: resume's job");
        assert!(p.admit(chat, 6));
        assert!(!p.admit(chat, 6), "a duplicate");
        assert!(p.admit(chat, 7));
        let behind = ChatId::new();
        let mut q = Positions::at_ready(&HashMap::from([(behind, 5)]));
        assert!(q.admit(behind, 9), "ready said 5, the first live is 9");
        assert_eq!(q.sent.get(&behind), Some(&(9, 9)), "6..=8 are resume's");
        let other = ChatId::new();
        assert!(
            p.admit(other, 40),
            "a chat joined after ready starts where live starts"
        );
        assert_eq!(p.sent.get(&other), Some(&(40, 40)));
    }
}
