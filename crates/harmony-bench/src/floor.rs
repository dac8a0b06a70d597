//! The floor (issue 19): the smallest honest server for S5 and S7 on Harmony's own stack, so a
//! report can say how far above the stack's cost a send and a history page are. It does what
//! Harmony's single node must do for those two requests and nothing else:
//!
//! - axum, the same JSON in and out (a message with its author);
//! - an HS256 access token checked on every request (`sub`, `exp`, `typ`);
//! - membership looked up in memory (Harmony's is an in-process cache too);
//! - a send is one row in SQLite (WAL, `synchronous = FULL`), its seq the chat's next in the same
//!   transaction, group-committed by one writer thread: answered after the fsync;
//! - a history page is the newest 50 rows by `(chat_id, seq)` of a clustered table, read on
//!   tokio's blocking pool from one of four read connections.
//!
//! No outbox, no log consumers, no rate limits, no idempotency key: what is missing here is what
//! Harmony's guarantees cost. Started by the bench as `harmony-bench serve-floor DIR`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Read connections, as Harmony's single node has.
const READERS: usize = 4;

/// The floor's signing key: the bench mints its users' tokens with it.
const SECRET: &[u8] = b"harmony-bench floor signing key, 32+ bytes long";

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    typ: String,
}

/// An access token for `user` on the floor, valid for an hour.
pub fn token(user: &str) -> anyhow::Result<String> {
    let claims = Claims {
        sub: user.to_owned(),
        exp: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
        typ: "access".into(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )?)
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Author {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

/// `POST /setup`: the users and who is in which chat.
#[derive(Serialize, Deserialize)]
pub struct Setup {
    pub users: Vec<Author>,
    pub members: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct SendBody {
    content: String,
    #[serde(default)]
    client_msg_id: Option<String>,
}

#[derive(Clone, Serialize)]
struct MessageOut {
    id: String,
    chat_id: String,
    seq: i64,
    author: Author,
    content: String,
    client_msg_id: Option<String>,
    created_at: String,
}

#[derive(Serialize)]
struct Page {
    messages: Vec<MessageOut>,
    has_more: bool,
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<u32>,
}

/// A message to append, and where its seq (or why the group's commit failed) goes.
type Append = (MessageOut, oneshot::Sender<Result<i64, String>>);

#[derive(Default)]
struct Directory {
    users: HashMap<String, Author>,
    members: HashSet<(String, String)>,
}

#[derive(Clone)]
struct Floor {
    directory: Arc<std::sync::RwLock<Directory>>,
    writer: mpsc::UnboundedSender<Append>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One permit per read connection: a read waits for a free connection, never fails for one.
    reading: Arc<tokio::sync::Semaphore>,
    decoding: Arc<(DecodingKey, Validation)>,
}

type Refusal = (StatusCode, &'static str);

impl Floor {
    /// The caller (token checked) and their profile, if they are a member of `chat`.
    fn member(&self, headers: &HeaderMap, chat: &str) -> Result<Author, Refusal> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or((StatusCode::UNAUTHORIZED, "no token"))?;
        let (key, validation) = &*self.decoding;
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|_| (StatusCode::UNAUTHORIZED, "bad token"))?
            .claims;
        if claims.typ != "access" {
            return Err((StatusCode::UNAUTHORIZED, "not an access token"));
        }
        let directory = self
            .directory
            .read()
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "poisoned"))?;
        if !directory
            .members
            .contains(&(chat.to_owned(), claims.sub.clone()))
        {
            return Err((StatusCode::NOT_FOUND, "chat not found"));
        }
        directory
            .users
            .get(&claims.sub)
            .cloned()
            .ok_or((StatusCode::UNAUTHORIZED, "unknown user"))
    }
}

fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// The writer: every append waiting is one transaction and one fsync.
fn write_loop(conn: Connection, mut rx: mpsc::UnboundedReceiver<Append>) {
    let mut batch = Vec::new();
    while rx.blocking_recv_many(&mut batch, 4096) > 0 {
        let result = (|| -> rusqlite::Result<Vec<i64>> {
            let tx = conn.unchecked_transaction()?;
            let mut seqs = Vec::with_capacity(batch.len());
            for (m, _) in &batch {
                let seq: i64 = tx.query_row(
                    "INSERT INTO heads (chat_id, seq) VALUES (?1, 1) ON CONFLICT (chat_id) \
                     DO UPDATE SET seq = seq + 1 RETURNING seq",
                    [&m.chat_id],
                    |r| r.get(0),
                )?;
                tx.prepare_cached(
                    "INSERT INTO messages (chat_id, seq, id, author_id, content, client_msg_id, \
                     created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )?
                .execute((
                    &m.chat_id,
                    seq,
                    &m.id,
                    &m.author.id,
                    &m.content,
                    &m.client_msg_id,
                    &m.created_at,
                ))?;
                seqs.push(seq);
            }
            tx.commit()?;
            Ok(seqs)
        })();
        match result {
            Ok(seqs) => {
                for ((_, done), seq) in batch.drain(..).zip(seqs) {
                    let _ = done.send(Ok(seq));
                }
            }
            Err(e) => {
                let why = e.to_string();
                eprintln!("floor: a group commit failed: {why}");
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Err(why.clone()));
                }
            }
        }
    }
}

