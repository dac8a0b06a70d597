//! The HTTP listener against clients that hold it open cheaply: headers trickled in
//! (slowloris), a body that never finishes, more connections than the cap, and `/metrics` kept
//! off the public address when asked. Raw TCP, since a well-behaved client cannot misbehave.

use std::time::{Duration, Instant};

use harmony_testkit::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type R = anyhow::Result<()>;

/// Reads until the server closes the connection or `wait` passes; returns what was read and
/// whether the connection ended.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP answer's status line, or `None` if none comes within `wait`.
async fn status_line(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    while !got.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    text.lines().next().map(str::to_owned)
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: harmony\r\n\r\n";

#[tokio::test]
async fn headers_trickled_in_are_cut_off() -> R {
    let app = TestApp::spawn_with(|c| c.server.header_read_timeout_secs = 1).await?;
    let mut slow = TcpStream::connect(app.addr).await?;
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: harmony\r\n")
        .await?;
    let mut ended = false;
    // A header line every 300 ms: each arrives in time, the whole never does.
    for i in 0..20 {
        if slow
            .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            ended = true;
            break;
        }
        let (_, closed) = read_until_closed(&mut slow, Duration::from_millis(300)).await;
        if closed {
            ended = true;
            break;
        }
    }
    assert!(ended, "the trickling client was still connected after 6 s");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut off after {:?}",
        started.elapsed()
    );
    // A normal client is served meanwhile and after.
    let mut fine = TcpStream::connect(app.addr).await?;
    fine.write_all(HEALTHZ).await?;
    assert_eq!(
        status_line(&mut fine, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    app.stop().await
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_503_after_the_request_timeout() -> R {
    let app = TestApp::spawn_with(|c| c.server.request_timeout_secs = 1).await?;
    let mut slow = TcpStream::connect(app.addr).await?;
    slow.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: harmony\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"username\":",
    )
    .await?;
    let (answer, _) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"code\":\"unavailable\""), "{answer}");
    app.stop().await
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() -> R {
    let app = TestApp::spawn_with(|c| c.server.max_connections = 16).await?;
    // The test client's pooled connection may hold one place.
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(app.addr).await?;
        stream.write_all(HEALTHZ).await?;
        match status_line(&mut stream, Duration::from_millis(500)).await {
            Some(line) => {
                assert_eq!(line, "HTTP/1.1 200 OK");
                served.push(stream);
            }
            None => waiting.push(stream),
        }
    }
    assert!(
        (15..=16).contains(&served.len()) && waiting.len() >= 4,
        "{} served, {} waiting",
        served.len(),
        waiting.len()
    );
    drop(served);
    for mut stream in waiting {
        assert_eq!(
            status_line(&mut stream, Duration::from_secs(5))
                .await
                .as_deref(),
            Some("HTTP/1.1 200 OK"),
            "served once places were free"
        );
    }
    app.stop().await
}

#[tokio::test]
async fn metrics_can_be_kept_off_the_public_address() -> R {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let app = {
        let addr = metrics_addr.clone();
        TestApp::spawn_with(move |c| c.server.metrics_listen = addr).await?
    };
    // The public address has no /metrics (the web UI's fallback page answers instead).
    let public = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(!public.contains("harmony_ws_sessions"), "{public}");
    let apart = app
        .client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await?;
    assert_eq!(apart.status().as_u16(), 200);
    assert!(apart.text().await?.contains("harmony_ws_sessions"));
    let nothing_else = app
        .client
        .get(format!("http://{metrics_addr}/api/v1/users/me"))
        .send()
        .await?;
    assert_eq!(nothing_else.status().as_u16(), 404);
    app.stop().await
}
