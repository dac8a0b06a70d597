//! Opening load connections: WebSockets to Harmony or to a peer server, spread over several
//! loopback source addresses (127.0.0.1..=127.0.0.N, each with its own ephemeral ports), with the
//! protocol's handshake done (Harmony's `ready`, Socket.IO's namespace connect).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// How long one connection's handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(30);

/// What a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Harmony's gateway: bearer token, `ready` first, JSON frames.
    Harmony,
    /// A broadcast server that relays text frames as they are (Node `ws`, the bare tokio server).
    Plain,
    /// Socket.IO v4 (Engine.IO 4) over its WebSocket transport.
    SocketIo,
}

/// Where connections go.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub protocol: Protocol,
}

impl Target {
    fn url(&self) -> String {
        match self.protocol {
            Protocol::Harmony => format!("ws://{}/api/v1/ws", self.addr),
            Protocol::Plain => format!("ws://{}/", self.addr),
            Protocol::SocketIo => {
                format!("ws://{}/socket.io/?EIO=4&transport=websocket", self.addr)
            }
        }
    }
}

/// Hands out source addresses round robin.
pub struct Sources {
    count: u8,
    next: AtomicUsize,
}

impl Sources {
    /// `count` loopback addresses, 127.0.0.1 upwards (Linux routes all of 127/8 to `lo`).
    pub fn new(count: u8) -> Self {
        Self {
            count: count.max(1),
            next: AtomicUsize::new(0),
        }
    }

    fn pick(&self) -> IpAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % usize::from(self.count);
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8))
    }
}

/// Small buffers: the generator holds tens of thousands of connections.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens one connection and completes the protocol's handshake. `token` is Harmony's access
/// token. Returns the socket and, for Harmony, the `ready` frame.
pub async fn open(
    target: &Target,
    sources: &Sources,
    token: Option<&str>,
) -> anyhow::Result<(Ws, Option<String>)> {
    tokio::time::timeout(HANDSHAKE, open_inner(target, sources, token))
        .await
        .context("handshake timed out")?
}

async fn open_inner(
    target: &Target,
    sources: &Sources,
    token: Option<&str>,
) -> anyhow::Result<(Ws, Option<String>)> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(sources.pick(), 0))
        .context("binding a source address")?;
    let stream = socket
        .connect(target.addr)
        .await
        .with_context(|| format!("connecting to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let mut request = target.url().into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config())).await?;
    match target.protocol {
        Protocol::Plain => Ok((ws, None)),
        Protocol::Harmony => {
            let ready = next_text(&mut ws).await?;
            anyhow::ensure!(
                ready.starts_with(r#"{"type":"ready""#),
                "first frame was not ready: {ready}"
            );
            Ok((ws, Some(ready)))
        }
        Protocol::SocketIo => {
            let open = next_text(&mut ws).await?;
            anyhow::ensure!(open.starts_with('0'), "expected an open packet: {open}");
            ws.send(Message::Text("40".into())).await?;
            let connected = next_text(&mut ws).await?;
            anyhow::ensure!(
                connected.starts_with("40"),
                "expected a namespace connect: {connected}"
            );
            Ok((ws, None))
        }
    }
}

/// The next text frame (pings are answered by the library).
pub async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("websocket error: {e}"),
            None => bail!("connection ended"),
        }
    }
}

/// Opens `count` connections, `parallel` handshakes at a time; `token(i)` is connection i's.
pub async fn open_many(
    target: &Target,
    sources: &Sources,
    count: usize,
    parallel: usize,
    token: impl Fn(usize) -> Option<String>,
) -> anyhow::Result<Vec<(Ws, Option<String>)>> {
    let mut out = Vec::with_capacity(count);
    let mut done = 0;
    let tokens: Vec<Option<String>> = (0..count).map(token).collect();
    for chunk in tokens.chunks(parallel.max(1)) {
        let opening = chunk.iter().map(|t| open(target, sources, t.as_deref()));
        for result in futures_util::future::join_all(opening).await {
            out.push(result.with_context(|| format!("connection {done} of {count}"))?);
            done += 1;
        }
    }
    Ok(out)
}
