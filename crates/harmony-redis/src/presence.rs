//! The cluster's presence book: what each gateway's sessions show of each user, in Redis, where
//! a gateway's word counts only while the gateway keeps renewing its liveness.
//!
//! - `presence:{user}`, a hash: `n:{node}` → `online`/`idle` for every gateway with a shown
//!   session of the user; `s`, the status last announced; `seen`, when the user went offline
//!   (Unix ms, Redis's clock). Kept 30 days after the last change, for "last seen".
//! - `presence:nodes`, a sorted set: gateway → until when its word counts (Unix ms).
//! - `presence:node:{node}`, a set: the users a gateway has a word about, so a dead gateway's
//!   users can be found.
//!
//! Every change runs as one script, so the combined status and the announced one cannot drift
//! between two gateways. A gateway that stops renewing (killed, cut off) is swept by any other
//! gateway's upkeep: its fields go and the users left with no live gateway go offline, in at
//! most the liveness expiry plus one upkeep period. Nothing here is the truth of anything but
//! presence: if Redis loses it all, each gateway notices at its next upkeep (its own liveness
//! is gone) and says again what its sessions show.
//!
//! The scripts touch keys they are not given (the users of a dead gateway), which standalone
//! Redis (and a primary with replicas) allows and Redis Cluster does not.

use async_trait::async_trait;
use harmony_core::ports::{PresenceBook, StoreError, StoreResult, Upkeep};
use harmony_core::presence::{Presence, Status};
use harmony_core::UserId;
use redis::aio::ConnectionManager;
use redis::Script;
use time::OffsetDateTime;

use crate::{unavailable, Keys};

/// How long a user's hash (and with it "last seen") is kept after its last change.
const RETENTION_MS: u64 = 30 * 24 * 3600 * 1000;
/// Users of a dead gateway cleared per script run (each run blocks Redis for its length).
const SWEEP_BATCH: u32 = 500;

/// Recomputes a user's status from the live gateways' words; returns `{changed, status, seen}`.
const SETTLE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function settle(key, nodes, now, retention)
  local all = redis.call('HGETALL', key)
  local status = 'offline'
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'n:' then
      local alive = redis.call('ZSCORE', nodes, string.sub(all[i], 3))
      if alive and tonumber(alive) > now then
        if all[i + 1] == 'online' then status = 'online'
        elseif status == 'offline' then status = 'idle' end
      end
    end
  end
  local before = redis.call('HGET', key, 's') or 'offline'
  local changed = 0
  if before ~= status then
    changed = 1
    redis.call('HSET', key, 's', status)
    if status == 'offline' then redis.call('HSET', key, 'seen', now) end
    redis.call('PEXPIRE', key, retention)
  end
  return {changed, status, redis.call('HGET', key, 'seen') or ''}
end
"#;

/// KEYS: user hash, nodes, this node's users. ARGV: node, status, user, retention.
const SET: &str = r#"
local now = now_ms()
local field = 'n:' .. ARGV[1]
if ARGV[2] == 'offline' then
  redis.call('HDEL', KEYS[1], field)
  redis.call('SREM', KEYS[3], ARGV[3])
else
  redis.call('HSET', KEYS[1], field, ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
end
return settle(KEYS[1], KEYS[2], now, tonumber(ARGV[4]))
"#;

/// KEYS: nodes. ARGV: node, ttl. Returns `{forgot, dead nodes...}`.
const RENEW: &str = r#"
local now = now_ms()
local before = redis.call('ZSCORE', KEYS[1], ARGV[1])
local forgot = 0
if (not before) or tonumber(before) <= now then forgot = 1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local out = {forgot}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 20)) do
  table.insert(out, node)
end
return out
"#;

/// KEYS: nodes, the dead node's users. ARGV: dead node, user key prefix, retention, batch.
/// Returns `{done, user, status, seen, user, status, seen, ...}` for the users whose presence
/// changed.
const SWEEP: &str = r#"
local now = now_ms()
local alive = redis.call('ZSCORE', KEYS[1], ARGV[1])
if alive and tonumber(alive) > now then return {1} end
local users = redis.call('SPOP', KEYS[2], tonumber(ARGV[4]))
local out = {0}
for _, user in ipairs(users) do
  local key = ARGV[2] .. user
  redis.call('HDEL', key, 'n:' .. ARGV[1])
  local r = settle(key, KEYS[1], now, tonumber(ARGV[3]))
  if r[1] == 1 then
    table.insert(out, user)
    table.insert(out, r[2])
    table.insert(out, r[3])
  end
