//! Gateway sessions at their edges through the front door: the handshake's credentials and
//! Origin check, bad frames, the frame size limit, shutdown (1001) and token expiry (4001).

use harmony_testkit::ws::Ended;
use harmony_testkit::TestApp;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

#[tokio::test]
async fn handshakes_need_credentials_and_cookie_sessions_need_our_origin() -> R {
    let app = TestApp::spawn().await?;
    assert!(app.ws_with(&[]).await.is_err(), "no credentials");
    assert!(
        app.ws_with(&[("authorization", "Bearer nope".into())])
            .await
            .is_err(),
        "bad token"
    );

    let jar = reqwest::Client::builder().cookie_store(true).build()?;
    let register = jar
        .post(app.url("/api/v1/auth/register"))
        .header("x-session-mode", "cookie")
        .json(&json!({"username": "ann", "password": "password-ann"}))
        .send()
        .await?;
    let access = register
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("harmony_access="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let cookie = format!("harmony_access={access}");
    let foreign = app
        .ws_with(&[
            ("cookie", cookie.clone()),
            ("origin", "http://evil.example".into()),
        ])
        .await;
    assert!(foreign.is_err(), "foreign origin must be refused");
    let missing = app.ws_with(&[("cookie", cookie.clone())]).await;
    assert!(
        missing.is_err(),
        "a cookie session without Origin must be refused"
    );
    let mut ours = app
        .ws_with(&[
            ("cookie", cookie),
            ("origin", format!("http://{}", app.addr)),
        ])
        .await?;
    assert_eq!(ours.next().await?["type"], "ready");
    ours.close().await;
    app.stop().await
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_connection_stays_up() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let (mut ws, _) = app.ws(&ann.access).await?;
    for bad in [
        "not json",
        "{\"type\":\"teleport\"}",
        "{\"type\":\"resume\",\"chats\":[1]}",
        "[]",
        &"[".repeat(1000),
    ] {
        ws.send_text(bad.to_owned()).await?;
        let frame = ws.next().await?;
        assert_eq!(
            (frame["type"].as_str(), frame["code"].as_str()),
            (Some("error"), Some("bad_frame")),
            "{bad}"
        );
    }
    ws.send(json!({"type": "resume", "chats": {"not-a-chat": 3}}))
        .await?;
    assert_eq!(ws.next().await?["code"], "chat_not_found");
    assert_eq!(ws.next().await?["type"], "resumed");
    // A large frame is read whole (the read buffer starts at 256 bytes and grows).
    ws.send_text(format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(20_000)
    ))
    .await?;
    assert_eq!(ws.next().await?["type"], "pong");
    // Oversized frames are refused by closing; the limit is 64 KiB.
    ws.send(json!({"type": "ping"})).await?;
    assert_eq!(ws.next().await?["type"], "pong");
    ws.send_text(format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    ))
    .await?;
    assert!(matches!(
        ws.until_closed().await?,
        Ended::Closed(Some(1009)) | Ended::Gone
    ));
    app.stop().await
}

#[tokio::test]
async fn shutdown_tells_sessions_to_reconnect() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let (mut ws, _) = app.ws(&ann.access).await?;
    let closing = tokio::spawn(async move { ws.until_closed().await });
    app.stop().await?;
    assert_eq!(closing.await??, Ended::Closed(Some(1001)));
    Ok(())
}

#[tokio::test]
async fn a_shutdown_spreads_its_sessions_closes_over_the_drain() -> R {
    let app = TestApp::spawn_with(|c| c.gateway.drain_secs = 1).await?;
    let ann = app.register("ann").await?;
    let mut closings = Vec::new();
    for _ in 0..10 {
        let (mut ws, _) = app.ws(&ann.access).await?;
        closings.push(tokio::spawn(async move {
            let ended = ws.until_closed().await;
            (ended, tokio::time::Instant::now())
        }));
    }
    app.stop().await?;
    let mut times = Vec::new();
    for closing in closings {
        let (ended, at) = closing.await?;
        assert_eq!(ended?, Ended::Closed(Some(1001)));
        times.push(at);
    }
    let (first, last) = (times.iter().min(), times.iter().max());
    let spread = last.zip(first).map(|(l, f)| l.duration_since(*f));
    // Ten sessions, one slice of 50 ms each (at least): the last closes ≥ 450 ms after the first.
    assert!(
        spread.is_some_and(|s| s >= std::time::Duration::from_millis(400)),
        "closes spread over {spread:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_session_ends_when_its_access_token_expires() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let claims =
        json!({"sub": ann.id, "sid": ann.session(), "iat": now, "exp": now + 2, "typ": "access"});
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(harmony_testkit::TEST_JWT_SECRET),
    )?;
    let (mut ws, _) = app.ws(&token).await?;
    assert_eq!(ws.until_closed().await?, Ended::Closed(Some(4001)));
    app.stop().await
}

