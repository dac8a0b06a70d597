//! The two ways into the SQLite file. Writes: one thread owns the only write connection and
//! group-commits whatever is waiting (one transaction, one fsync for the group; each write in
//! its own savepoint, so one that fails is undone alone). Reads: a few read connections, used
//! from tokio's blocking threads. Either way a call crosses threads once, whatever it runs.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harmony_core::ports::{LogDelivery, StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

/// Most writes committed by one transaction.
const MAX_GROUP: usize = 256;
/// Read connections (and reads running at once).
const READERS: usize = 4;
/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 64;

/// Which consumers a committed write must wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    Nobody,
    /// Something was appended to the message log.
    Log,
    /// Outbox events were written.
    Outbox,
}

/// What the writer publishes after a commit: the wake-ups consumers wait on, and the newest
/// log entries, so a consumer keeping up reads them from memory instead of from SQLite.
#[derive(Default)]
pub(crate) struct Wakes {
    pub log: Notify,
    pub outbox: Notify,
    pub tail: Mutex<Tail>,
    /// A delete committed in this group: the WAL still holds the deleted words in older page
    /// images, so the writer checkpoints and truncates it once the group commits.
    pub scrub_wal: std::sync::atomic::AtomicBool,
}

/// Entries kept in the log's tail.
const TAIL: usize = 4096;

/// The newest log entries in position order. Appends add theirs while their group runs; only
/// entries at or below `committed` are visible, and a group that fails takes its own back.
#[derive(Default)]
pub(crate) struct Tail {
    entries: VecDeque<LogDelivery>,
    committed: i64,
}

