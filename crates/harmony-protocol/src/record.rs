//! The message-log record, version 1: what an api node appends for each accepted message, on any
//! log (the embedded one on a single node, `harmony.messages.v1` in a cluster). It carries no
//! `seq`: the log assigns the position.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use harmony_core::model::{Author, NewMessage};
use harmony_core::values::{ClientMsgId, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecordV1 {
    pub id: String,
    pub chat_id: String,
    pub author_id: String,
    pub author_username: String,
    pub author_display_name: String,
    pub content: String,
    pub client_msg_id: Option<String>,
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A record that does not decode into a valid message: it was written by something else, or
/// corrupted. Consumers park such records instead of crashing on them.
#[derive(Debug, thiserror::Error)]
#[error("bad log record: {0}")]
pub struct BadRecord(pub String);

impl From<&NewMessage> for MessageRecordV1 {
    fn from(m: &NewMessage) -> Self {
        Self::of(
            (m.id, m.chat_id),
            &m.author,
            &m.content,
            m.client_msg_id.as_ref(),
            m.created_at,
        )
    }
}

impl From<&harmony_core::model::Message> for MessageRecordV1 {
    fn from(m: &harmony_core::model::Message) -> Self {
        Self::of(
            (m.id, m.chat_id),
            &m.author,
            &m.content,
            m.client_msg_id.as_ref(),
            m.created_at,
        )
    }
}

impl MessageRecordV1 {
    /// The record of a message's fields, placed or not (a record carries no seq).
    fn of(
        (id, chat_id): (MessageId, ChatId),
        author: &Author,
        content: &MessageContent,
        client_msg_id: Option<&ClientMsgId>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: id.to_string(),
            chat_id: chat_id.to_string(),
            author_id: author.id.to_string(),
            author_username: author.username.to_string(),
            author_display_name: author.display_name.to_string(),
            content: content.to_string(),
            client_msg_id: client_msg_id.map(|c| c.as_str().to_owned()),
            created_at,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, BadRecord> {
        serde_json::from_slice(bytes).map_err(|e| BadRecord(e.to_string()))
    }

    /// Back into a domain message, re-validating every field.
    pub fn into_message(self) -> Result<NewMessage, BadRecord> {
        let bad = |what: &str| BadRecord(format!("invalid {what}"));
        Ok(NewMessage {
            id: self.id.parse::<MessageId>().map_err(|_| bad("id"))?,
            chat_id: self.chat_id.parse::<ChatId>().map_err(|_| bad("chat_id"))?,
            author: Author {
                id: self
                    .author_id
                    .parse::<UserId>()
                    .map_err(|_| bad("author_id"))?,
                username: Username::parse(&self.author_username).map_err(|_| bad("username"))?,
                display_name: DisplayName::parse(&self.author_display_name)
                    .map_err(|_| bad("display_name"))?,
            },
            content: MessageContent::parse(&self.content).map_err(|_| bad("content"))?,
            client_msg_id: self
                .client_msg_id
                .as_deref()
                .map(ClientMsgId::parse)
                .transpose()
                .map_err(|_| bad("client_msg_id"))?,
            created_at: self.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_the_record_round_trip() {
        let message = NewMessage {
            id: MessageId::new(),
            chat_id: ChatId::new(),
            author: Author {
                id: UserId::new(),
                username: Username::parse("ann").expect("valid"),
                display_name: DisplayName::parse("Ann A.").expect("valid"),
            },
            content: MessageContent::parse("hello\nworld").expect("valid"),
            client_msg_id: Some(ClientMsgId::parse("k-1").expect("valid")),
            created_at: harmony_core::now(),
        };
        let bytes = MessageRecordV1::from(&message).encode();
        let back = MessageRecordV1::decode(&bytes).and_then(MessageRecordV1::into_message);
        assert_eq!(back.ok(), Some(message));
    }

    #[test]
    fn garbage_is_a_bad_record_not_a_panic() {
        assert!(MessageRecordV1::decode(b"{").is_err());
        let mut record: serde_json::Value = serde_json::json!({
            "id": "x", "chat_id": "y", "author_id": "z", "author_username": "ann",
            "author_display_name": "Ann", "content": "hi", "client_msg_id": null,
            "created_at": "2026-01-01T00:00:00Z"
        });
        let bytes = serde_json::to_vec(&record).expect("json");
        let decoded = MessageRecordV1::decode(&bytes).expect("shape is right");
        assert!(decoded.into_message().is_err());
        record["created_at"] = serde_json::Value::from("yesterday");
        let bytes = serde_json::to_vec(&record).expect("json");
        assert!(MessageRecordV1::decode(&bytes).is_err());
    }
}

/// An outbox event on the wire, version 1: what the relay publishes to `harmony.events.v1`
/// (keyed by `aggregate_id`) and what PostgreSQL's WAL carries from the outbox write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecordV1 {
    pub event_id: String,
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub version: i32,
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    pub event: harmony_core::events::DomainEvent,
}

impl From<&harmony_core::events::StoredEvent> for EventRecordV1 {
    fn from(e: &harmony_core::events::StoredEvent) -> Self {
        let (aggregate_type, aggregate_id) = e.event.aggregate();
        Self {
            event_id: e.id.to_string(),
            position: e.position,
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id,
            event_type: e.event.event_type().to_owned(),
            version: harmony_core::events::EVENT_VERSION,
            created_at: e.created_at,
            event: e.event.clone(),
        }
    }
}

impl EventRecordV1 {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, BadRecord> {
        serde_json::from_slice(bytes).map_err(|e| BadRecord(e.to_string()))
    }

    pub fn into_stored(self) -> Result<harmony_core::events::StoredEvent, BadRecord> {
        Ok(harmony_core::events::StoredEvent {
            position: self.position,
            id: self
                .event_id
                .parse()
                .map_err(|_| BadRecord("invalid event_id".into()))?,
            event: self.event,
            created_at: self.created_at,
        })
    }
}
