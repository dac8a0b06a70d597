//! WebSocket frames of contract v1: text frames holding one JSON object each, told apart by
//! `type`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::{ChatDto, FriendRequestDto, MessageChangeDto, MessageDto, PresenceDto, UserDto};
use harmony_core::events::{GatewayEvent, UserNotice};

/// Close code sent to a session whose queue overflowed: reconnect and resume.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code sent when the server shuts down: reconnect (to another node) and resume.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code sent when a store the session needs failed (starting, or resuming): reconnect
/// (with backoff) and resume.
pub const CLOSE_UNAVAILABLE: u16 = 1011;
/// Close code sent when the session's credentials expired or were revoked.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// How long a `typing` frame is shown unless renewed.
pub const TYPING_SHOWN_MS: u64 = 6_000;
/// Largest text frame a client may send.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChatPositionDto {
    pub id: String,
    /// The chat's newest `seq`; 0 when it has no message.
    pub last_seq: i64,
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame of every session.
    Ready {
        session_id: String,
        user: UserDto,
        chats: Vec<ChatPositionDto>,
    },
    /// A message; `prev_seq` is the previous message's `seq` in the chat (`seq - 1`, since a
    /// chat's seqs are dense), or null for the chat's first message. A client whose last `seq`
    /// differs from `prev_seq` has missed something and resumes.
    Message {
        chat_id: String,
        prev_seq: Option<i64>,
        // Boxed: a message is the largest frame by far (the enum stays small for the others).
        message: Box<MessageDto>,
    },
    /// A change to an earlier message of the chat (an edit, a delete, a reaction added or
    /// removed): an entry of the chat's order like a message, with the same `prev_seq` rule.
    /// Apply it to the target in order; it is not a new message (no unread, no line).
    MessageChanged {
        chat_id: String,
        prev_seq: Option<i64>,
        change: MessageChangeDto,
    },
    ChatUpdated {
        chat: ChatDto,
    },
    MemberAdded {
        chat_id: String,
        user: UserDto,
    },
    MemberRemoved {
        chat_id: String,
        user_id: String,
    },
    ChatDeleted {
        chat_id: String,
    },
    /// A member is typing in the chat; show it for `expires_in_ms` unless another `typing`
    /// renews it (a message from that member ends it too).
    Typing {
        chat_id: String,
        user_id: String,
        expires_in_ms: u64,
    },
    /// A friend request to or from the caller was sent, accepted or declined (`status` says).
    FriendRequest {
        request: FriendRequestDto,
    },
    /// The caller's friendship with `user_id` ended.
    FriendRemoved {
        user_id: String,
    },
    /// Someone (`by`) put the caller into `chat`: show it at once (`member_added` follows).
    AddedToChat {
        chat: ChatDto,
        by: String,
    },
    /// The caller read the chat up to `seq` on another session: clear its unread count there.
    Read {
        chat_id: String,
        seq: i64,
    },
    /// A user the caller is shown (a friend, a member of a small chat they share, or the caller)
    /// went online, idle or offline.
    Presence {
        #[serde(flatten)]
        presence: PresenceDto,
    },
    /// Every missed message asked for by `resume` was sent.
    Resumed,
    Pong,
    Error {
        code: String,
        message: String,
    },
}

impl ServerFrame {
    /// The one place a `message` frame is built, live or resumed; `prev_seq` is the message's
    /// own (`Message::prev_seq`).
    /// A change entry is a `message_changed` frame, built here too.
    pub fn message(message: &harmony_core::model::Message) -> Self {
        match MessageChangeDto::of(message) {
            Some(change) => Self::MessageChanged {
                chat_id: message.chat_id.to_string(),
                prev_seq: message.prev_seq(),
                change,
            },
            None => Self::Message {
                chat_id: message.chat_id.to_string(),
                prev_seq: message.prev_seq(),
                message: Box::new(message.into()),
            },
        }
    }
}

impl From<&GatewayEvent> for ServerFrame {
    fn from(event: &GatewayEvent) -> Self {
        match event {
            GatewayEvent::Message { message, .. } => Self::message(message),
            GatewayEvent::MemberAdded { chat_id, user } => Self::MemberAdded {
                chat_id: chat_id.to_string(),
                user: user.into(),
            },
            GatewayEvent::MemberRemoved { chat_id, user_id } => Self::MemberRemoved {
                chat_id: chat_id.to_string(),
                user_id: user_id.to_string(),
            },
            GatewayEvent::ChatUpdated { chat } => Self::ChatUpdated { chat: chat.into() },
            GatewayEvent::ChatDeleted { chat_id, .. } => Self::ChatDeleted {
                chat_id: chat_id.to_string(),
            },
            GatewayEvent::Typing { chat_id, user_id } => Self::Typing {
                chat_id: chat_id.to_string(),
                user_id: user_id.to_string(),
                expires_in_ms: TYPING_SHOWN_MS,
            },
            GatewayEvent::Presence { presence, .. } => Self::Presence {
                presence: presence.into(),
            },
            GatewayEvent::ForUser { notice, .. } => match notice {
                UserNotice::FriendRequest { request } => Self::FriendRequest {
                    request: request.into(),
                },
                UserNotice::FriendRemoved { user_id } => Self::FriendRemoved {
                    user_id: user_id.to_string(),
                },
                UserNotice::Read { chat_id, seq } => Self::Read {
                    chat_id: chat_id.to_string(),
                    seq: *seq,
                },
                UserNotice::AddedToChat { chat, by } => Self::AddedToChat {
                    chat: chat.into(),
                    by: by.to_string(),
                },
            },
        }
    }
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// For each chat, the last `seq` the client saw; the server sends what came after, in order,
    /// then `resumed`.
    Resume {
        chats: BTreeMap<String, i64>,
    },
    Ping,
    /// The user is typing in `chat_id` (send it again every few seconds while they are). Past a
    /// burst of 3, one a second counts; a chat the session does not follow gets an error.
    Typing {
        chat_id: String,
    },
    /// What this session shows of its user: `online` (every session starts so), `idle` (the
    /// user is away; the user is idle when all their shown sessions are) or `invisible` (the
    /// session counts as none: others see the user offline unless another session shows them).
    Presence {
        status: ShownDto,
    },
}

