//! The message-log record, version 1: what an api node appends for each accepted entry (a
//! message, or a change to one: decision record 0004), on any log (the embedded one on a single
//! node, `harmony.messages.v1` in a cluster). It carries no `seq`: the log assigns the position.
//! The fields added for changes, replies and mentions are optional, so records written before
//! them decode as the messages they are.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use harmony_core::changes::{Change, MessageState};
use harmony_core::model::{Author, Mentions, NewMessage, Notice, Quote};
use harmony_core::values::{ClientMsgId, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecordV1 {
    pub id: String,
    pub chat_id: String,
    pub author_id: String,
    pub author_username: String,
    pub author_display_name: String,
    /// Empty for a change other than an edit, and once the message is deleted.
    pub content: String,
    pub client_msg_id: Option<String>,
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<QuoteRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mentions_everyone: bool,
    /// A timeline line about the chat (who joined or left, a rename), not a message anyone wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Notice>,
    /// Set when a delete scrubbed this record (the message's, or one of its edits').
    #[serde(
        default,
        with = "crate::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted_at: Option<OffsetDateTime>,
}

/// A reply's quote as the record keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteRecord {
    pub id: String,
    pub author_id: String,
    pub author_username: String,
    pub author_display_name: String,
    pub excerpt: String,
    #[serde(default)]
    pub deleted: bool,
}

/// A record that does not decode into a valid message: it was written by something else, or
/// corrupted. Consumers park such records instead of crashing on them.
#[derive(Debug, thiserror::Error)]
#[error("bad log record: {0}")]
pub struct BadRecord(pub String);

/// The fields every entry has, placed or not.
struct Fields<'a> {
    id: MessageId,
    chat_id: ChatId,
    author: &'a Author,
    content: &'a MessageContent,
    client_msg_id: Option<&'a ClientMsgId>,
    created_at: OffsetDateTime,
    change: Option<&'a Change>,
    reply_to: Option<&'a Quote>,
    mentions: &'a Mentions,
    deleted_at: Option<OffsetDateTime>,
    notice: Option<&'a Notice>,
}

impl From<&NewMessage> for MessageRecordV1 {
    fn from(m: &NewMessage) -> Self {
        Self::of(Fields {
            id: m.id,
            chat_id: m.chat_id,
            author: &m.author,
            content: &m.content,
            client_msg_id: m.client_msg_id.as_ref(),
            created_at: m.created_at,
            change: m.change.as_ref(),
            reply_to: m.reply_to.as_ref(),
            mentions: &m.mentions,
            deleted_at: m.state.deleted_at,
            notice: m.notice.as_ref(),
        })
    }
}

impl From<&harmony_core::model::Message> for MessageRecordV1 {
    fn from(m: &harmony_core::model::Message) -> Self {
        Self::of(Fields {
            id: m.id,
            chat_id: m.chat_id,
            author: &m.author,
            content: &m.content,
            client_msg_id: m.client_msg_id.as_ref(),
            created_at: m.created_at,
            change: m.change.as_ref(),
            reply_to: m.reply_to.as_ref(),
            mentions: &m.mentions,
            deleted_at: m.state.deleted_at,
            notice: m.notice.as_ref(),
        })
    }
}

impl MessageRecordV1 {
    /// The record of an entry's fields, placed or not (a record carries no seq).
    fn of(f: Fields<'_>) -> Self {
        Self {
            id: f.id.to_string(),
            chat_id: f.chat_id.to_string(),
            author_id: f.author.id.to_string(),
            author_username: f.author.username.to_string(),
            author_display_name: f.author.display_name.to_string(),
            content: f.content.to_string(),
            client_msg_id: f.client_msg_id.map(|c| c.as_str().to_owned()),
            created_at: f.created_at,
            change: f.change.cloned(),
            reply_to: f.reply_to.map(|q| QuoteRecord {
                id: q.id.to_string(),
                author_id: q.author.id.to_string(),
                author_username: q.author.username.to_string(),
                author_display_name: q.author.display_name.to_string(),
                excerpt: q.excerpt.clone(),
                deleted: q.deleted,
            }),
            mentions: f.mentions.users.iter().map(ToString::to_string).collect(),
            mentions_everyone: f.mentions.everyone,
            notice: f.notice.cloned(),
            deleted_at: f.deleted_at,
        }
    }

    /// This record with its content gone: what a delete leaves of the message and its edits.
    pub fn scrubbed(mut self, at: OffsetDateTime) -> Self {
        self.content.clear();
        self.deleted_at = Some(at);
        self
    }

