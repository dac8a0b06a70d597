//! Who may put whom into a chat, how fast, and how much one chat list costs, through the front
//! door: by default strangers cannot open a direct chat with someone or add them to a group;
//! friends and people who already share a chat can. Chat creation and member adds are rate
//! limited per user, and `GET /chats` comes in pages.

use harmony_testkit::{TestApp, TestUser};
use reqwest::StatusCode;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

/// A node with the real consent rule (tests default to `anyone`).
async fn node() -> anyhow::Result<TestApp> {
    TestApp::spawn_with(|c| c.limits.contact = "friends_and_chat_members".into()).await
}

async fn befriend(app: &TestApp, a: &TestUser, b: &TestUser) -> anyhow::Result<()> {
    let request = app
        .post(
            "/api/v1/friends/requests",
            &a.access,
            json!({"username": b.username}),
        )
        .await?;
    let id = request.str("/id");
    let accepted = app
        .post(
            &format!("/api/v1/friends/requests/{id}/accept"),
            &b.access,
            json!({}),
        )
        .await?;
    anyhow::ensure!(accepted.status == StatusCode::OK, "accept: {accepted:?}");
    Ok(())
}

fn direct(with: &TestUser) -> Value {
    json!({"kind": "direct", "member_ids": [with.id]})
}

#[tokio::test]
async fn strangers_cannot_open_a_direct_chat_or_add_someone_to_a_group() -> R {
    let app = node().await?;
    let [ann, bob, eve] = [
        app.register("ann").await?,
        app.register("bob").await?,
        app.register("eve").await?,
    ];
    let refused = app.post("/api/v1/chats", &eve.access, direct(&ann)).await?;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, Some("contact_not_allowed"))
    );
    let group = json!({"kind": "group", "name": "spam", "member_ids": [ann.id]});
    let refused = app.post("/api/v1/chats", &eve.access, group).await?;
    assert_eq!(refused.code(), Some("contact_not_allowed"));
    let own = app
        .post(
            "/api/v1/chats",
            &eve.access,
            json!({"kind": "group", "name": "mine", "member_ids": []}),
        )
        .await?;
    let own = own.str("/id");
    let add = app
        .post(
            &format!("/api/v1/chats/{own}/members"),
            &eve.access,
            json!({"user_id": ann.id}),
        )
        .await?;
    assert_eq!(add.code(), Some("contact_not_allowed"));
    let chats = app.get("/api/v1/chats", &ann.access).await?;
    assert_eq!(chats.body, json!([]), "ann was put into nothing");

    // A friend may; so may someone who already shares a chat (bob, once in ann's group).
    befriend(&app, &ann, &bob).await?;
    let dm = app.post("/api/v1/chats", &bob.access, direct(&ann)).await?;
    assert_eq!(dm.status, StatusCode::CREATED);
    let team = app.group(&ann, "team", &[&bob]).await?;
    befriend(&app, &ann, &eve).await?;
    let add_eve = app
        .post(
            &format!("/api/v1/chats/{team}/members"),
            &ann.access,
            json!({"user_id": eve.id}),
        )
        .await?;
    assert_eq!(add_eve.status, StatusCode::CREATED);
    let eve_bob = app.post("/api/v1/chats", &eve.access, direct(&bob)).await?;
    assert_eq!(
        eve_bob.status,
        StatusCode::CREATED,
        "eve and bob share the team chat: {eve_bob:?}"
    );
    app.stop().await
}

#[tokio::test]
async fn chat_creation_and_member_adds_are_rate_limited_per_user() -> R {
    let app = TestApp::spawn_with(|c| {
        c.limits.chat_create_burst = 3;
        c.limits.chat_create_per_hour = 1.0;
        c.limits.member_add_burst = 2;
        c.limits.member_add_per_hour = 1.0;
    })
    .await?;
    let ann = app.register("ann").await?;
    let others = [
        app.register("bob").await?,
        app.register("cat").await?,
        app.register("dan").await?,
    ];
    let group = |name: &str| json!({"kind": "group", "name": name, "member_ids": []});
    let mut chats = Vec::new();
    for i in 0..3 {
        let made = app
            .post("/api/v1/chats", &ann.access, group(&format!("g{i}")))
            .await?;
        assert_eq!(made.status, StatusCode::CREATED);
        chats.push(made.str("/id"));
    }
    let limited = app.post("/api/v1/chats", &ann.access, group("g3")).await?;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert!(limited.headers.contains_key("retry-after"));
    let path = format!("/api/v1/chats/{}/members", chats[0]);
    let mut statuses = Vec::new();
    for user in &others {
        let added = app
            .post(&path, &ann.access, json!({"user_id": user.id}))
            .await?;
        statuses.push(added.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let bob_makes = app
        .post("/api/v1/chats", &others[0].access, group("bob's"))
        .await?;
    assert_eq!(bob_makes.status, StatusCode::CREATED, "per user");
    app.stop().await
}

#[tokio::test]
async fn the_chat_list_comes_in_pages_linked_newest_first() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(app.group(&ann, &format!("g{i}"), &[]).await?);
    }
    // Activity reorders: a message makes g2 the most recent.
    app.send(&ann, &made[2], "bump").await?;
    let mut seen = Vec::new();
    let mut next = Some("/api/v1/chats?limit=3".to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let page = app.get(&path, &ann.access).await?;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let items = page.body.as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 3);
        seen.extend(items);
        next = page
            .headers
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(url, _)| url.to_owned());
        pages += 1;
    }
    assert_eq!(pages, 3);
    let ids: std::collections::HashSet<&str> =
        seen.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!((seen.len(), ids.len()), (7, 7), "each chat once: {seen:?}");
    assert_eq!(
        seen[0]["id"],
        made[2].as_str(),
        "the most recently active first"
    );
    let active = |c: &Value| {
        let at = c["last_message"]["created_at"]
            .as_str()
            .or(c["created_at"].as_str())
            .unwrap_or_default();
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp_nanos())
            .unwrap_or_default()
    };
    assert!(
        seen.windows(2).all(|w| active(&w[0]) >= active(&w[1])),
        "newest activity first across pages"
    );
    for bad in ["limit=0", "limit=201", "cursor=nope", "cursor=1.2"] {
        let reply = app
            .get(&format!("/api/v1/chats?{bad}"), &ann.access)
            .await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    app.stop().await
}