end
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  out[1] = 1
end
return out
"#;

pub struct RedisPresence {
    conn: ConnectionManager,
    keys: Keys,
    /// This gateway's name in the book: new for every process.
    node: String,
    /// How long this gateway's word counts without a renewal.
    ttl_ms: u64,
    set: Script,
    renew: Script,
    sweep: Script,
}

impl RedisPresence {
    pub fn new(conn: ConnectionManager, keys: Keys, ttl: std::time::Duration) -> Self {
        let with_settle = |body: &str| Script::new(&format!("{SETTLE}{body}"));
        Self {
            conn,
            keys,
            node: uuid::Uuid::new_v4().to_string(),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            set: with_settle(SET),
            renew: with_settle(RENEW),
            sweep: with_settle(SWEEP),
        }
    }

    /// Clears one dead gateway's words, a batch per script run; the changes it caused.
    async fn sweep_node(&self, node: &str) -> StoreResult<Vec<Presence>> {
        let mut changes = Vec::new();
        loop {
            let mut conn = self.conn.clone();
            let out: Vec<String> = self
                .sweep
                .key(self.keys.presence_nodes())
                .key(self.keys.presence_node(node))
                .arg(node)
                .arg(self.keys.presence_prefix())
                .arg(RETENTION_MS)
                .arg(SWEEP_BATCH)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let (done, rest) = out.split_first().ok_or_else(|| corrupt("an empty sweep"))?;
            for change in rest.chunks(3) {
                let [user, status, seen] = change else {
                    return Err(corrupt("a sweep's change"));
                };
                let user = user.parse().map_err(|_| corrupt("a user id"))?;
                changes.push(presence(user, status, seen)?);
            }
            if done == "1" {
                return Ok(changes);
            }
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redis presence: {what}"))
}

/// A presence from the strings Redis keeps.
fn presence(user: UserId, status: &str, seen: &str) -> StoreResult<Presence> {
    let status = Status::parse(status).ok_or_else(|| corrupt("a status"))?;
    let last_seen = if status == Status::Offline && !seen.is_empty() {
        let ms: i128 = seen.parse().map_err(|_| corrupt("a time"))?;
        OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok()
    } else {
        None
    };
    Ok(Presence {
        user_id: user,
        status,
        last_seen,
    })
}

#[async_trait]
impl PresenceBook for RedisPresence {
    async fn set(&self, user: UserId, here: Status) -> StoreResult<Option<Presence>> {
        let mut conn = self.conn.clone();
        let (changed, status, seen): (i64, String, String) = self
            .set
            .key(self.keys.presence(user))
            .key(self.keys.presence_nodes())
            .key(self.keys.presence_node(&self.node))
            .arg(&self.node)
            .arg(here.as_str())
            .arg(user.to_string())
            .arg(RETENTION_MS)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if changed == 0 {
            return Ok(None);
        }
        presence(user, &status, &seen).map(Some)
    }

    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.cmd("HMGET")
                .arg(self.keys.presence(*user))
                .arg("s")
                .arg("seen");
        }
        let mut conn = self.conn.clone();
        let found: Vec<(Option<String>, Option<String>)> =
            pipe.query_async(&mut conn).await.map_err(unavailable)?;
        users
            .iter()
            .zip(found)
            .map(|(user, (status, seen))| match status {
                Some(status) => presence(*user, &status, seen.as_deref().unwrap_or("")),
                None => Ok(Presence::unknown(*user)),
            })
            .collect()
    }

    async fn upkeep(&self) -> StoreResult<Upkeep> {
        let mut conn = self.conn.clone();
        let out: Vec<String> = self
            .renew
            .key(self.keys.presence_nodes())
            .arg(&self.node)
            .arg(self.ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let (forgot, dead) = out
            .split_first()
            .ok_or_else(|| corrupt("an empty renewal"))?;
        let mut changes = Vec::new();
        for node in dead.iter().filter(|n| **n != self.node) {
            changes.extend(self.sweep_node(node).await?);
        }
        if !changes.is_empty() {
            tracing::info!(
                changes = changes.len(),
                "cleared the presence of gateways that stopped"
            );
        }
        Ok(Upkeep {
            changes,
            forgot_us: forgot == "1",
        })
    }
}
