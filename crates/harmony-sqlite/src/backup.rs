//! Backups of a single node's database, taken while it serves, and restores into a stopped
//! node's data directory.
//!
//! A backup is `VACUUM INTO` from a connection of its own: one read transaction, so the copy is
//! the database as of one commit (WAL lets the node go on writing meanwhile), compacted, and
//! checked (`integrity_check`) before it is reported done. Everything a node needs is in it:
//! state, outbox, the message log with its consumers' positions, history. The signing key is not
//! (a restored node with a new key refuses old access tokens; clients refresh, as after 15
//! minutes anyway).
//!
//! A restore refuses a running node (the node holds `harmony.lock` in its data directory), checks
//! the backup the same way, keeps the database it replaces beside it, and moves the backup into
//! place; the node brings the schema up to date when it starts.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::MIGRATIONS;

/// What a backup or a restore found in the database it wrote.
#[derive(Debug)]
pub struct Summary {
    pub bytes: u64,
    pub schema_version: i64,
    pub users: i64,
    pub chats: i64,
    pub messages: i64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} MiB, schema {}, {} users, {} chats, {} messages",
            self.bytes as f64 / (1024.0 * 1024.0),
            self.schema_version,
            self.users,
            self.chats,
            self.messages
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("no database at {0}")]
    Missing(PathBuf),
    #[error("a harmony node is running on {0}; stop it before restoring")]
    Running(PathBuf),
    #[error("{path} is not a usable Harmony database: {reason}")]
    Unusable { path: PathBuf, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// The lock a node holds on its data directory while it runs: a second node, or a restore,
/// cannot take it.
pub fn lock_data_dir(dir: &Path) -> Result<File, BackupError> {
    let path = dir.join("harmony.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::Running(dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(format!("locking {}", path.display()))(e)),
    }
}

/// Copies the database at `db` into a new file `to`, consistent as of one commit, while the node
/// may be serving.
pub fn backup(db: &Path, to: &Path) -> Result<Summary, BackupError> {
    if !db.exists() {
        return Err(BackupError::Missing(db.to_owned()));
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_owned()));
    }
    let source = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // The node may be committing: wait for its writer rather than fail.
    source.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = to.to_str().ok_or_else(|| BackupError::Unusable {
        path: to.to_owned(),
        reason: "the path is not UTF-8".into(),
    })?;
    source.execute("VACUUM INTO ?1", [target])?;
    drop(source);
    make_private(to)?;
    check(to)
}

/// Replaces the database at `db` (in a node's data directory, the node stopped) with the backup
/// `from`. The database replaced is kept as `harmony.db.before-restore-<unix time>`.
pub fn restore(from: &Path, db: &Path) -> Result<(Summary, Option<PathBuf>), BackupError> {
    let dir = db.parent().unwrap_or(Path::new("."));
    let _lock = lock_data_dir(dir)?;
    check(from)?;
    let staged = db.with_extension("db.restoring");
    std::fs::copy(from, &staged).map_err(io(format!("copying to {}", staged.display())))?;
    File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing the copy"))?;
    make_private(&staged)?;
    let kept = if db.exists() {
        Some(keep_aside(db)?)
    } else {
        None
    };
    // One atomic rename: a restore killed at any point leaves either the old database whole (its
    // write-ahead log folded in) or the backup, never no database (a node would start empty).
    std::fs::rename(&staged, db).map_err(io(format!("moving {} into place", staged.display())))?;
    Ok((check(db)?, kept))
}

/// Folds the database's write-ahead log into it (commits there may not be in the main file yet,
/// after a node was killed), then keeps a copy of the main file as
/// `harmony.db.before-restore-<unix time>`; the database stays in place until the rename that
/// replaces it.
fn keep_aside(db: &Path) -> Result<PathBuf, BackupError> {
    let conn = Connection::open(db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let aside = db.with_extension(format!("db.before-restore-{stamp}"));
    if std::fs::hard_link(db, &aside).is_err() {
        std::fs::copy(db, &aside).map_err(io(format!("copying {}", db.display())))?;
    }
    for suffix in ["-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        if file.exists() {
            std::fs::remove_file(&file).map_err(io(format!("removing {}", file.display())))?;
        }
    }
    Ok(aside)
}

/// Checks a database file is whole and Harmony's (no newer schema than this binary knows), and
/// counts what it holds.
fn check(path: &Path) -> Result<Summary, BackupError> {
    let unusable = |reason: String| BackupError::Unusable {
        path: path.to_owned(),
        reason,
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| unusable(e.to_string()))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| unusable(e.to_string()))?;
    if integrity != "ok" {
        return Err(unusable(format!("integrity check: {integrity}")));
    }
    let version: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .map_err(|e| unusable(format!("no schema version ({e})")))?;
    let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if version > known {
        return Err(unusable(format!(
            "schema {version} is newer than this binary's ({known}); use a newer harmony"
        )));
    }
    let count = |table: &str| -> Result<i64, BackupError> {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| unusable(e.to_string()))
    };
    let bytes = std::fs::metadata(path)
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    Ok(Summary {
        bytes,
        schema_version: version,
        users: count("users")?,
        chats: count("chats")?,
        messages: count("messages")?,
    })
}

/// Backups hold every message: readable by the owner alone.
fn make_private(path: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(format!("restricting {}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_backup_restores_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("harmony.db");
        let db = crate::Database::open(&db_path).await.expect("opens");
        let copy = dir.path().join("copy.db");
        let made = backup(&db_path, &copy).expect("backs up while open");
        assert_eq!(made.users, 0);
        assert!(matches!(
            backup(&db_path, &copy),
            Err(BackupError::Exists(_))
        ));
        let lock = lock_data_dir(dir.path()).expect("first lock");
        assert!(matches!(
            restore(&copy, &db_path),
            Err(BackupError::Running(_))
        ));
        drop(lock);
        db.close().await;
        drop(db);
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database").expect("writes");
        assert!(matches!(
            restore(&junk, &db_path),
            Err(BackupError::Unusable { .. })
        ));
        // A node killed with commits still in its write-ahead log: a connection that never
        // checkpoints and is never closed.
        let killed = Connection::open(&db_path).expect("opens");
        killed
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0; \
                 INSERT INTO consumer_offsets (consumer, position) VALUES ('late', 7);",
            )
            .expect("writes");
        std::mem::forget(killed);
        let (restored, kept) = restore(&copy, &db_path).expect("restores");
        assert_eq!(restored.schema_version, made.schema_version);
        let kept = kept.expect("the replaced database is kept");
        let old = Connection::open_with_flags(&kept, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("opens the kept copy");
        let late: i64 = old
            .query_row(
                "SELECT position FROM consumer_offsets WHERE consumer = 'late'",
                [],
                |r| r.get(0),
            )
            .expect("the kept copy holds what was only in the write-ahead log");
        assert_eq!(late, 7);
        assert!(
            !PathBuf::from(format!("{}-wal", db_path.display())).exists(),
            "no stale write-ahead log beside the restored database"
        );
    }
}
