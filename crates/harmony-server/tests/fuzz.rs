//! Fuzzing through the front door, bounded (a fixed number of generated cases, so CI time is
//! known): random JSON bodies, content types and cursors against every route that reads one,
//! and random frames on one WebSocket. Whatever comes in: no 5xx, no panic, the WebSocket
//! answers each frame and stays up, and the node still serves afterwards. Schemathesis
//! (`scripts/api-fuzz`) fuzzes the REST API against its OpenAPI document besides.

use std::sync::Arc;

use harmony_testkit::{TestApp, TestUser};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};

/// Any JSON value, nested a few levels, with strings that look like ids, cursors, names and
/// frame types as well as arbitrary text.
fn json_value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        Just(String::new()),
        "\\PC{0,40}",
        Just("00000000-0000-4000-8000-000000000000".to_owned()),
        Just("01HZZZZZZZZZZZZZZZZZZZZZZZ".to_owned()),
        Just("group".to_owned()),
        Just("direct".to_owned()),
        Just("resume".to_owned()),
        Just("ping".to_owned()),
        Just("\u{202e}\u{200b}x".to_owned()),
        Just("x".repeat(5000)),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text.prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let keys = prop_oneof![
            "[a-z_]{1,12}",
            Just("type".to_owned()),
            Just("chats".to_owned()),
            Just("username".to_owned()),
            Just("password".to_owned()),
            Just("content".to_owned()),
            Just("member_ids".to_owned()),
            Just("seq".to_owned()),
            Just("user_id".to_owned()),
            Just("name".to_owned()),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body as sent: JSON of any shape, or bytes that are not JSON at all.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => Just(b"[".repeat(5000)),
    ]
}

/// The routes that read a body or a cursor, with `{chat}` and `{user}` filled in.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/friends/requests"),
    ("POST", "/api/v1/chats"),
    ("PATCH", "/api/v1/chats/{chat}"),
    ("POST", "/api/v1/chats/{chat}/members"),
    ("POST", "/api/v1/chats/{chat}/messages"),
    ("POST", "/api/v1/chats/{chat}/read"),
];

struct World {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    ann: TestUser,
    chat: String,
}

fn world() -> anyhow::Result<Arc<World>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (app, ann, chat) = rt.block_on(async {
        let app = TestApp::spawn().await?;
        let ann = app.register("ann").await?;
        let chat = app.group(&ann, "fuzzed", &[]).await?;
        app.send(&ann, &chat, "before").await?;
        anyhow::Ok((app, ann, chat))
    })?;
    Ok(Arc::new(World { rt, app, ann, chat }))
}

#[test]
fn random_bodies_and_cursors_never_get_a_5xx() -> anyhow::Result<()> {
    let w = world()?;
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let content_type = prop_oneof![
        4 => Just("application/json"),
        1 => Just("text/plain"),
        1 => Just("application/json; charset=utf-8"),
    ];
    let cursor = prop_oneof!["\\PC{0,40}", "[0-9A-Za-z.-]{0,60}"];
    let case = (0..ROUTES.len(), body(), content_type, cursor);
    let result = runner.run(&case, |(route, body, content_type, cursor)| {
        let (method, path) = ROUTES[route];
        let path = path.replace("{chat}", &w.chat).replace("{user}", &w.ann.id);
        let status = w.rt.block_on(async {
            let body_answer = w
                .app
                .client
                .request(method.parse().unwrap_or(Method::POST), w.app.url(&path))
                .bearer_auth(&w.ann.access)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await?
                .status();
            let query = [("before", cursor.as_str()), ("limit", "5")];
            let history = format!("/api/v1/chats/{}/messages", w.chat);
            let cursor_answer = w
                .app
                .client
                .get(w.app.url(&history))
                .bearer_auth(&w.ann.access)
                .query(&query)
                .send()
                .await?
                .status();
            let chats_answer = w
                .app
                .client
                .get(w.app.url("/api/v1/chats"))
                .bearer_auth(&w.ann.access)
                .query(&[("cursor", cursor.as_str())])
                .send()
                .await?
                .status();
            anyhow::Ok([body_answer, cursor_answer, chats_answer])
        });
        let statuses = status.map_err(|e| TestCaseError::fail(e.to_string()))?;
        for s in statuses {
            prop_assert!(!s.is_server_error(), "{method} {path}: {s}");
        }
        Ok(())
    });
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    let served = w.rt.block_on(w.app.metric("harmony_http_requests_total"))?;
    anyhow::ensure!(served >= 1200.0, "only {served} requests were served");
    // Still serving, the fuzzed chat intact.
    let history = w.rt.block_on(w.app.all_history(&w.ann, &w.chat))?;
    anyhow::ensure!(
        history.first().map(|m| m["content"].clone()) == Some(json!("before")),
        "{history:?}"
    );
    Ok(())
}

#[test]
fn random_frames_are_each_answered_and_the_websocket_stays_up() -> anyhow::Result<()> {
    let w = world()?;
    // `run` takes a `Fn`: the one socket is borrowed mutably per case through a cell.
    let ws = std::cell::RefCell::new(w.rt.block_on(w.app.ws(&w.ann.access))?.0);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let frame = prop_oneof![
        3 => json_value().prop_map(|v| v.to_string()),
        2 => (json_value(), prop::collection::btree_map("\\PC{0,40}", any::<i64>(), 0..8))
            .prop_map(|(_, chats)| json!({"type": "resume", "chats": chats}).to_string()),
        1 => "\\PC{0,100}",
    ];
    let result = runner.run(&frame, |text| {
        let mut ws = ws.borrow_mut();
        let answered = w.rt.block_on(async {
            ws.send_text(text.clone()).await?;
            // Every frame gets an answer: `pong`, an error, or a resume's frames up to `resumed`.
            loop {
                let reply = ws.next().await?;
                match reply["type"].as_str() {
                    Some("pong") | Some("resumed") => return anyhow::Ok(()),
                    Some("error") if reply["code"] == "bad_frame" => return anyhow::Ok(()),
                    _ => {}
                }
            }
        });
        answered.map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))
    });
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ws = ws.into_inner();
    w.rt.block_on(async {
        ws.send(json!({"type": "ping"})).await?;
        anyhow::ensure!(ws.next().await?["type"] == "pong", "still up");
        anyhow::Ok(())
    })
}
