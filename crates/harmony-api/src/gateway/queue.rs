//! A session's queue: frames the hub delivered that the session has not written yet. The hub
//! pushes without waiting (a full queue means "too slow": the session is told to close with
//! 4008 and resume); the session pops.
//!
//! Idle sessions are the common case (thousands per process), so an empty queue holds no
//! buffer: it is allocated on the first frame and given back once a burst has drained. A tokio
//! `mpsc` channel allocates a 32-slot block and a cache-padded channel up front, about 770
//! bytes per session whether or not a frame ever comes (harmony-bench S1).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use super::hub::Outbound;

/// A drained queue keeps a buffer of at most this many slots; a larger one (left by a burst) is
/// freed, so a session that once fell behind does not hold that memory while it idles.
const KEPT_SLOTS: usize = 16;

pub struct Queue {
    frames: Mutex<VecDeque<Outbound>>,
    /// The session's task, when it waits for a frame.
    waiting: AtomicWaker,
    capacity: usize,
    /// When the client last sent anything (a frame, a pong), Unix seconds: the hub's sweep
    /// closes a session that stayed silent through its pings.
    heard: AtomicI64,
}

impl Queue {
    /// A queue that holds at most `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Self {
            frames: Mutex::new(VecDeque::new()),
            waiting: AtomicWaker::new(),
            capacity,
            heard: AtomicI64::new(time::OffsetDateTime::now_utc().unix_timestamp()),
        }
    }

    /// Notes that the client was heard at `now` (Unix seconds).
    pub fn hear(&self, now: i64) {
        self.heard.store(now, Ordering::Relaxed);
    }

    /// When the client was last heard (Unix seconds).
    pub fn last_heard(&self) -> i64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// Queues a frame and wakes the session; false when the queue is full (the frame is not
    /// queued).
    pub fn push(&self, frame: Outbound) -> bool {
        {
            let mut frames = self.lock();
            if frames.len() >= self.capacity {
                return false;
            }
            frames.push_back(frame);
        }
        self.waiting.wake();
        true
    }

    /// The oldest queued frame, if any.
    pub fn pop(&self) -> Option<Outbound> {
        let mut frames = self.lock();
        let frame = frames.pop_front();
        if frames.is_empty() && frames.capacity() > KEPT_SLOTS {
            *frames = VecDeque::new();
        }
        frame
    }

    /// Waits for the next frame. Only the session calls this (one waiter per queue).
    pub async fn next(&self) -> Outbound {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Outbound> {
        if let Some(frame) = self.pop() {
            return Poll::Ready(frame);
        }
        self.waiting.register(cx.waker());
        // A push between the first look and the registration woke no one: look again.
        match self.pop() {
            Some(frame) => Poll::Ready(frame),
            None => Poll::Pending,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Outbound>> {
        self.frames.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::ws::Utf8Bytes;

    use super::*;
    use crate::gateway::hub::Frame;

    fn frame(seq: i64) -> Outbound {
        Arc::new(Frame {
            message: Some((harmony_core::ChatId::new(), seq)),
            json: Utf8Bytes::from(seq.to_string()),
            ping: false,
        })
    }

    fn seq(frame: &Outbound) -> i64 {
        frame.message.map_or(-1, |(_, seq)| seq)
    }

    #[test]
    fn frames_come_out_in_order_and_a_full_queue_refuses_more() {
        let queue = Queue::new(3);
        assert!(queue.push(frame(1)) && queue.push(frame(2)) && queue.push(frame(3)));
        assert!(!queue.push(frame(4)), "full: the hub closes the session");
        assert_eq!(queue.pop().as_ref().map(seq), Some(1));
        assert!(queue.push(frame(5)), "room again after a pop");
        let rest: Vec<i64> = std::iter::from_fn(|| queue.pop())
            .map(|f| seq(&f))
            .collect();
        assert_eq!(rest, vec![2, 3, 5]);
    }

    #[test]
    fn an_empty_queue_holds_no_buffer_and_a_drained_burst_gives_its_buffer_back() {
        let queue = Queue::new(1_000);
        assert_eq!(
            queue.lock().capacity(),
            0,
            "nothing allocated before a frame"
        );
        for n in 0..100 {
            assert!(queue.push(frame(n)));
        }
        while queue.pop().is_some() {}
        assert_eq!(queue.lock().capacity(), 0, "the burst's buffer is freed");
        queue.push(frame(1));
        queue.pop();
        assert!(
            queue.lock().capacity() <= KEPT_SLOTS,
            "a small buffer is kept for a steady trickle"
        );
    }

    #[tokio::test]
    async fn a_waiting_session_wakes_on_a_push() {
        let queue = Arc::new(Queue::new(8));
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { seq(&queue.next().await) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "nothing queued yet");
        queue.push(frame(7));
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(got.ok().and_then(Result::ok), Some(7));
    }
}
