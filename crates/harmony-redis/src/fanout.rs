//! The fan-out's publisher. For each message, one script adds it to its chat's window (trimming
//! the oldest beyond the window size and raising the floor; a window that starts empty sets
//! the floor just below its first message, since it cannot know what came before), reads the previous message's seq
//! from the window (`prev_seq`, or nil when the window does not have it), raises the head, and
//! publishes the frame to the chat's channel. A batch is one pipelined round trip.

use async_trait::async_trait;
use harmony_core::events::GatewayEvent;
use harmony_core::ports::{GatewayPublisher, StoreError, StoreResult};
use redis::aio::ConnectionManager;
use redis::Script;

use crate::{unavailable, Keys};

/// KEYS: window, heads, floors. ARGV: seq, message JSON, chat id, window size, channel,
/// event JSON with a `__PREV__` placeholder for `prev_seq`.
const PUBLISH_MESSAGE: &str = r#"
local seq = tonumber(ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  -- A window starting now (new chat, or Redis lost its data) knows nothing below this message
  -- (seq 1 is its partition's first message: nothing lies below it).
  local floor = redis.call('HGET', KEYS[3], ARGV[3])
  if not floor or seq - 1 > tonumber(floor) then redis.call('HSET', KEYS[3], ARGV[3], seq - 1) end
end
redis.call('ZADD', KEYS[1], seq, ARGV[2])
local size = redis.call('ZCARD', KEYS[1])
local keep = tonumber(ARGV[4])
if size > keep then
  local evicted = redis.call('ZRANGE', KEYS[1], 0, size - keep - 1, 'WITHSCORES')
  local top = tonumber(evicted[#evicted])
  local floor = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
  if top > floor then redis.call('HSET', KEYS[3], ARGV[3], top) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - keep - 1)
end
local head = tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '0')
if seq > head then redis.call('HSET', KEYS[2], ARGV[3], seq) end
local prev = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
local prev_seq = 'null'
if #prev == 2 then prev_seq = prev[2] end
local frame = string.gsub(ARGV[6], '"__PREV__"', prev_seq, 1)
redis.call('PUBLISH', ARGV[5], frame)
return prev_seq
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

fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
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
                    // `prev_seq` comes from the window, inside the script.
                    let frame = GatewayEvent::Message {
                        prev_seq: None,
                        message: message.clone(),
                    };
                    let frame =
                        json(&frame)?.replacen("\"prev_seq\":null", "\"prev_seq\":\"__PREV__\"", 1);
                    pipe.cmd("EVALSHA")
                        .arg(self.script.get_hash())
                        .arg(3)
                        .arg(self.keys.window(chat))
                        .arg(self.keys.heads())
                        .arg(self.keys.floors())
                        .arg(message.seq)
                        .arg(json(message)?)
                        .arg(chat.to_string())
                        .arg(self.window_size)
                        .arg(self.keys.chat_channel(chat))
                        .arg(frame)
                        .ignore();
                }
                other => {
                    pipe.publish(self.keys.control_channel(), json(other)?)
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