async fn send(
    State(floor): State<Floor>,
    Path(chat): Path<String>,
    headers: HeaderMap,
    Json(body): Json<SendBody>,
) -> Result<(StatusCode, Json<MessageOut>), Refusal> {
    let author = floor.member(&headers, &chat)?;
    let chars = body.content.chars().count();
    if chars == 0 || chars > 4000 {
        return Err((
            StatusCode::BAD_REQUEST,
            "content must be 1 to 4000 characters",
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let mut message = MessageOut {
        id: ulid::Ulid::new().to_string(),
        chat_id: chat,
        seq: 0,
        author,
        content: body.content,
        client_msg_id: body.client_msg_id,
        created_at: now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "time"))?,
    };
    let (done, committed) = oneshot::channel();
    floor
        .writer
        .send((message.clone(), done))
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "writer gone"))?;
    message.seq = committed
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "writer gone"))?
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "write failed"))?;
    Ok((StatusCode::CREATED, Json(message)))
}

async fn history(
    State(floor): State<Floor>,
    Path(chat): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Json<Page>, Refusal> {
    floor.member(&headers, &chat)?;
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let directory = floor.directory.clone();
    let readers = floor.readers.clone();
    let unavailable = (StatusCode::SERVICE_UNAVAILABLE, "read failed");
    let permit = floor
        .reading
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| unavailable)?;
    let page = tokio::task::spawn_blocking(move || -> Result<Page, Refusal> {
        let _permit = permit;
        let conn = readers
            .lock()
            .map_err(|_| unavailable)?
            .pop()
            .ok_or(unavailable)?;
        let rows = (|| -> rusqlite::Result<Vec<(String, MessageOut)>> {
            let mut statement = conn.prepare_cached(
                "SELECT chat_id, seq, id, author_id, content, client_msg_id, created_at \
                 FROM messages WHERE chat_id = ? ORDER BY seq DESC LIMIT ?",
            )?;
            let found = statement.query_map((&chat, limit + 1), |r| {
                let message = MessageOut {
                    chat_id: r.get(0)?,
                    seq: r.get(1)?,
                    id: r.get(2)?,
                    author: Author {
                        id: String::new(),
                        username: String::new(),
                        display_name: String::new(),
                    },
                    content: r.get(4)?,
                    client_msg_id: r.get(5)?,
                    created_at: r.get(6)?,
                };
                Ok((r.get(3)?, message))
            })?;
            found.collect()
        })();
        if let Ok(mut pool) = readers.lock() {
            pool.push(conn);
        }
        let mut rows = rows.map_err(|e| {
            eprintln!("floor: a history read failed: {e}");
            unavailable
        })?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        rows.reverse();
        let directory = directory.read().map_err(|_| unavailable)?;
        let messages = rows
            .into_iter()
            .map(|(author_id, mut message)| {
                if let Some(author) = directory.users.get(&author_id) {
                    message.author = author.clone();
                }
                message
            })
            .collect();
        Ok(Page { messages, has_more })
    })
    .await
    .map_err(|_| unavailable)??;
    Ok(Json(page))
}

async fn setup(State(floor): State<Floor>, Json(setup): Json<Setup>) -> StatusCode {
    let Ok(mut directory) = floor.directory.write() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    for user in setup.users {
        directory.users.insert(user.id.clone(), user);
    }
    directory.members.extend(setup.members);
    StatusCode::NO_CONTENT
}

/// `harmony-bench serve-floor DIR`: serves until killed, its database in DIR.
pub async fn serve(args: &[String]) -> anyhow::Result<()> {
    let dir = PathBuf::from(args.first().context("serve-floor needs a directory")?);
    let path = dir.join("floor.db");
    let writer_conn = open(&path)?;
    writer_conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS heads (chat_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS messages (
             chat_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE,
             author_id TEXT NOT NULL, content TEXT NOT NULL, client_msg_id TEXT,
             created_at TEXT NOT NULL, PRIMARY KEY (chat_id, seq)) WITHOUT ROWID;",
    )?;
    let readers = (0..4)
        .map(|_| open(&path))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (writer, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || write_loop(writer_conn, rx));
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    let floor = Floor {
        directory: Arc::default(),
        writer,
        readers: Arc::new(Mutex::new(readers)),
        reading: Arc::new(tokio::sync::Semaphore::new(READERS)),
        decoding: Arc::new((DecodingKey::from_secret(SECRET), validation)),
    };
    let app = Router::new()
        .route("/setup", post(setup))
        .route("/api/v1/chats/{id}/messages", post(send).get(history))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}

/// A floor server started for a run, with the same chats (one member each) as Harmony's.
pub struct Running {
    pub target: crate::rest::RestTarget,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Starts `harmony-bench serve-floor` and gives it Harmony's users and chats.
    pub async fn start(chats: &[(String, harmony_testkit::TestUser)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let me = std::env::current_exe().context("this binary's path")?;
        let mut command = tokio::process::Command::new(me);
        command.arg("serve-floor").arg(dir.path());
        let (child, port) = crate::peers::spawn_listening(command).await?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let setup = Setup {
            users: chats
                .iter()
                .map(|(_, u)| Author {
                    id: u.id.clone(),
                    username: u.username.clone(),
                    display_name: u.username.clone(),
                })
                .collect(),
            members: chats
                .iter()
                .map(|(c, u)| (c.clone(), u.id.clone()))
                .collect(),
        };
        let r = client
            .post(format!("{base}/setup"))
            .json(&setup)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "floor setup: {}", r.status());
        let pid = child.id().context("the floor's pid")?;
        let target = crate::rest::RestTarget {
            name: "floor",
            client,
            base,
            pids: vec![pid],
            services: Vec::new(),
            chats: chats
                .iter()
                .map(|(c, u)| Ok((c.clone(), token(&u.id)?)))
                .collect::<anyhow::Result<_>>()?,
        };
        Ok(Self {
            target,
            _child: child,
            _dir: dir,
        })
    }
}
