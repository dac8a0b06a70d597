//! Users, friends, chats and members through the front door.

use harmony_testkit::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

type R = anyhow::Result<()>;

#[tokio::test]
async fn users_can_be_found_and_read() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    app.register("annie").await?;
    app.register("bob").await?;
    let found = app.get("/api/v1/users?search=an", &ann.access).await?;
    let names: Vec<&str> = found
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["ann", "annie"]);
    let none = app.get("/api/v1/users?search=%25", &ann.access).await?;
    assert_eq!(none.body, json!([]));
    let profile = app
        .get(&format!("/api/v1/users/{}", ann.id), &ann.access)
        .await?;
    assert_eq!(profile.body["username"], "ann");
    assert!(profile.body.get("password_hash").is_none());
    let missing = app
        .get(
            "/api/v1/users/00000000-0000-4000-8000-000000000000",
            &ann.access,
        )
        .await?;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, Some("user_not_found"))
    );
    let malformed = app.get("/api/v1/users/not-an-id", &ann.access).await?;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
    app.stop().await
}

#[tokio::test]
async fn friend_requests_accept_decline_and_unfriend() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob, cat) = (
        app.register("ann").await?,
        app.register("bob").await?,
        app.register("cat").await?,
    );
    let sent = app
        .post(
            "/api/v1/friends/requests",
            &ann.access,
            json!({"username": "bob"}),
        )
        .await?;
    assert_eq!(sent.status, StatusCode::CREATED);
    assert_eq!(
        (
            sent.str("/from/username"),
            sent.str("/to/username"),
            sent.str("/status")
        ),
        ("ann".into(), "bob".into(), "pending".into())
    );
    let dup = app
        .post(
            "/api/v1/friends/requests",
            &bob.access,
            json!({"username": "ann"}),
        )
        .await?;
    assert_eq!(dup.code(), Some("friend_request_pending"));
    let selfish = app
        .post(
            "/api/v1/friends/requests",
            &ann.access,
            json!({"username": "ann"}),
        )
        .await?;
    assert_eq!(
        (selfish.status.as_u16(), selfish.code()),
        (409, Some("self_friend_request"))
    );
    let ghost = app
        .post(
            "/api/v1/friends/requests",
            &ann.access,
            json!({"username": "ghost"}),
        )
        .await?;
    assert_eq!(ghost.code(), Some("user_not_found"));

    let lists = app.get("/api/v1/friends/requests", &bob.access).await?;
    assert_eq!(lists.body["incoming"][0]["from"]["username"], "ann");
    assert_eq!(lists.body["outgoing"], json!([]));
    let id = sent.str("/id");
    let by_ann = app
        .post(
            &format!("/api/v1/friends/requests/{id}/accept"),
            &ann.access,
            json!({}),
        )
        .await?;
    assert_eq!(
        by_ann.code(),
        Some("friend_request_not_found"),
        "only the addressee may answer"
    );
    let accepted = app
        .post(
            &format!("/api/v1/friends/requests/{id}/accept"),
            &bob.access,
            json!({}),
        )
        .await?;
    assert_eq!(
        (accepted.status, accepted.str("/status")),
        (StatusCode::OK, "accepted".into())
    );
    let twice = app
        .post(
            &format!("/api/v1/friends/requests/{id}/decline"),
            &bob.access,
            json!({}),
        )
        .await?;
    assert_eq!(twice.code(), Some("friend_request_not_pending"));
    let friends = app.get("/api/v1/friends", &ann.access).await?;
    assert_eq!(friends.body[0]["username"], "bob");
    let again = app
        .post(
            "/api/v1/friends/requests",
            &ann.access,
            json!({"username": "bob"}),
        )
        .await?;
    assert_eq!(again.code(), Some("already_friends"));

    let to_cat = app
        .post(
            "/api/v1/friends/requests",
            &ann.access,
            json!({"username": "cat"}),
        )
        .await?;
    let declined = app
        .post(
            &format!("/api/v1/friends/requests/{}/decline", to_cat.str("/id")),
            &cat.access,
            json!({}),
        )
        .await?;
    assert_eq!(declined.str("/status"), "declined");

    let gone = app
        .delete(&format!("/api/v1/friends/{}", bob.id), &ann.access)
        .await?;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/friends", &bob.access).await?.body,
        json!([])
    );
    let not = app
        .delete(&format!("/api/v1/friends/{}", bob.id), &ann.access)
        .await?;
    assert_eq!(not.code(), Some("not_friends"));
    app.stop().await
}

