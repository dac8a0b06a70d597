//! Sending and reading messages: idempotent retries, complete ordered history, cursors, rate
//! limits, and bad input that is refused without changing anything.

use std::collections::HashSet;

use harmony_testkit::{eventually, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

#[tokio::test]
async fn a_retried_send_is_not_duplicated() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    let path = format!("/api/v1/chats/{chat}/messages");
    let body = json!({"content": "hello", "client_msg_id": "c-1"});
    let first = app.post(&path, &ann.access, body.clone()).await?;
    let retry = app.post(&path, &ann.access, body).await?;
    assert_eq!(
        (first.status, retry.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(first.body, retry.body, "a retry returns the same message");
    assert_eq!(retry.headers["idempotent-replay"], "true");
    // The same key from another author is another message.
    let bobs = app
        .post(
            &path,
            &bob.access,
            json!({"content": "hi", "client_msg_id": "c-1"}),
        )
        .await?;
    assert_ne!(bobs.str("/id"), first.str("/id"));
    let history = eventually("both messages in history", || async {
        let all = app.all_history(&ann, &chat).await?;
        Ok((all.len() >= 2).then_some(all))
    })
    .await?;
    let seqs: Vec<i64> = history.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, [1, 2]);
    app.stop().await
}

#[tokio::test]
async fn history_pages_cover_every_message_once_in_order() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    let mut sent = Vec::new();
    for i in 0..250 {
        let who = if i % 3 == 0 { &bob } else { &ann };
        sent.push(
            app.send(who, &chat, &format!("message {i}")).await?["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let all = eventually("250 messages in history", || async {
        let all = app.all_history(&bob, &chat).await?;
        Ok((all.len() >= 250).then_some(all))
    })
    .await?;
    let ids: Vec<&str> = all.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, sent, "every message once, in send order");
    let seqs: Vec<i64> = all.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=250).collect::<Vec<_>>());
    assert_eq!(all[3]["author"]["username"], "bob");

    // Walking forward with `after` gives the same sequence.
    let mut forward: Vec<String> = Vec::new();
    let mut cursor = sent[0].clone();
    forward.push(cursor.clone());
    loop {
        let page = app
            .get(
                &format!("/api/v1/chats/{chat}/messages?after={cursor}&limit=100"),
                &ann.access,
            )
            .await?;
        let messages = page.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        forward.extend(
            messages
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned)),
        );
        if !page.body["has_more"].as_bool().unwrap_or(false) {
            break;
        }
        cursor = forward.last().cloned().unwrap_or_default();
    }
    assert_eq!(forward, sent);

    let newest = app
        .get(
            &format!("/api/v1/chats/{chat}/messages?limit=10"),
            &ann.access,
        )
        .await?;
    assert_eq!(newest.body["messages"][9]["id"], sent[249].as_str());
    assert_eq!(newest.body["has_more"], true);
    let foreign = app
        .get(
            &format!("/api/v1/chats/{chat}/messages?before=01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            &ann.access,
        )
        .await?;
    assert_eq!(foreign.code(), Some("invalid_cursor"));
    for bad in [
        "limit=0",
        "limit=101",
        "before=x",
        "before=01ARZ3NDEKTSV4RRFFQ69G5FAV&after=01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "limit=abc",
    ] {
        let reply = app
            .get(&format!("/api/v1/chats/{chat}/messages?{bad}"), &ann.access)
            .await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {reply:?}");
    }
    app.stop().await
}

#[tokio::test]
async fn to_a_stranger_every_chat_route_answers_as_if_the_chat_did_not_exist() -> R {
    let app = TestApp::spawn().await?;
    let (ann, eve) = (app.register("ann").await?, app.register("eve").await?);
    let chat = app.group(&ann, "g", &[]).await?;
    app.send(&ann, &chat, "private").await?;
    let never = "00000000-0000-4000-8000-000000000000";
    let routes = |id: &str| {
        let base = format!("/api/v1/chats/{id}");
        [
            (Method::GET, base.clone(), None),
            (Method::PATCH, base.clone(), Some(json!({"name": "mine"}))),
            (Method::DELETE, base.clone(), None),
            (Method::GET, format!("{base}/members"), None),
            (
                Method::POST,
                format!("{base}/members"),
                Some(json!({"user_id": ann.id})),
            ),
            (Method::DELETE, format!("{base}/members/{}", ann.id), None),
            (Method::GET, format!("{base}/messages"), None),
            (
                Method::POST,
                format!("{base}/messages"),
                Some(json!({"content": "let me in"})),
            ),
            (
                Method::POST,
                format!("{base}/read"),
                Some(json!({"seq": 1})),
            ),
        ]
    };
    for ((method, real, body), (_, fake, fake_body)) in routes(&chat).into_iter().zip(routes(never))
    {
        let answer = app
            .call(method.clone(), &real, Some(&eve.access), body)
            .await?;
        let nothing = app
            .call(method.clone(), &fake, Some(&eve.access), fake_body)
            .await?;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::NOT_FOUND, Some("chat_not_found")),
            "{method} {real}"
        );
        assert_eq!(
            (answer.status, answer.str("/title"), answer.str("/detail")),
            (
                nothing.status,
                nothing.str("/title"),
                nothing.str("/detail")
            ),
            "{method}: a chat one is not in looks like one that never was"
        );
    }
    let history = app.all_history(&ann, &chat).await?;
    assert_eq!(history.len(), 1, "nothing changed: {history:?}");
    assert_eq!(
        app.get(&format!("/api/v1/chats/{chat}"), &ann.access)
            .await?
            .str("/name"),
        "g"
    );
    app.stop().await
}

