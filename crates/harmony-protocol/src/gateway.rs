//! What crosses Redis to the gateways, version 1: one envelope per event, `{"v":1,"type":...}`,
//! published by the fan-out and the projector, and the entries of a chat's recent window. A
//! message travels as its log record plus its seq and is validated again on the way in (the same
//! constructors as a request's values); `prev_seq` is not carried, since it is `seq - 1`.

use serde::{Deserialize, Serialize};

use harmony_core::events::GatewayEvent;
use harmony_core::model::Message;

use crate::record::{BadRecord, MessageRecordV1};

/// The envelope version this build writes and reads.
pub const GATEWAY_RECORD_VERSION: u32 = 1;

/// A placed message: the log record and where the sequencer put it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedMessageV1 {
    pub seq: i64,
    #[serde(flatten)]
    pub record: MessageRecordV1,
}

impl PlacedMessageV1 {
    pub fn from_message(m: &Message) -> Self {
        Self {
            seq: m.seq,
            record: MessageRecordV1::from(m),
        }
    }

    pub fn into_message(self) -> Result<Message, BadRecord> {
        if self.seq < 1 {
            return Err(BadRecord(format!("invalid seq {}", self.seq)));
        }
        Ok(self.record.into_message()?.committed(self.seq))
    }

    /// A window entry.
    pub fn encode(m: &Message) -> Vec<u8> {
        // Serializing strings and integers cannot fail.
        serde_json::to_vec(&Self::from_message(m)).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Message, BadRecord> {
        serde_json::from_slice::<Self>(bytes)
            .map_err(|e| BadRecord(e.to_string()))?
            .into_message()
    }
}

/// Lives for one encode or decode, so the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Body {
    Message {
        message: PlacedMessageV1,
    },
    /// Membership and chat notices, as the projector publishes them.
    Notice {
        event: GatewayEvent,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    #[serde(flatten)]
    body: Body,
}

/// The bytes published for an event.
pub fn encode_event(event: &GatewayEvent) -> Vec<u8> {
    let body = match event {
        GatewayEvent::Message { message, .. } => Body::Message {
            message: PlacedMessageV1::from_message(message),
        },
        other => Body::Notice {
            event: other.clone(),
        },
    };
    let envelope = Envelope {
        v: GATEWAY_RECORD_VERSION,
        body,
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// The event bytes of a message, made from its window entry (`PlacedMessageV1::encode`), so the
/// fan-out encodes a message once for both.
pub fn message_event(entry: &[u8]) -> Vec<u8> {
    let head = format!("{{\"v\":{GATEWAY_RECORD_VERSION},\"type\":\"message\",\"message\":");
    let mut out = Vec::with_capacity(head.len() + entry.len() + 1);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(entry);
    out.push(b'}');
    out
}

/// An event read from Redis; anything this build cannot vouch for is a `BadRecord`.
pub fn decode_event(bytes: &[u8]) -> Result<GatewayEvent, BadRecord> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| BadRecord(e.to_string()))?;
    if envelope.v != GATEWAY_RECORD_VERSION {
        return Err(BadRecord(format!("gateway record version {}", envelope.v)));
    }
    match envelope.body {
        Body::Message { message } => Ok(GatewayEvent::message(message.into_message()?)),
        Body::Notice {
            event: GatewayEvent::Message { .. },
        } => Err(BadRecord("a message outside its envelope".into())),
        Body::Notice { event } => Ok(event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harmony_core::model::Author;
    use harmony_core::values::{DisplayName, MessageContent, Username};
    use harmony_core::{ChatId, MessageId, UserId};

    fn message(seq: i64) -> Message {
        Message {
            id: MessageId::new(),
            chat_id: ChatId::new(),
            seq,
            author: Author {
                id: UserId::new(),
                username: Username::parse("ann").expect("valid"),
                display_name: DisplayName::parse("Ann").expect("valid"),
            },
            content: MessageContent::parse("hi").expect("valid"),
            client_msg_id: None,
            created_at: harmony_core::now(),
            change: None,
            reply_to: None,
            mentions: Default::default(),
            state: Default::default(),
            notice: None,
        }
    }

    #[test]
    fn events_and_window_entries_round_trip_with_prev_seq_derived() {
        let m = message(7);
        let back = decode_event(&encode_event(&GatewayEvent::message(m.clone()))).expect("decodes");
        assert_eq!(back, GatewayEvent::message(m.clone()));
        assert!(matches!(
            back,
            GatewayEvent::Message {
                prev_seq: Some(6),
                ..
            }
        ));
        assert_eq!(
            PlacedMessageV1::decode(&PlacedMessageV1::encode(&m)).ok(),
            Some(m.clone())
        );
        let notice = GatewayEvent::MemberRemoved {
            chat_id: m.chat_id,
            user_id: m.author.id,
        };
        assert_eq!(decode_event(&encode_event(&notice)).ok(), Some(notice));
    }

    #[test]
    fn what_this_build_cannot_vouch_for_is_refused() {
        let m = message(3);
        let mut value: serde_json::Value =
            serde_json::from_slice(&encode_event(&GatewayEvent::message(m))).expect("json");
        value["v"] = 2.into();
        assert!(
            decode_event(value.to_string().as_bytes()).is_err(),
            "another version"
        );
        value["v"] = 1.into();
        value["message"]["author_username"] = "Not A Name!".into();
        assert!(
            decode_event(value.to_string().as_bytes()).is_err(),
            "an invalid value"
        );
        value["message"]["author_username"] = "ann".into();
        value["message"]["seq"] = 0.into();
        assert!(
            decode_event(value.to_string().as_bytes()).is_err(),
            "seqs start at 1"
        );
        assert!(decode_event(b"{\"type\":\"message\"}").is_err());
    }
}
