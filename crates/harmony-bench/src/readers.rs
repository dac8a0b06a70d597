//! Receiving: a few tasks, each polling many connections, check every delivery (per connection
//! and chat: no gap, no duplicate, no reordering) and time it against the moment the message was
//! due, which the sender wrote into the message (`"<key> <index> <due µs>"`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::stream::SelectAll;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{Protocol, Ws};

/// Connections per receiving task.
pub const PER_TASK: usize = 256;

/// One delivery as the reader understood it.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The chat (Harmony) or the sender's stream key (peers).
    pub key: &'a str,
    /// Harmony's `seq`; the sender's index for peers.
    pub seq: i64,
    /// The seq of the chat's message before this one (Harmony's `prev_seq`, which may be
    /// unknown); cluster seqs are partition offsets, so only this tells a gap.
    pub prev: Option<i64>,
    /// The sender's index of the message (last-receiver bookkeeping).
    pub index: usize,
    /// When the message was due, µs after the run's start.
    pub due_us: u64,
}

#[derive(Deserialize)]
struct HarmonyFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    message: Option<HarmonyMessage<'a>>,
    prev_seq: Option<i64>,
}

#[derive(Deserialize)]
struct HarmonyMessage<'a> {
    #[serde(borrow)]
    chat_id: &'a str,
    seq: i64,
    #[serde(borrow)]
    content: &'a str,
}

/// The body the sender writes: `"<key> <index> <due µs>"`.
pub fn body(key: &str, index: usize, due_us: u64) -> String {
    format!("{key} {index} {due_us}")
}

fn parse_body(body: &str) -> Option<(&str, usize, u64)> {
    let mut parts = body.split(' ');
    let key = parts.next()?;
    let index = parts.next()?.parse().ok()?;
    let due = parts.next()?.parse().ok()?;
    Some((key, index, due))
}

/// Understands one text frame; `None` for frames that are not deliveries (membership notices,
/// `resumed`, pongs).
pub fn parse(protocol: Protocol, text: &str) -> Option<Delivery<'_>> {
    match protocol {
        Protocol::Harmony => {
            let frame: HarmonyFrame = serde_json::from_str(text).ok()?;
            if frame.kind != "message" {
                return None;
            }
            let m = frame.message?;
            let (_, index, due_us) = parse_body(m.content)?;
            Some(Delivery {
                key: m.chat_id,
                seq: m.seq,
                prev: frame.prev_seq,
                index,
                due_us,
            })
        }
        // Peers relay the body as it is; Socket.IO wraps it as `42["m","<body>"]`.
        Protocol::Plain => peer_delivery(text),
        Protocol::SocketIo => peer_delivery(text.strip_prefix("42[\"m\",\"")?.strip_suffix("\"]")?),
    }
}

/// A peer's delivery: the sender's index is its order.
fn peer_delivery(body: &str) -> Option<Delivery<'_>> {
    let (key, index, due_us) = parse_body(body)?;
    Some(Delivery {
        key,
        seq: index as i64,
        prev: Some(index as i64 - 1),
        index,
        due_us,
    })
}

/// What a group of readers saw.
pub struct Seen {
    pub deliveries: u64,
    /// Send-due → arrival of every delivery, µs.
    pub latency: Histogram<u64>,
    /// Per message index: the latest arrival at any receiver, µs after the start.
    pub last_arrival: Vec<u64>,
    /// Per message index: when it was due.
    pub due: Vec<u64>,
    /// Gaps, duplicates and reorderings, described.
    pub faults: Vec<String>,
    /// Connections that did not get everything they should have.
    pub short: usize,
}

impl Seen {
    fn new(messages: usize) -> anyhow::Result<Self> {
        Ok(Self {
            deliveries: 0,
            latency: Histogram::new(3)?,
            last_arrival: vec![0; messages],
            due: vec![0; messages],
            faults: Vec::new(),
            short: 0,
        })
    }

    fn merge(&mut self, other: Seen) -> anyhow::Result<()> {
        self.deliveries += other.deliveries;
        self.latency.add(&other.latency)?;
        for (mine, theirs) in self.last_arrival.iter_mut().zip(&other.last_arrival) {
            *mine = (*mine).max(*theirs);
        }
        for (mine, theirs) in self.due.iter_mut().zip(&other.due) {
            *mine = (*mine).max(*theirs);
        }
        if self.faults.len() < 20 {
            self.faults.extend(other.faults.into_iter().take(20));
        }
        self.short += other.short;
        Ok(())
    }