#[tokio::test]
async fn sends_are_rate_limited_per_user() -> R {
    let app = TestApp::spawn_with(|c| {
        c.limits.send_burst = 5;
        c.limits.send_per_second = 0.5;
    })
    .await?;
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "g", &[]).await?;
    for i in 0..5 {
        app.send(&ann, &chat, &format!("{i}")).await?;
    }
    let limited = app
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            &ann.access,
            json!({"content": "one more"}),
        )
        .await?;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert_eq!(limited.headers["retry-after"], "2");
    app.stop().await
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "g", &[]).await?;
    let url = app.url(&format!("/api/v1/chats/{chat}/messages"));
    let raw = |body: String, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&ann.access)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(&str, String, &'static str, u16, &str)> = vec![
        (
            "oversized body",
            format!("{{\"content\":\"{}\"}}", "x".repeat(70_000)),
            "application/json",
            413,
            "payload_too_large",
        ),
        (
            "content too long",
            json!({"content": "x".repeat(4001)}).to_string(),
            "application/json",
            400,
            "validation_failed",
        ),
        (
            "blank content",
            json!({"content": "  \n "}).to_string(),
            "application/json",
            400,
            "validation_failed",
        ),
        (
            "deep JSON",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            "application/json",
            400,
            "malformed_request",
        ),
        (
            "not JSON",
            "content=hi".into(),
            "application/json",
            400,
            "malformed_request",
        ),
        (
            "wrong type",
            json!({"content": 5}).to_string(),
            "application/json",
            400,
            "malformed_request",
        ),
        (
            "form post",
            "content=hi".into(),
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (
            "bad client_msg_id",
            json!({"content": "hi", "client_msg_id": "has space"}).to_string(),
            "application/json",
            400,
            "validation_failed",
        ),
        (
            "invalid UTF-8 escape",
            "{\"content\":\"\\ud800\"}".into(),
            "application/json",
            400,
            "malformed_request",
        ),
    ];
    for (name, body, content_type, status, code) in cases {
        let response = raw(body, content_type).await?;
        assert_eq!(response.status().as_u16(), status, "{name}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{name}"
        );
        let problem: Value = response.json().await?;
        assert_eq!(problem["code"], code, "{name}: {problem}");
    }
    // Nothing was appended: the next message is seq 1.
    let first = app.send(&ann, &chat, "the first real message").await?;
    assert_eq!(first["seq"], 1);
    let unknown_route = app.get("/api/v1/nope", &ann.access).await?;
    assert_eq!(
        (unknown_route.status, unknown_route.code()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let wrong_method = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/chats",
            Some(&ann.access),
            None,
        )
        .await?;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await
}

#[tokio::test]
async fn concurrent_senders_get_distinct_gapless_seqs() -> R {
    let app = std::sync::Arc::new(TestApp::spawn().await?);
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "g", &[]).await?;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (app, ann, chat) = (app.clone(), ann.clone(), chat.clone());
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                seqs.push(
                    app.send(&ann, &chat, &format!("{t}-{i}")).await?["seq"]
                        .as_i64()
                        .unwrap_or(-1),
                );
            }
            anyhow::Ok(seqs)
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        for seq in task.await?? {
            assert!(all.insert(seq), "seq {seq} given twice");
        }
    }
    assert_eq!(all, (1..=200).collect::<HashSet<i64>>());
    let app = std::sync::Arc::try_unwrap(app).map_err(|_| anyhow::anyhow!("app still shared"))?;
    app.stop().await
}
