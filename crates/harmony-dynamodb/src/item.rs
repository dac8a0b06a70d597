//! Items of the message table (decision record 0005). Keys are `c` (partition, a string) and
//! `s` (sort, a number):
//!
//! - a message of chat C at seq N: `c = C`, `s = N`;
//! - a change of chat C at seq N: `c = C#c`, `s = N` (pages read messages only, one Query);
//! - a pointer from an entry's id to where it is: `c = id#<ulid>`, `s = 0`, with `p` (its
//!   partition) and `n` (its seq), read consistently for cursors and targets.
//!
//! Entry attributes: `id`, `a` author, `t` content, `k` client_msg_id, `at` created (ms), `ch`
//! change (JSON), `rp` reply quote (JSON), `mn` mentioned ids (JSON), `ev` @everyone, and the
//! state changes leave: `ed` edited (ms), `dl` deleted (ms), `rx` reactions (JSON), `ap` the seq
//! of the last change applied, `es` the seqs of its edits, `rs` the seqs of replies to it; `nt`
//! a notice (a timeline line about the chat, JSON).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use harmony_core::changes::MessageState;
use harmony_core::model::{Author, Mentions, Message, Quote};
use harmony_core::ports::StoreResult;
use harmony_core::values::{ClientMsgId, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};
use time::OffsetDateTime;

use crate::corrupt;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The partition of a chat's messages, or of its changes.
pub(crate) fn partition(chat: ChatId, change: bool) -> String {
    if change {
        format!("{chat}#c")
    } else {
        chat.to_string()
    }
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| corrupt("time", e))
}

pub(crate) fn key(partition: &str, seq: i64) -> Item {
    HashMap::from([("c".to_owned(), s(partition)), ("s".to_owned(), n(seq))])
}

pub(crate) fn pointer_key(id: MessageId) -> Item {
    key(&format!("id#{id}"), 0)
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A JSON attribute's value.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    item: &Item,
    name: &str,
) -> StoreResult<Option<T>> {
    get_s(item, name)
        .map(|raw| serde_json::from_str(raw).map_err(|e| corrupt(name, e)))
        .transpose()
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> AttributeValue {
    s(serde_json::to_string(value).unwrap_or_default())
}

/// The item of an entry as the sink first writes it.
pub(crate) fn entry(m: &Message) -> Item {
    let mut item = key(&partition(m.chat_id, m.change.is_some()), m.seq);
    item.insert("id".into(), s(m.id.to_string()));
    item.insert("a".into(), s(m.author.id.to_string()));
    item.insert("t".into(), s(m.content.as_str()));
    item.insert("at".into(), n(ms(m.created_at)));
    if let Some(k) = &m.client_msg_id {
        item.insert("k".into(), s(k.as_str()));
    }
    if let Some(change) = &m.change {
        item.insert("ch".into(), to_json(change));
    }
    if let Some(quote) = &m.reply_to {
        item.insert("rp".into(), to_json(quote));
    }
    if !m.mentions.users.is_empty() {
        item.insert("mn".into(), to_json(&m.mentions.users));
    }
    if m.mentions.everyone {
        item.insert("ev".into(), AttributeValue::Bool(true));
    }
    if let Some(at) = m.state.deleted_at {
        item.insert("dl".into(), n(ms(at)));
    }
    if let Some(notice) = &m.notice {
        item.insert("nt".into(), to_json(notice));
    }
    item
}

/// The pointer item of an entry.
pub(crate) fn pointer(m: &Message) -> Item {
    let mut item = pointer_key(m.id);
    item.insert("p".into(), s(partition(m.chat_id, m.change.is_some())));
    item.insert("n".into(), n(m.seq));
    item
}

/// An entry read back, with its author's id (the caller re-hydrates names).
pub(crate) fn decode(item: &Item) -> StoreResult<(Message, UserId)> {
    let text = |name: &str| get_s(item, name).ok_or_else(|| corrupt("item", format!("no {name}")));
    let partition = text("c")?;
    let chat: ChatId = partition
        .trim_end_matches("#c")
        .parse()
        .map_err(|_| corrupt("chat id", partition))?;
    let id: MessageId = text("id")?
        .parse()
        .map_err(|_| corrupt("message id", partition))?;
    let author: UserId = text("a")?.parse().map_err(|_| corrupt("author", id))?;
    let at = |name: &str| get_n(item, name).map(from_ms).transpose();
    let message = Message {
        id,
        chat_id: chat,
        seq: get_n(item, "s").ok_or_else(|| corrupt("seq", id))?,
        author: Author {
            id: author,
            username: Username::from_trusted(String::new()),
            display_name: DisplayName::from_trusted(String::new()),
        },
        content: MessageContent::from_trusted(text("t")?.to_owned()),
        client_msg_id: get_s(item, "k").map(|k| ClientMsgId::from_trusted(k.to_owned())),
        created_at: at("at")?.ok_or_else(|| corrupt("created", id))?,
        change: json(item, "ch")?,
        reply_to: json::<Quote>(item, "rp")?,
        mentions: Mentions {
            users: json(item, "mn")?.unwrap_or_default(),
            everyone: item
                .get("ev")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        },
        state: MessageState {
            edited_at: at("ed")?,
            deleted_at: at("dl")?,
            reactions: json(item, "rx")?.unwrap_or_default(),
        },
        notice: json(item, "nt")?,
    };
    Ok((message, author))
}
