//! The fan-out's publisher. For each message, one script adds it to its chat's window (trimming
//! the oldest beyond the window size) and publishes the event to the chat's channel, both in
//! `harmony-protocol`'s gateway encoding. A batch is one pipelined round trip. A delete drops
//! the chat's window before it is added: the window holds the deleted words, and resumes read
//! the sequencer's scrubbed records until the window fills again (decision record 0004).

use async_trait::async_trait;
use harmony_core::events::GatewayEvent;
use harmony_core::ports::{GatewayPublisher, StoreResult};
use harmony_protocol::gateway::{encode_event, message_event, PlacedMessageV1};
use redis::aio::ConnectionManager;
use redis::Script;

use crate::{unavailable, Keys};

/// KEYS: window. ARGV: seq, message JSON, window size, channel, event JSON, "1" to drop the
/// window first.
const PUBLISH_MESSAGE: &str = r#"
if ARGV[6] == '1' then redis.call('DEL', KEYS[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local size = redis.call('ZCARD', KEYS[1])
local keep = tonumber(ARGV[3])
if size > keep then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - keep - 1) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"#;

pub struct RedisFanout {
    conn: ConnectionManager,
    keys: Keys,
    window_size: usize,
    script: Script,
}

impl RedisFanout {
    pub fn new(conn: ConnectionManager, keys: Keys, window_size: usize) -> Self {
        Self {
            conn,
            keys,
            window_size,
            script: Script::new(PUBLISH_MESSAGE),
        }
    }
}

#[async_trait]
impl GatewayPublisher for RedisFanout {
    async fn publish(&self, events: &[GatewayEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for event in events {
            match event {
                GatewayEvent::Message { message, .. } => {
                    let chat = message.chat_id;
                    let entry = PlacedMessageV1::encode(message);
                    let event = message_event(&entry);
                    pipe.cmd("EVALSHA")
                        .arg(self.script.get_hash())
                        .arg(1)
                        .arg(self.keys.window(chat))
                        .arg(message.seq)
                        .arg(entry)
                        .arg(self.window_size)
                        .arg(self.keys.chat_channel(chat))
                        .arg(event)
                        .arg(u8::from(matches!(
                            message.change,
                            Some(harmony_core::changes::Change::Delete { .. })
                        )))
                        .ignore();
                }
                other => {
                    pipe.publish(self.keys.control_channel(), encode_event(other))
                        .ignore();
                }
            }
        }
        match pipe.query_async::<()>(&mut conn).await {
            // The script is loaded once per server, on first use or after Redis restarted; the
            // batch is then sent again (control notices may go out twice: they are idempotent).
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                self.script
                    .prepare_invoke()
                    .load_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
            }
            other => other.map_err(unavailable),
        }
    }
}

/// Live notices (typing, a user's own notices) on the same control channel: best effort, so a
/// failure is logged here and not passed on to the request that caused it.
pub struct RedisNotices(pub std::sync::Arc<RedisFanout>);

#[async_trait]
impl GatewayPublisher for RedisNotices {
    async fn publish(&self, events: &[GatewayEvent]) -> StoreResult<()> {
        if let Err(e) = self.0.publish(events).await {
            tracing::warn!(error = %e, notices = events.len(), "live notices not published");
        }
        Ok(())
    }
}