impl Tail {
    pub fn push(&mut self, entry: LogDelivery) {
        if self.entries.len() >= TAIL {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Empties, in the entries held, the content of a deleted message and of its edits, as the
    /// delete's transaction does in the database.
    pub fn scrub(&mut self, target: harmony_core::MessageId, at: time::OffsetDateTime) {
        for entry in &mut self.entries {
            let harmony_core::ports::LogEntry::Placed(m) = &mut entry.entry else {
                continue;
            };
            let edit = matches!(m.change, Some(harmony_core::changes::Change::Edit { target: t }) if t == target);
            if m.id == target || edit {
                m.content = harmony_core::values::MessageContent::from_trusted(String::new());
                m.state.deleted_at = Some(at);
            }
        }
    }

    fn commit(&mut self) {
        if let Some(last) = self.entries.back() {
            self.committed = last.position.offset;
        }
    }

    fn roll_back(&mut self) {
        while self
            .entries
            .back()
            .is_some_and(|e| e.position.offset > self.committed)
        {
            self.entries.pop_back();
        }
    }

    /// Up to `max` committed entries after `position`, or `None` when the tail does not reach
    /// back to `position + 1` (the caller reads SQLite instead).
    pub fn after(&self, position: i64, max: usize) -> Option<Vec<LogDelivery>> {
        let first = self.entries.front()?.position.offset;
        if first > position + 1 {
            return None;
        }
        let start = self
            .entries
            .partition_point(|e| e.position.offset <= position);
        Some(
            self.entries
                .range(start..)
                .take_while(|e| e.position.offset <= self.committed)
                .take(max)
                .cloned()
                .collect(),
        )
    }
}

/// A write waiting for the writer thread.
trait Job: Send {
    /// Runs the write inside the group's transaction, in a savepoint of its own. An error here
    /// is the savepoint machinery failing, which dooms the whole group.
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    /// Whom to wake if the group commits (nobody when this write failed).
    fn wake(&self) -> Wake;
    /// Answers the caller once the group's fate is known.
    fn answer(self: Box<Self>, group: Result<(), &str>);
}

struct Pending<T, F> {
    work: Option<F>,
    outcome: Option<StoreResult<T>>,
    wake: Wake,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let Some(work) = self.work.take() else {
            return Ok(());
        };
        conn.prepare_cached("SAVEPOINT job")?.execute([])?;
        let outcome = work(conn);
        if outcome.is_err() {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        conn.prepare_cached("RELEASE job")?.execute([])?;
        self.outcome = Some(outcome);
        Ok(())
    }

    fn wake(&self) -> Wake {
        match self.outcome {
            Some(Ok(_)) => self.wake,
            _ => Wake::Nobody,
        }
    }

    fn answer(self: Box<Self>, group: Result<(), &str>) {
        let answer = match (self.outcome, group) {
            // A write that failed on its own says why, whatever happened to the group.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(why)) => Err(StoreError::Unavailable(why.to_owned())),
            (None, Ok(())) => Err(StoreError::Unavailable("the write did not run".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// Opens a connection with the settings every connection here shares: WAL, `synchronous =
/// FULL` (a commit survives power loss, which is what a `201` promises), foreign keys on.
/// Only the writer sets the journal mode (a read-only connection cannot); it opens first.
fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    if !flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
        // What a delete removes is overwritten, not just unlinked (decision record 0004).
        conn.pragma_update(None, "secure_delete", true)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The write side: a handle on the writer thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Opens the write connection (creating the file) and starts its thread. The thread ends
    /// when the last handle is dropped, after committing what was sent before.
    pub fn start(path: &Path, wakes: Arc<Wakes>) -> StoreResult<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = open(path, flags).map_err(unavailable)?;
        let (jobs, queue) = mpsc::channel(4 * MAX_GROUP);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, queue, &wakes))
            .map_err(|e| StoreError::Unavailable(format!("starting the SQLite writer: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `work` in the writer's next group; answers after that group committed (or with
    /// `work`'s own error, its changes undone).
    pub async fn write<T, F>(&self, wake: Wake, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            outcome: None,
            wake,
            reply,
        });
        let gone = || StoreError::Unavailable("the SQLite writer stopped".into());
        self.jobs.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Queues `work` without waiting for it (from synchronous code, such as a `Drop`). It is
    /// dropped with a warning when the queue is full or the writer stopped.
    pub fn write_detached<F>(&self, work: F)
    where
        F: FnOnce(&Connection) -> StoreResult<()> + Send + 'static,
    {
        let (reply, _) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            outcome: None,
            wake: Wake::Nobody,
            reply,
        });
        if let Err(e) = self.jobs.try_send(job) {
            tracing::warn!(error = %e, "a detached SQLite write was not queued");
        }
    }
}

fn write_loop(conn: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>, wakes: &Wakes) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_group(&conn, &mut group);
        if let Ok(mut tail) = wakes.tail.lock() {
            match committed {
                Ok(()) => tail.commit(),
                Err(_) => tail.roll_back(),
            }
        }
        if let Err(why) = &committed {
            tracing::warn!(error = %why, writes = group.len(), "group commit failed; nothing of it was written");
        } else {
            let (mut log, mut outbox) = (false, false);
            for job in &group {
                log |= job.wake() == Wake::Log;
                outbox |= job.wake() == Wake::Outbox;
            }
            if log {
                wakes.log.notify_waiters();
            }
            if outbox {
                wakes.outbox.notify_waiters();
            }
        }
        if committed.is_ok()
            && wakes
                .scrub_wal
                .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            truncate_wal(&conn);
        }
        let group_result = committed.as_ref().map(|_| ()).map_err(String::as_str);
        for job in group.drain(..) {
            job.answer(group_result);
        }
    }
}

/// Copies the WAL into the database and truncates it to nothing, so page images written before
/// a delete (holding the deleted words) are gone from disk. A reader holding an old snapshot
/// makes the checkpoint stop short; it is tried again for up to a second, then left to SQLite's
/// own checkpoints (logged).
fn truncate_wal(conn: &Connection) {
    for _ in 0..20 {
        let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        });
        match busy {
            Ok(0) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                tracing::warn!(error = %e, "truncating the WAL after a delete failed");
                return;
            }
        }
    }
    tracing::warn!("readers kept the WAL from being truncated after a delete; SQLite's next checkpoints overwrite it");
}