    /// Last-receiver latency per message, µs.
    pub fn last_receiver(&self) -> anyhow::Result<Histogram<u64>> {
        let mut h = Histogram::new(3)?;
        for (due, last) in self.due.iter().zip(&self.last_arrival) {
            if *last > 0 {
                h.record(last.saturating_sub(*due).max(1))?;
            }
        }
        Ok(h)
    }

    pub fn clean(&self) -> bool {
        self.faults.is_empty() && self.short == 0
    }
}

/// Receiving tasks over `conns`; each connection expects `per_conn` deliveries of messages with
/// indexes below `messages`. They end when everything arrived or at `deadline`.
pub struct Readers {
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Seen>>>,
    messages: usize,
}

impl Readers {
    pub fn start(
        conns: Vec<Ws>,
        protocol: Protocol,
        per_conn: u64,
        messages: usize,
        started: Instant,
        deadline: Duration,
    ) -> Self {
        let mut tasks = Vec::new();
        let mut conns = conns.into_iter().peekable();
        while conns.peek().is_some() {
            let batch: Vec<Ws> = conns.by_ref().take(PER_TASK).collect();
            tasks.push(tokio::spawn(read_batch(
                batch, protocol, per_conn, messages, started, deadline,
            )));
        }
        Self { tasks, messages }
    }

    pub async fn finish(self) -> anyhow::Result<Seen> {
        let mut seen = Seen::new(self.messages)?;
        for task in self.tasks {
            seen.merge(task.await??)?;
        }
        Ok(seen)
    }
}

async fn read_batch(
    conns: Vec<Ws>,
    protocol: Protocol,
    per_conn: u64,
    messages: usize,
    started: Instant,
    deadline: Duration,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::new(messages)?;
    let count = conns.len();
    let mut all: SelectAll<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, ws)| ws.map(move |m| (i, m)))
        .collect();
    let mut got = vec![0u64; count];
    let mut last: Vec<HashMap<String, i64>> = vec![HashMap::new(); count];
    let mut remaining = count;
    let until = tokio::time::Instant::from_std(started + deadline);
    while remaining > 0 {
        let next = match tokio::time::timeout_at(until, all.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(next)) => next,
        };
        let (i, text) = match next {
            (i, Ok(Message::Text(text))) => (i, text),
            (_, Ok(_)) => continue,
            (i, Err(e)) => {
                seen.faults.push(format!("connection {i}: {e}"));
                continue;
            }
        };
        let now = started.elapsed().as_micros() as u64;
        let Some(d) = parse(protocol, text.as_str()) else {
            continue;
        };
        seen.deliveries += 1;
        seen.latency.record(now.saturating_sub(d.due_us).max(1))?;
        if let Some(slot) = seen.last_arrival.get_mut(d.index) {
            *slot = (*slot).max(now);
            seen.due[d.index] = d.due_us;
        }
        match last[i].get_mut(d.key) {
            Some(prev) if d.prev.map_or(d.seq <= *prev, |p| p != *prev) => {
                seen.faults.push(format!(
                    "connection {i}, chat {}: seq {} after {}",
                    d.key, d.seq, prev
                ));
                *prev = d.seq;
            }
            Some(prev) => *prev = d.seq,
            None => {
                last[i].insert(d.key.to_owned(), d.seq);
            }
        }
        got[i] += 1;
        if got[i] == per_conn {
            remaining -= 1;
        }
    }
    seen.short = got.iter().filter(|g| **g < per_conn).count();
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_protocol() {
        let harmony = r#"{"type":"message","prev_seq":6,"message":{"id":"m","chat_id":"c1","seq":7,"content":"c1 3 1500","author":{"id":"u"}}}"#;
        assert_eq!(
            parse(Protocol::Harmony, harmony),
            Some(Delivery {
                key: "c1",
                seq: 7,
                prev: Some(6),
                index: 3,
                due_us: 1500
            })
        );
        assert_eq!(parse(Protocol::Harmony, r#"{"type":"pong"}"#), None);
        let plain = parse(Protocol::Plain, "s 4 99").map(|d| (d.seq, d.due_us));
        assert_eq!(plain, Some((4, 99)));
        let sio = parse(Protocol::SocketIo, r#"42["m","s 5 100"]"#).map(|d| (d.index, d.due_us));
        assert_eq!(sio, Some((5, 100)));
        assert_eq!(parse(Protocol::SocketIo, "2"), None);
    }
}
