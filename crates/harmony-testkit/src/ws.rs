//! A WebSocket client for tests, reading JSON frames with a timeout.

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{TestApp, STEP};

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Whether `presence` frames are read; off, they are skipped like pings, since friends and
    /// co-members coming and going is beside the point of most tests.
    presence: bool,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Closed(Option<u16>),
    Gone,
}

impl TestApp {
    /// Opens a gateway session with a bearer token and reads its `ready` frame.
    pub async fn ws(&self, token: &str) -> anyhow::Result<(WsClient, Value)> {
        let headers = [("authorization", format!("Bearer {token}"))];
        let mut client = self.ws_with(&headers).await?;
        let ready = client.next().await?;
        anyhow::ensure!(
            ready["type"] == "ready",
            "first frame was not ready: {ready}"
        );
        Ok((client, ready))
    }

    /// Opens a WebSocket with the given headers; fails if the handshake is refused.
    pub async fn ws_with(&self, headers: &[(&str, String)]) -> anyhow::Result<WsClient> {
        let mut request = format!("ws://{}/api/v1/ws", self.addr).into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
        let (stream, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
            .await
            .context("handshake timed out")??;
        Ok(WsClient {
            stream,
            presence: false,
        })
    }
}

impl TestApp {
    /// The HTTP status and problem `code` with which a WebSocket handshake was refused; fails
    /// if the handshake succeeded.
    pub async fn ws_refused(&self, headers: &[(&str, String)]) -> anyhow::Result<(u16, String)> {
        let mut request = format!("ws://{}/api/v1/ws", self.addr).into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
        let result = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
            .await
            .context("handshake timed out")?;
        match result {
            Ok(_) => bail!("the handshake was accepted"),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body: Value = response
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                let code = body["code"].as_str().unwrap_or_default().to_owned();
                Ok((response.status().as_u16(), code))
            }
            Err(e) => bail!("the handshake failed without an HTTP answer: {e}"),
        }
    }
}

impl WsClient {
    /// Reads `presence` frames from now on (they are skipped otherwise).
    pub fn see_presence(&mut self) {
        self.presence = true;
    }

    fn skipped(&self, frame: &Value) -> bool {
        !self.presence && frame["type"] == "presence"
    }

    /// The next `presence` frame about `user_id` (call [`WsClient::see_presence`] first).
    pub async fn presence_of(&mut self, user_id: &str) -> anyhow::Result<Value> {
        loop {
            let frame = self.next_of("presence").await?;
            if frame["user_id"] == user_id {
                return Ok(frame);
            }
        }
    }

    /// The next JSON frame; fails on timeout or close. Skipped frames and pings do not restart
    /// the timeout: a stream of them is still no frame.
    pub async fn next(&mut self) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("no frame within the timeout")?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text)?;
                    if !self.skipped(&frame) {
                        return Ok(frame);
                    }
                }
                Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("websocket error: {e}"),
                None => bail!("stream ended"),
            }
        }
    }

    /// The next frame of the given type, skipping others (membership notices and the like).
    pub async fn next_of(&mut self, kind: &str) -> anyhow::Result<Value> {
        loop {
            let frame = self.next().await?;
            if frame["type"] == kind {
                return Ok(frame);
            }
        }
    }

    /// The next `message` frame someone wrote, skipping timeline lines (a `notice`: a member
    /// added or removed, a rename).
    pub async fn next_written(&mut self) -> anyhow::Result<Value> {
        loop {
            let frame = self.next_of("message").await?;
            if frame["message"]["notice"].is_null() {
                return Ok(frame);
            }
        }
    }

    /// Asserts nothing arrives for `wait` (skipping frames whose type is in `ignore`).
    pub async fn expect_silence(
        &mut self,
        wait: std::time::Duration,
        ignore: &[&str],
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Ok(()),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(&text)?;
                    let kind = frame["type"].as_str().unwrap_or_default();
                    if !ignore.contains(&kind) && !self.skipped(&frame) {
                        bail!("expected silence, got {frame}");
                    }
                }
                Ok(Some(Ok(_))) => continue,
                Ok(other) => bail!("connection ended while expecting silence: {other:?}"),
            }
        }
    }

    pub async fn send(&mut self, frame: Value) -> anyhow::Result<()> {
        self.send_text(frame.to_string()).await
    }

    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        tokio::time::timeout(STEP, self.stream.send(Message::Text(text.into())))
            .await
            .context("send timed out")??;
        Ok(())
    }

    /// Reads until the server closes; returns the close code it sent.
    pub async fn until_closed(&mut self) -> anyhow::Result<Ended> {
        loop {
            let frame = tokio::time::timeout(STEP, self.stream.next())
                .await
                .context("the connection was not closed within the timeout")?;
            match frame {
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Ended::Closed(frame.map(|f: CloseFrame| u16::from(f.code))))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ok(Ended::Gone),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = tokio::time::timeout(STEP, self.stream.close(None)).await;
    }
}