#[tokio::test]
async fn a_resume_naming_many_foreign_chats_costs_one_frame_per_kind() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    app.send(&ann, &chat, "missed").await?;
    let (mut ws, _) = app.ws(&bob.access).await?;
    let mut chats = serde_json::Map::new();
    for _ in 0..1500 {
        chats.insert(uuid::Uuid::new_v4().to_string(), json!(0));
    }
    chats.insert("not-a-chat".into(), json!(0));
    chats.insert(chat.clone(), json!(0));
    ws.send(json!({"type": "resume", "chats": chats})).await?;
    let mut frames = Vec::new();
    loop {
        let frame = ws.next().await?;
        let done = frame["type"] == "resumed";
        frames.push(frame);
        if done {
            break;
        }
    }
    let errors: Vec<&Value> = frames.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(
        errors.len(),
        2,
        "one frame per kind, not one per chat: {errors:?}"
    );
    assert_eq!(errors[0]["code"], "chat_not_found");
    assert_eq!(errors[1]["code"], "not_a_member");
    let listed = errors[1]["message"].as_str().unwrap_or_default();
    assert!(listed.ends_with("and 1480 more"), "{listed}");
    let messages: Vec<&Value> = frames.iter().filter(|f| f["type"] == "message").collect();
    assert_eq!(messages.len(), 1, "the chat it follows is resumed");
    assert_eq!(messages[0]["message"]["content"], "missed");
    // Positions no chat can have are no error and send nothing twice.
    for lie in [i64::MAX, -5] {
        ws.send(json!({"type": "resume", "chats": {chat.clone(): lie}}))
            .await?;
        assert_eq!(ws.next().await?["type"], "resumed", "after {lie}");
    }
    ws.close().await;
    Ok(())
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_freed() -> R {
    let app = TestApp::spawn_with(|c| c.gateway.session_queue = 16).await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    // Bob's client connects, then never reads again: the kernel's buffers fill, the server's
    // writes stop completing.
    let (stuck, _) = app.ws(&bob.access).await?;
    let sessions = || app.metric("harmony_ws_sessions");
    assert_eq!(sessions().await?, 1.0);
    let big = "x".repeat(3900);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut sent = 0;
    loop {
        if sessions().await? == 0.0 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the stuck session is still open after {sent} messages"
        );
        for _ in 0..100 {
            app.send(&ann, &chat, &big).await?;
            sent += 1;
        }
    }
    drop(stuck);
    app.stop().await
}

#[tokio::test]
async fn a_client_silent_through_its_pings_is_closed_and_one_that_answers_stays() -> R {
    let app = TestApp::spawn_with(|c| {
        c.gateway.ping_interval_secs = 1;
        c.gateway.idle_timeout_secs = 3;
    })
    .await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    // Ann's client reads (so it answers pings, as browsers do) but never sends a frame.
    let (mut alive, _) = app.ws(&ann.access).await?;
    // Bob's client connects and then neither reads nor writes: a vanished peer whose TCP
    // connection looks open, with nothing to send it.
    let (silent, _) = app.ws(&bob.access).await?;
    let open = || app.metric("harmony_ws_sessions");
    assert_eq!(open().await?, 2.0);
    // Reading through 5 s (past the 3 s timeout) answers the pings; nothing else arrives.
    alive
        .expect_silence(std::time::Duration::from_secs(5), &[])
        .await?;
    assert_eq!(
        open().await?,
        1.0,
        "the silent one was closed, the answering one kept"
    );
    alive.send(json!({"type": "ping"})).await?;
    assert_eq!(alive.next().await?["type"], "pong");
    drop(silent);
    app.stop().await
}