fn commit_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), String> {
    let mut run = || -> rusqlite::Result<()> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        for job in group.iter_mut() {
            job.run(conn)?;
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    };
    run().map_err(|e| {
        if !conn.is_autocommit() {
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %rollback, "rolling back a failed group commit");
            }
        }
        e.to_string()
    })
}

/// The read side: a few connections, each used by one blocking thread at a time.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Readers {
    pub fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::with_capacity(READERS)),
            permits: Semaphore::new(READERS),
        })
    }

    /// Runs `work` on a read connection, off the async threads. Each statement sees the
    /// database as of its start, so a write answered before the call is always seen.
    pub async fn read<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the database is closed".into()))?;
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.checkout()?;
            let out = work(&conn);
            readers.checkin(conn);
            out
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("a read failed: {e}")))?
    }

    fn checkout(&self) -> StoreResult<Connection> {
        let idle = self.idle.lock().map(|mut idle| idle.pop());
        match idle {
            Ok(Some(conn)) => Ok(conn),
            _ => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                open(&self.path, flags).map_err(unavailable)
            }
        }
    }

    /// Keeps at most `READERS` idle connections: a read whose caller went away keeps running
    /// after its permit is released, so now and then one more connection than that is open.
    fn checkin(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < READERS {
                idle.push(conn);
            }
        }
    }

    /// Stops new reads and drops the idle connections.
    pub fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harmony_core::model::{Author, Message};
    use harmony_core::ports::{LogEntry, LogPosition};
    use harmony_core::values::{DisplayName, MessageContent, Username};

    fn entry(offset: i64) -> LogDelivery {
        LogDelivery {
            position: LogPosition {
                partition: 0,
                offset,
            },
            entry: LogEntry::Placed(Message {
                id: harmony_core::MessageId::new(),
                chat_id: harmony_core::ChatId::new(),
                seq: offset,
                author: Author {
                    id: harmony_core::UserId::new(),
                    username: Username::from_trusted("ann".into()),
                    display_name: DisplayName::from_trusted("Ann".into()),
                },
                content: MessageContent::from_trusted("hi".into()),
                client_msg_id: None,
                created_at: harmony_core::now(),
                change: None,
                reply_to: None,
                mentions: Default::default(),
                state: Default::default(),
                notice: None,
            }),
        }
    }

    fn offsets(entries: Option<Vec<LogDelivery>>) -> Option<Vec<i64>> {
        entries.map(|e| e.iter().map(|d| d.position.offset).collect())
    }

    #[test]
    fn the_tail_shows_committed_entries_only_and_knows_what_it_lacks() {
        let mut tail = Tail::default();
        assert_eq!(offsets(tail.after(0, 10)), None, "empty: read SQLite");
        for offset in 5..=7 {
            tail.push(entry(offset));
        }
        assert_eq!(
            offsets(tail.after(4, 10)),
            Some(vec![]),
            "not committed yet"
        );
        tail.commit();
        assert_eq!(offsets(tail.after(4, 10)), Some(vec![5, 6, 7]));
        assert_eq!(offsets(tail.after(5, 1)), Some(vec![6]));
        assert_eq!(offsets(tail.after(7, 10)), Some(vec![]));
        assert_eq!(
            offsets(tail.after(3, 10)),
            None,
            "position 4 is not in the tail"
        );
        // A failed group takes back its entries; the next group reuses the positions.
        tail.push(entry(8));
        tail.roll_back();
        assert_eq!(offsets(tail.after(7, 10)), Some(vec![]));
        tail.push(entry(8));
        tail.commit();
        assert_eq!(offsets(tail.after(6, 10)), Some(vec![7, 8]));
        // Bounded: the oldest entries go first.
        for offset in 9..9 + TAIL as i64 {
            tail.push(entry(offset));
        }
        tail.commit();
        assert_eq!(offsets(tail.after(7, 1)), None);
        assert_eq!(offsets(tail.after(8, 1)), Some(vec![9]));
    }
}