#[tokio::test]
async fn chats_roles_and_membership_rules() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob, cat, dan) = (
        app.register("ann").await?,
        app.register("bob").await?,
        app.register("cat").await?,
        app.register("dan").await?,
    );
    let chat = app.group(&ann, "team", &[&bob]).await?;
    let got = app
        .get(&format!("/api/v1/chats/{chat}"), &bob.access)
        .await?;
    assert_eq!(
        (got.str("/kind"), got.str("/name"), got.str("/owner_id")),
        ("group".into(), "team".into(), ann.id.clone())
    );
    assert_eq!(got.body["member_count"], 2);
    let hidden = app
        .get(&format!("/api/v1/chats/{chat}"), &cat.access)
        .await?;
    assert_eq!(
        (hidden.status, hidden.code()),
        (StatusCode::NOT_FOUND, Some("chat_not_found"))
    );

    let members = app
        .get(&format!("/api/v1/chats/{chat}/members"), &bob.access)
        .await?;
    let roles: Vec<(String, String)> = members
        .body
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap_or("").to_owned(),
                m["role"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("ann".to_owned(), "owner".to_owned()),
            ("bob".to_owned(), "member".to_owned())
        ]
    );

    // Members cannot manage; the owner can.
    let path = format!("/api/v1/chats/{chat}/members");
    let by_bob = app
        .post(&path, &bob.access, json!({"user_id": cat.id}))
        .await?;
    assert_eq!(by_bob.code(), Some("forbidden"));
    let added = app
        .post(&path, &ann.access, json!({"user_id": cat.id}))
        .await?;
    assert_eq!(
        (added.status, added.str("/role")),
        (StatusCode::CREATED, "member".into())
    );
    let twice = app
        .post(&path, &ann.access, json!({"user_id": cat.id}))
        .await?;
    assert_eq!(twice.code(), Some("already_member"));
    let bad_id = app
        .post(&path, &ann.access, json!({"user_id": "nope"}))
        .await?;
    assert_eq!(bad_id.code(), Some("validation_failed"));

    let rename = app
        .call(
            Method::PATCH,
            &format!("/api/v1/chats/{chat}"),
            Some(&bob.access),
            Some(json!({"name": "x"})),
        )
        .await?;
    assert_eq!(rename.code(), Some("forbidden"));
    let renamed = app
        .call(
            Method::PATCH,
            &format!("/api/v1/chats/{chat}"),
            Some(&ann.access),
            Some(json!({"name": "crew"})),
        )
        .await?;
    assert_eq!(renamed.str("/name"), "crew");

    let kick = app
        .delete(&format!("{path}/{}", cat.id), &bob.access)
        .await?;
    assert_eq!(kick.code(), Some("forbidden"));
    let leave = app
        .delete(&format!("{path}/{}", bob.id), &bob.access)
        .await?;
    assert_eq!(leave.status, StatusCode::NO_CONTENT);
    let owner_leave = app
        .delete(&format!("{path}/{}", ann.id), &ann.access)
        .await?;
    assert_eq!(owner_leave.code(), Some("owner_cannot_leave"));
    let not_member = app
        .delete(&format!("{path}/{}", dan.id), &ann.access)
        .await?;
    assert_eq!(not_member.code(), Some("member_not_found"));

    let delete_by_cat = app
        .delete(&format!("/api/v1/chats/{chat}"), &cat.access)
        .await?;
    assert_eq!(delete_by_cat.code(), Some("forbidden"));
    let deleted = app
        .delete(&format!("/api/v1/chats/{chat}"), &ann.access)
        .await?;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app
        .get(&format!("/api/v1/chats/{chat}"), &ann.access)
        .await?;
    assert_eq!(gone.code(), Some("chat_not_found"));
    app.stop().await
}

