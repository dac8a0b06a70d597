//! `HistoryStore` on DynamoDB. Writes are the sink's: new entries in `BatchWriteItem`s of 25
//! (items the service left unprocessed are sent again with growing pauses, so a throttled
//! table slows the sink down instead of losing or spinning), then each change applied to its
//! target with a conditional update (`crate::apply`). Reads: a page is one Query of the chat's
//! message partition; resume merges it with the change partition; lookups by id go through the
//! entry's pointer item, read consistently.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest};
use harmony_core::authors::Authors;
use harmony_core::model::Message;
use harmony_core::ports::{
    ChatActivity, HistoryPage, HistoryStore, PageCursor, StoreError, StoreResult,
};
use harmony_core::{ChatId, MessageId, UserId};

use crate::item::{self, get_n, get_s, json, n, s, Item};
use crate::{corrupt, unavailable, DynamoHistory};

/// Items per `BatchWriteItem`, and keys per `BatchGetItem`: the service's limits.
const WRITE_BATCH: usize = 25;
const GET_BATCH: usize = 100;
/// Rounds of unprocessed items before the write is reported unavailable (the sink retries it).
const WRITE_ROUNDS: u32 = 12;

fn put(item: Item) -> StoreResult<WriteRequest> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| corrupt("put", e))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn delete(key: Item) -> StoreResult<WriteRequest> {
    let delete = DeleteRequest::builder()
        .set_key(Some(key))
        .build()
        .map_err(|e| corrupt("delete", e))?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// A pause that doubles each round, with jitter so throttled writers do not retry in step.
fn backoff(round: u32) -> Duration {
    let base = 25u64.saturating_mul(1 << round.min(8));
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (base / 2 + 1);
    Duration::from_millis((base + jitter).min(5_000))
}

impl DynamoHistory {
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// Writes every request, sending back what the service left unprocessed until it is done.
    async fn write_all(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in requests.chunks(WRITE_BATCH) {
            let mut pending = chunk.to_vec();
            for round in 0.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(self.table(), pending)
                    .send()
                    .await
                    .map_err(unavailable)?;
                pending = out
                    .unprocessed_items()
                    .and_then(|m| m.get(self.table()))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if round >= WRITE_ROUNDS {
                    return Err(StoreError::Unavailable(format!(
                        "dynamodb kept {} writes unprocessed (throttled)",
                        pending.len()
                    )));
                }
                tracing::debug!(
                    left = pending.len(),
                    round,
                    "dynamodb left writes unprocessed; backing off"
                );
                tokio::time::sleep(backoff(round)).await;
            }
        }
        Ok(())
    }

    /// The items at `keys` that exist, read consistently.
    pub(crate) async fn get_all(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(GET_BATCH) {
            let mut pending = chunk.to_vec();
            for round in 0.. {
                let ask = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| corrupt("keys", e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(self.table(), ask)
                    .send()
                    .await
                    .map_err(unavailable)?;
                if let Some(items) = out.responses().and_then(|r| r.get(self.table())) {
                    found.extend(items.iter().cloned());
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|m| m.get(self.table()))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if round >= WRITE_ROUNDS {
                    return Err(StoreError::Unavailable(
                        "dynamodb kept reads unprocessed".into(),
                    ));
                }
                tokio::time::sleep(backoff(round)).await;
            }
        }
        Ok(found)
    }

    /// One item by key, read consistently.
    pub(crate) async fn get(&self, key: Item) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item().cloned())
    }

    /// Where an entry is: its partition and seq, from its pointer.
    pub(crate) async fn locate(&self, id: MessageId) -> StoreResult<Option<(String, i64)>> {
        let found = self.get(item::pointer_key(id)).await?;
        Ok(found.and_then(|p| Some((get_s(&p, "p")?.to_owned(), get_n(&p, "n")?))))
    }

    /// Items of `partition` past `seq` (`forward`: above it, ascending; else below, descending),
    /// at most `limit` (all when `None`, page by page).
    async fn query(
        &self,
        partition: &str,
        seq: i64,
        forward: bool,
        limit: Option<i32>,
    ) -> StoreResult<Vec<Item>> {
        let condition = if forward {
            "#c = :c AND #s > :s"
        } else {
            "#c = :c AND #s < :s"
        };
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(self.table())
                .key_condition_expression(condition)
                .expression_attribute_names("#c", "c")
                .expression_attribute_names("#s", "s")
                .expression_attribute_values(":c", s(partition))
                .expression_attribute_values(":s", n(seq))
                .scan_index_forward(forward)
                .consistent_read(true)
                .set_limit(limit.map(|l| l - i32::try_from(out.len()).unwrap_or(0)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            out.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            let full = limit.is_some_and(|l| out.len() >= usize::try_from(l).unwrap_or(0));
            if start.is_none() || full {
                return Ok(out);
            }
        }
    }

    /// Entries with their authors (and their quotes' authors) named as they are now.
    async fn hydrate(&self, items: &[Item]) -> StoreResult<Vec<Message>> {
        let mut authors = Authors::new(self.profiles.as_ref());
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            let (mut m, author) = item::decode(it)?;
            m.author = authors.get(author, m.id).await?;
            if let Some(quote) = &mut m.reply_to {
                quote.author = authors.get(quote.author.id, m.id).await?;
            }
            out.push(m);
        }
        Ok(out)
    }

    /// The seq of a message (not a change) of `chat`.
    pub(crate) async fn message_seq(
        &self,
        chat: ChatId,
        id: MessageId,
    ) -> StoreResult<Option<i64>> {
        let at = self.locate(id).await?;
        Ok(at.and_then(|(p, seq)| (p == item::partition(chat, false)).then_some(seq)))
    }
}