    /// Whether the entry carries no content: a change other than an edit, or scrubbed.
    fn contentless(&self) -> bool {
        self.deleted_at.is_some()
            || matches!(&self.change, Some(c) if !matches!(c, Change::Edit { .. }))
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, BadRecord> {
        serde_json::from_slice(bytes).map_err(|e| BadRecord(e.to_string()))
    }

    /// Back into a domain entry, re-validating every field.
    pub fn into_message(self) -> Result<NewMessage, BadRecord> {
        let bad = |what: &str| BadRecord(format!("invalid {what}"));
        let content = if self.contentless() {
            if !self.content.is_empty() {
                return Err(bad("content"));
            }
            MessageContent::from_trusted(String::new())
        } else {
            MessageContent::parse(&self.content).map_err(|_| bad("content"))?
        };
        let reply_to = match self.reply_to {
            Some(q) => Some(Quote {
                id: q.id.parse::<MessageId>().map_err(|_| bad("reply_to"))?,
                author: author(&q.author_id, &q.author_username, &q.author_display_name)?,
                excerpt: harmony_core::model::excerpt(&q.excerpt),
                deleted: q.deleted,
            }),
            None => None,
        };
        // A name inside a notice is a chat name like any other.
        let notice = match self.notice {
            Some(Notice::Renamed { name }) => Some(Notice::Renamed {
                name: harmony_core::values::ChatName::parse(name.as_str())
                    .map_err(|_| bad("notice"))?,
            }),
            other => other,
        };
        let users = self
            .mentions
            .iter()
            .map(|u| u.parse::<UserId>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("mentions"))?;
        Ok(NewMessage {
            id: self.id.parse::<MessageId>().map_err(|_| bad("id"))?,
            chat_id: self.chat_id.parse::<ChatId>().map_err(|_| bad("chat_id"))?,
            author: author(
                &self.author_id,
                &self.author_username,
                &self.author_display_name,
            )?,
            content,
            client_msg_id: self
                .client_msg_id
                .as_deref()
                .map(ClientMsgId::parse)
                .transpose()
                .map_err(|_| bad("client_msg_id"))?,
            created_at: self.created_at,
            change: self.change,
            reply_to,
            mentions: Mentions {
                users,
                everyone: self.mentions_everyone,
            },
            state: MessageState {
                deleted_at: self.deleted_at,
                ..MessageState::default()
            },
            notice,
        })
    }
}

fn author(id: &str, username: &str, display_name: &str) -> Result<Author, BadRecord> {
    let bad = |what: &str| BadRecord(format!("invalid {what}"));
    Ok(Author {
        id: id.parse::<UserId>().map_err(|_| bad("author_id"))?,
        username: Username::parse(username).map_err(|_| bad("username"))?,
        display_name: DisplayName::parse(display_name).map_err(|_| bad("display_name"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_the_record_round_trip() {
        let ann = Author {
            id: UserId::new(),
            username: Username::parse("ann").expect("valid"),
            display_name: DisplayName::parse("Ann A.").expect("valid"),
        };
        let mut message = NewMessage::text(
            ChatId::new(),
            ann.clone(),
            MessageContent::parse("hello\nworld").expect("valid"),
            Some(ClientMsgId::parse("k-1").expect("valid")),
        );
        let round_trip = |m: &NewMessage| {
            let bytes = MessageRecordV1::from(m).encode();
            MessageRecordV1::decode(&bytes)
                .and_then(MessageRecordV1::into_message)
                .ok()
        };
        assert_eq!(round_trip(&message), Some(message.clone()));
        message.reply_to = Some(Quote {
            id: MessageId::new(),
            author: ann,
            excerpt: "before".into(),
            deleted: false,
        });
        message.mentions.users.push(UserId::new());
        message.mentions.everyone = true;
        assert_eq!(round_trip(&message), Some(message.clone()));
        let mut react = message.clone();
        react.content = MessageContent::from_trusted(String::new());
        react.change = Some(Change::React {
            target: message.id,
            emoji: harmony_core::changes::Emoji::parse("👍").expect("an emoji"),
        });
        assert_eq!(round_trip(&react), Some(react.clone()));
        let scrubbed = MessageRecordV1::from(&message).scrubbed(harmony_core::now());
        let back = MessageRecordV1::decode(&scrubbed.encode())
            .and_then(MessageRecordV1::into_message)
            .expect("a scrubbed record decodes");
        assert!(back.content.as_str().is_empty() && back.state.deleted_at.is_some());
    }

    #[test]
    fn a_record_written_before_changes_existed_is_a_message() {
        let old = br#"{"id":"01J00000000000000000000000","chat_id":"7b0c0f8e-4a57-4d59-9d0a-0c2a3c1f5a10",
            "author_id":"0e7a2c52-5f07-4f55-8c6c-2a8e4c3b1d20","author_username":"ann",
            "author_display_name":"Ann","content":"hi","client_msg_id":null,
            "created_at":"2026-01-01T00:00:00Z"}"#;
        let message = MessageRecordV1::decode(old)
            .and_then(MessageRecordV1::into_message)
            .expect("an old record");
        assert!(message.change.is_none() && message.reply_to.is_none());
        assert_eq!(message.content.as_str(), "hi");
        let mut bad_react = MessageRecordV1::decode(old).expect("shape");
        bad_react.change = Some(Change::Delete {
            target: MessageId::new(),
        });
        assert!(
            bad_react.into_message().is_err(),
            "a delete carries no content"
        );
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