#[tokio::test]
async fn direct_chats_are_unique_per_pair() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let first = app
        .post(
            "/api/v1/chats",
            &ann.access,
            json!({"kind": "direct", "member_ids": [bob.id]}),
        )
        .await?;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app
        .post(
            "/api/v1/chats",
            &bob.access,
            json!({"kind": "direct", "member_ids": [ann.id]}),
        )
        .await?;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.str("/id"), first.str("/id"));
    let three = app.post("/api/v1/chats", &ann.access, json!({"kind": "direct", "member_ids": [bob.id, ann.id, "00000000-0000-4000-8000-000000000000"]})).await?;
    assert_eq!(three.code(), Some("validation_failed"));
    let lonely = app
        .post(
            "/api/v1/chats",
            &ann.access,
            json!({"kind": "direct", "member_ids": []}),
        )
        .await?;
    assert_eq!(lonely.code(), Some("validation_failed"));
    let add = app
        .post(
            &format!("/api/v1/chats/{}/members", first.str("/id")),
            &ann.access,
            json!({"user_id": bob.id}),
        )
        .await?;
    assert_eq!(add.code(), Some("direct_chat_fixed"));
    let unknown = app
        .post(
            "/api/v1/chats",
            &ann.access,
            json!({"kind": "group", "member_ids": ["00000000-0000-4000-8000-000000000000"]}),
        )
        .await?;
    assert_eq!(unknown.code(), Some("user_not_found"));
    let kind = app
        .post("/api/v1/chats", &ann.access, json!({"kind": "channel"}))
        .await?;
    assert_eq!(kind.code(), Some("validation_failed"));
    app.stop().await
}

#[tokio::test]
async fn chat_list_shows_activity_and_unread_counts() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let quiet = app.group(&ann, "quiet", &[&bob]).await?;
    let busy = app.group(&ann, "busy", &[&bob]).await?;
    app.send(&ann, &quiet, "first").await?;
    for i in 0..3 {
        app.send(&ann, &busy, &format!("m{i}")).await?;
    }
    app.send(&bob, &busy, "from bob").await?;
    let list = harmony_testkit::eventually("the sink to store every message", || async {
        let list = app.get("/api/v1/chats", &bob.access).await?;
        Ok((list.body[0]["last_message"]["content"] == "from bob").then_some(list))
    })
    .await?;
    assert_eq!(
        list.body[0]["id"],
        busy.as_str(),
        "most recently active first"
    );
    assert_eq!(
        list.body[0]["unread_count"], 3,
        "bob's own message is not unread"
    );
    assert_eq!(list.body[1]["unread_count"], 1);
    let read = app
        .post(
            &format!("/api/v1/chats/{busy}/read"),
            &bob.access,
            json!({"seq": 2}),
        )
        .await?;
    assert_eq!(read.status, StatusCode::NO_CONTENT);
    let list = app.get("/api/v1/chats", &bob.access).await?;
    assert_eq!(list.body[0]["unread_count"], 1);
    // Markers never move back, and a marker past the end is clamped.
    app.post(
        &format!("/api/v1/chats/{busy}/read"),
        &bob.access,
        json!({"seq": 1}),
    )
    .await?;
    app.post(
        &format!("/api/v1/chats/{busy}/read"),
        &bob.access,
        json!({"seq": 999}),
    )
    .await?;
    let list = app.get("/api/v1/chats", &bob.access).await?;
    assert_eq!(list.body[0]["unread_count"], 0);
    let negative = app
        .post(
            &format!("/api/v1/chats/{busy}/read"),
            &bob.access,
            json!({"seq": -1}),
        )
        .await?;
    assert_eq!(negative.code(), Some("validation_failed"));
    app.stop().await
}
