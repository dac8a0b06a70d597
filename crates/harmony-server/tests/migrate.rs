//! `harmony migrate --to-cluster` through the real binary: a single node with users, friends,
//! chats, read markers and messages is stopped and moved into a private cluster; the cluster's
//! nodes then serve the same logins (old access and refresh tokens included), the same chat list
//! and history, and each chat's order goes on from where it was. A second run changes nothing;
//! a run after the cluster took new messages in a chat is refused.

use std::path::Path;

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::TestApp;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_harmony"))
}

async fn migrate(cluster: &TestCluster, dir: &Path) -> anyhow::Result<(bool, String)> {
    let args = ["migrate", "--to-cluster", "--data-dir"].map(std::ffi::OsStr::new);
    let mut all = args.to_vec();
    all.push(dir.as_os_str());
    harmony_testkit::run_harmony(bin(), &all, &cluster.env("all")).await
}

/// What a chat list says that must survive: each chat's id, unread count and last message.
fn chat_list(reply: &Value) -> Vec<(String, i64, String)> {
    let mut list: Vec<_> = reply
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_owned(),
                c["unread_count"].as_i64().unwrap_or(-1),
                c["last_message"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    list.sort();
    list
}

#[tokio::test]
async fn a_single_nodes_data_moves_into_a_cluster_that_goes_on_from_it() -> R {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("node");
    let node = TestApp::process(
        bin(),
        &[("HARMONY_DATA_DIR".into(), data.display().to_string())],
    )
    .await?;
    let [ann, bob, cat] = [
        node.register("ann").await?,
        node.register("bob").await?,
        node.register("cat").await?,
    ];
    node.befriend(&ann, &bob).await?;
    node.post(
        "/api/v1/friends/requests",
        &cat.access,
        json!({"username": "ann"}),
    )
    .await?;
    let group = node.group(&ann, "team", &[&bob, &cat]).await?;
    for i in 0..30 {
        let author = [&ann, &bob, &cat][i % 3];
        node.send(author, &group, &format!("message {i}")).await?;
    }
    let direct = node
        .post(
            "/api/v1/chats",
            &ann.access,
            json!({"kind": "direct", "member_ids": [bob.id]}),
        )
        .await?
        .str("/id");
    node.send(&ann, &direct, "just us").await?;
    node.post(
        &format!("/api/v1/chats/{group}/read"),
        &bob.access,
        json!({"seq": 10}),
    )
    .await?;
    let history_before = node.all_history(&bob, &group).await?;
    let chats_before = chat_list(&node.get("/api/v1/chats", &bob.access).await?.body);
    node.stop().await?;

    let cluster = TestCluster::start().await?;
    let (ok, said) = migrate(&cluster, &data).await?;
    assert!(ok, "migration failed: {said}");
    assert!(said.contains("3 users, 2 chats and 31 messages"), "{said}");
    let (ok, said) = migrate(&cluster, &data).await?;
    assert!(
        ok,
        "a second run (after an interruption) must succeed: {said}"
    );

    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let gateway = cluster.node("gateway").await?;
    // Logins survive: ann's access token as it was, her refresh token, bob's password.
    assert_eq!(
        api.get("/api/v1/users/me", &ann.access)
            .await?
            .status
            .as_u16(),
        200
    );
    let refreshed = api
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": ann.refresh})),
        )
        .await?;
    assert_eq!(refreshed.status.as_u16(), 200, "{refreshed:?}");
    let login = api
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "bob", "password": "password-bob"})),
        )
        .await?;
    assert_eq!(login.status.as_u16(), 200);
    // The same history, chat list (unread counts from the read marker), friends and requests.
    assert_eq!(api.all_history(&bob, &group).await?, history_before);
    assert_eq!(
        chat_list(&api.get("/api/v1/chats", &bob.access).await?.body),
        chats_before
    );
    let friends = api.get("/api/v1/friends", &ann.access).await?;
    assert_eq!(friends.body[0]["id"], bob.id.as_str(), "{:?}", friends.body);
    let requests = api.get("/api/v1/friends/requests", &ann.access).await?;
    assert_eq!(requests.body["incoming"][0]["from"]["username"], "cat");

    // The order goes on: the next message is 31, and a resume from 25 gets 26 to 31.
    let next = api.send(&cat, &group, "in the cluster").await?;
    assert_eq!(next["seq"], 31);
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    ws.send(json!({"type": "resume", "chats": {group.clone(): 25}}))
        .await?;
    for seq in 26..=31 {
        assert_eq!(ws.next_of("message").await?["message"]["seq"], seq);
    }
    let (ok, said) = migrate(&cluster, &data).await?;
    assert!(!ok && said.contains("past this node's"), "{said}");
    api.stop().await?;
    gateway.stop().await
}