/// What a session shows of its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShownDto {
    Online,
    Idle,
    Invisible,
}

impl From<ShownDto> for harmony_core::presence::Shown {
    fn from(shown: ShownDto) -> Self {
        match shown {
            ShownDto::Online => Self::Online,
            ShownDto::Idle => Self::Idle,
            ShownDto::Invisible => Self::Invisible,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::OffsetDateTime;

    fn user(name: &str) -> UserDto {
        UserDto {
            id: "0b6d1c8e-9f43-4f57-a8c3-1d2f0e8a9b7c".into(),
            username: name.into(),
            display_name: name.to_uppercase(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn message(seq: i64, content: String) -> MessageDto {
        MessageDto {
            id: "01JD5Z1S3M4Q8Y6W7E2R9T0B5N".into(),
            chat_id: "c".into(),
            seq,
            author: crate::dto::AuthorDto {
                id: "u".into(),
                username: "ann".into(),
                display_name: "Ann".into(),
            },
            content,
            client_msg_id: Some("k1".into()),
            created_at: OffsetDateTime::UNIX_EPOCH
                + time::Duration::milliseconds(seq % 4_000_000_000_000),
            edited_at: None,
            deleted_at: None,
            reactions: Vec::new(),
            reply_to: None,
            mentions: Vec::new(),
            mentions_everyone: false,
            notice: None,
        }
    }

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(v: &T) {
        let json = serde_json::to_string(v).expect("serializes");
        let back: T = serde_json::from_str(&json).expect("parses back");
        assert_eq!(&back, v, "{json}");
    }

    #[test]
    fn every_server_frame_round_trips() {
        let chat = ChatDto {
            id: "c".into(),
            kind: "group".into(),
            name: Some("team".into()),
            owner_id: "u".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            member_count: 2,
        };
        let frames = [
            ServerFrame::Ready {
                session_id: "s".into(),
                user: user("ann"),
                chats: vec![ChatPositionDto {
                    id: "c".into(),
                    last_seq: 4,
                }],
            },
            ServerFrame::Message {
                chat_id: "c".into(),
                prev_seq: None,
                message: Box::new(message(1, "hi".into())),
            },
            ServerFrame::ChatUpdated { chat },
            ServerFrame::MemberAdded {
                chat_id: "c".into(),
                user: user("bob"),
            },
            ServerFrame::MemberRemoved {
                chat_id: "c".into(),
                user_id: "u".into(),
            },
            ServerFrame::ChatDeleted {
                chat_id: "c".into(),
            },
            ServerFrame::Presence {
                presence: crate::dto::PresenceDto {
                    user_id: "u".into(),
                    status: crate::dto::PresenceStatusDto::Offline,
                    last_seen: Some(OffsetDateTime::UNIX_EPOCH),
                },
            },
            ServerFrame::Resumed,
            ServerFrame::Pong,
            ServerFrame::Error {
                code: "bad_frame".into(),
                message: "?".into(),
            },
        ];
        for frame in &frames {
            round_trip(frame);
        }
    }

    #[test]
    fn frames_use_the_contract_names() {
        let json = serde_json::to_value(ServerFrame::Resumed).expect("serializes");
        assert_eq!(json, serde_json::json!({"type": "resumed"}));
        let online = ServerFrame::Presence {
            presence: crate::dto::PresenceDto {
                user_id: "u".into(),
                status: crate::dto::PresenceStatusDto::Online,
                last_seen: None,
            },
        };
        assert_eq!(
            serde_json::to_value(online).expect("serializes"),
            serde_json::json!({"type": "presence", "user_id": "u", "status": "online", "last_seen": null})
        );
        let idle: ClientFrame =
            serde_json::from_str(r#"{"type":"presence","status":"idle"}"#).expect("parses");
        assert_eq!(
            idle,
            ClientFrame::Presence {
                status: ShownDto::Idle
            }
        );
        let resume: ClientFrame =
            serde_json::from_str(r#"{"type":"resume","chats":{"c1":7}}"#).expect("parses");
        assert_eq!(
            resume,
            ClientFrame::Resume {
                chats: BTreeMap::from([("c1".to_owned(), 7)])
            }
        );
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
    }

    proptest! {
        #[test]
        fn message_frames_round_trip(seq in 1i64..i64::MAX / 2, prev in proptest::option::of(0i64..1000),
                                     content in "\\PC{1,200}") {
            round_trip(&ServerFrame::Message { chat_id: "c".into(), prev_seq: prev, message: Box::new(message(seq, content)) });
        }

        #[test]
        fn resume_frames_round_trip(chats in proptest::collection::btree_map("[a-f0-9-]{1,36}", 0i64..1 << 40, 0..20)) {
            round_trip(&ClientFrame::Resume { chats });
        }
    }
}