#[async_trait]
impl HistoryStore for DynamoHistory {
    async fn upsert_messages(&self, messages: &[Message]) -> StoreResult<Vec<MessageId>> {
        let keys: Vec<Item> = messages
            .iter()
            .map(|m| item::key(&item::partition(m.chat_id, m.change.is_some()), m.seq))
            .collect();
        let stored: HashMap<(String, i64), String> = self
            .get_all(keys)
            .await?
            .iter()
            .filter_map(|it| {
                let at = (get_s(it, "c")?.to_owned(), get_n(it, "s")?);
                Some((at, get_s(it, "id")?.to_owned()))
            })
            .collect();
        let mut writes = Vec::new();
        let mut refused = Vec::new();
        for m in messages {
            let at = (item::partition(m.chat_id, m.change.is_some()), m.seq);
            match stored.get(&at) {
                Some(id) if *id == m.id.to_string() => {}
                Some(_) => refused.push(m.id),
                None => {
                    writes.push(put(item::entry(m))?);
                    writes.push(put(item::pointer(m))?);
                }
            }
        }
        self.write_all(writes).await?;
        // Replies and changes take effect on their targets with conditional updates, replays
        // included: one whose effect is there already changes nothing.
        for m in messages.iter().filter(|m| !refused.contains(&m.id)) {
            crate::apply::link_reply(self, m).await?;
            crate::apply::apply(self, m).await?;
        }
        Ok(refused)
    }

    async fn page(
        &self,
        chat: ChatId,
        cursor: PageCursor,
        limit: u32,
    ) -> StoreResult<Option<HistoryPage>> {
        let fetch = i32::try_from(limit + 1).unwrap_or(i32::MAX);
        let partition = item::partition(chat, false);
        let (seq, forward) = match cursor {
            PageCursor::Latest => (i64::MAX, false),
            PageCursor::Before(id) | PageCursor::After(id) => {
                let Some(seq) = self.message_seq(chat, id).await? else {
                    return Ok(None);
                };
                (seq, matches!(cursor, PageCursor::After(_)))
            }
        };
        let items = self.query(&partition, seq, forward, Some(fetch)).await?;
        let messages = self.hydrate(&items).await?;
        Ok(Some(HistoryPage::from_fetch(messages, limit, forward)))
    }

    async fn messages_after_seq(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let limit_i = i32::try_from(limit).unwrap_or(i32::MAX);
        let mut items = self
            .query(
                &item::partition(chat, false),
                after_seq,
                true,
                Some(limit_i),
            )
            .await?;
        items.extend(
            self.query(&item::partition(chat, true), after_seq, true, Some(limit_i))
                .await?,
        );
        items.sort_by_key(|it| get_n(it, "s").unwrap_or(i64::MAX));
        items.truncate(limit as usize);
        self.hydrate(&items).await
    }

    async fn message(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<Message>> {
        let Some((partition, seq)) = self.locate(id).await? else {
            return Ok(None);
        };
        if partition.trim_end_matches("#c") != chat.to_string() {
            return Ok(None);
        }
        let found = self.get(item::key(&partition, seq)).await?;
        Ok(self
            .hydrate(&found.into_iter().collect::<Vec<_>>())
            .await?
            .pop())
    }

    async fn activity(
        &self,
        user: UserId,
        chats: &[(ChatId, i64)],
    ) -> StoreResult<Vec<ChatActivity>> {
        let me = user.to_string();
        let mut out = Vec::with_capacity(chats.len());
        for (chat, marker) in chats {
            let partition = item::partition(*chat, false);
            let last = self.query(&partition, i64::MAX, false, Some(1)).await?;
            let last_message = self.hydrate(&last).await?.pop();
            let (mut unread, mut mentioned) = (0u64, 0u64);
            for it in self.query(&partition, *marker, true, None).await? {
                if get_s(&it, "a") == Some(me.as_str()) {
                    continue;
                }
                unread += 1;
                let everyone = it.get("ev").and_then(|v| v.as_bool().ok()).copied();
                let users: Vec<UserId> = json(&it, "mn")?.unwrap_or_default();
                if everyone == Some(true) || users.contains(&user) {
                    mentioned += 1;
                }
            }
            out.push(ChatActivity {
                last_message,
                unread_count: unread,
                mention_count: mentioned,
            });
        }
        Ok(out)
    }

    async fn purge_chat(&self, chat: ChatId, batch: u32, event: uuid::Uuid) -> StoreResult<u64> {
        let ledger = item::key(&format!("purged#{event}"), 0);
        if self.get(ledger.clone()).await?.is_some() {
            return Ok(0);
        }
        let limit = i32::try_from(batch).unwrap_or(i32::MAX);
        let mut deletes = Vec::new();
        for change in [false, true] {
            let partition = item::partition(chat, change);
            for it in self.query(&partition, 0, true, Some(limit)).await? {
                let seq = get_n(&it, "s").ok_or_else(|| corrupt("seq", &partition))?;
                deletes.push(delete(item::key(&partition, seq))?);
                if let Some(id) = get_s(&it, "id").and_then(|id| id.parse().ok()) {
                    deletes.push(delete(item::pointer_key(id))?);
                }
            }
        }
        let purged = deletes.len() as u64 / 2;
        if deletes.is_empty() {
            self.write_all(vec![put(ledger)?]).await?;
        } else {
            self.write_all(deletes).await?;
        }
        Ok(purged)
    }
}
