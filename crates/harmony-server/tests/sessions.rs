//! Login sessions end for real, through the front door: logout and reuse of a rotated refresh
//! token refuse that session's access tokens at once and close its WebSockets (4001); a user's
//! sessions and WebSockets are capped; a password change ends every other session. The
//! cluster's version (a logout on one node seen by the others) is in `cluster.rs`.

use std::time::{Duration, Instant};

use harmony_testkit::ws::Ended;
use harmony_testkit::TestApp;
use harmony_testkit::TestUser;
use reqwest::{Method, StatusCode};
use serde_json::json;

type R = anyhow::Result<()>;

/// What the brief promises: a session ended anywhere is over within a second.
const ENDS_WITHIN: Duration = Duration::from_secs(1);

async fn login(app: &TestApp, user: &TestUser) -> anyhow::Result<TestUser> {
    let body =
        json!({"username": user.username, "password": format!("password-{}", user.username)});
    let reply = app
        .call(Method::POST, "/api/v1/auth/login", None, Some(body))
        .await?;
    anyhow::ensure!(reply.status == StatusCode::OK, "login: {reply:?}");
    Ok(TestUser {
        access: reply.str("/access_token"),
        refresh: reply.str("/refresh_token"),
        ..user.clone()
    })
}

async fn auth_call(app: &TestApp, path: &str, refresh: &str) -> anyhow::Result<StatusCode> {
    let body = json!({ "refresh_token": refresh });
    Ok(app.call(Method::POST, path, None, Some(body)).await?.status)
}

#[tokio::test]
async fn logout_refuses_the_access_token_and_closes_the_sessions_websockets_at_once() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let phone = login(&app, &ann).await?;
    assert_ne!(ann.session(), phone.session(), "each login is a session");
    let (mut ws, _) = app.ws(&ann.access).await?;
    let (mut ws_phone, _) = app.ws(&phone.access).await?;
    assert_eq!(
        app.get("/api/v1/users/me", &ann.access).await?.status,
        StatusCode::OK
    );

    let started = Instant::now();
    let out = auth_call(&app, "/api/v1/auth/logout", &ann.refresh).await?;
    assert_eq!(out, StatusCode::NO_CONTENT);
    assert_eq!(ws.until_closed().await?, Ended::Closed(Some(4001)));
    assert!(
        started.elapsed() < ENDS_WITHIN,
        "closed after {:?}",
        started.elapsed()
    );
    let me = app.get("/api/v1/users/me", &ann.access).await?;
    assert_eq!(
        (me.status, me.code()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (status, code) = app
        .ws_refused(&[("authorization", format!("Bearer {}", ann.access))])
        .await?;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));

    // The user's other login goes on.
    ws_phone.send(json!({"type": "ping"})).await?;
    assert_eq!(ws_phone.next().await?["type"], "pong");
    assert_eq!(
        app.get("/api/v1/users/me", &phone.access).await?.status,
        StatusCode::OK
    );
    app.stop().await
}

#[tokio::test]
async fn reuse_of_a_rotated_refresh_token_ends_the_whole_session() -> R {
    let app = TestApp::spawn_with(|c| c.auth.refresh_grace_secs = 0).await?;
    let ann = app.register("ann").await?;
    let body = json!({ "refresh_token": ann.refresh });
    let rotated = app
        .call(Method::POST, "/api/v1/auth/refresh", None, Some(body))
        .await?;
    assert_eq!(rotated.status, StatusCode::OK);
    let fresh = rotated.str("/access_token");
    let (mut ws, _) = app.ws(&fresh).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The old refresh token comes back (stolen?): the whole family ends, new tokens too.
    let reused = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": ann.refresh })),
        )
        .await?;
    assert_eq!(reused.code(), Some("refresh_token_reused"));
    assert_eq!(ws.until_closed().await?, Ended::Closed(Some(4001)));
    for token in [&ann.access, &fresh] {
        assert_eq!(
            app.get("/api/v1/users/me", token).await?.status,
            StatusCode::UNAUTHORIZED
        );
    }
    app.stop().await
}

#[tokio::test]
async fn signing_in_past_the_cap_ends_the_oldest_session() -> R {
    let app = TestApp::spawn_with(|c| c.auth.max_sessions_per_user = 2).await?;
    let first = app.register("ann").await?;
    let (mut ws, _) = app.ws(&first.access).await?;
    let second = login(&app, &first).await?;
    let third = login(&app, &first).await?;
    assert_eq!(ws.until_closed().await?, Ended::Closed(Some(4001)));
    assert_eq!(
        app.get("/api/v1/users/me", &first.access).await?.status,
        StatusCode::UNAUTHORIZED,
        "the oldest session ended"
    );
    assert_eq!(
        auth_call(&app, "/api/v1/auth/refresh", &first.refresh).await?,
        StatusCode::UNAUTHORIZED
    );
    for newer in [&second, &third] {
        assert_eq!(
            app.get("/api/v1/users/me", &newer.access).await?.status,
            StatusCode::OK
        );
    }
    app.stop().await
}

#[tokio::test]
async fn a_user_may_keep_only_so_many_websockets_open_on_a_node() -> R {
    let app = TestApp::spawn_with(|c| c.gateway.max_sessions_per_user = 2).await?;
    let ann = app.register("ann").await?;
    let bob = app.register("bob").await?;
    let (one, _) = app.ws(&ann.access).await?;
    let (_two, _) = app.ws(&ann.access).await?;
    let bearer = [("authorization", format!("Bearer {}", ann.access))];
    let (status, code) = app.ws_refused(&bearer).await?;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let (_other_user, _) = app.ws(&bob.access).await?;
    one.close().await;
    harmony_testkit::eventually("a closed WebSocket frees its place", || async {
        Ok(app.ws(&ann.access).await.is_ok().then_some(()))
    })
    .await?;
    app.stop().await
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_and_keeps_this_one() -> R {
    let app = TestApp::spawn().await?;
    let laptop = app.register("ann").await?;
    let phone = login(&app, &laptop).await?;
    let (mut phone_ws, _) = app.ws(&phone.access).await?;
    let (mut laptop_ws, _) = app.ws(&laptop.access).await?;
    let path = "/api/v1/users/me/password";

    let wrong = app
        .post(
            path,
            &laptop.access,
            json!({"current_password": "not-it-at-all", "new_password": "a-new-password"}),
        )
        .await?;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::FORBIDDEN, Some("invalid_credentials"))
    );
    let short = app
        .post(
            path,
            &laptop.access,
            json!({"current_password": "password-ann", "new_password": "short"}),
        )
        .await?;
    assert_eq!(short.code(), Some("validation_failed"));

    let started = Instant::now();
    let changed = app
        .post(
            path,
            &laptop.access,
            json!({"current_password": "password-ann", "new_password": "a-new-password"}),
        )
        .await?;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{changed:?}");
    assert_eq!(phone_ws.until_closed().await?, Ended::Closed(Some(4001)));
    assert!(started.elapsed() < ENDS_WITHIN);
    assert_eq!(
        app.get("/api/v1/users/me", &phone.access).await?.status,
        StatusCode::UNAUTHORIZED,
        "the other session ended"
    );
    assert_eq!(
        auth_call(&app, "/api/v1/auth/refresh", &phone.refresh).await?,
        StatusCode::UNAUTHORIZED
    );
    // This session goes on, and only the new password signs in.
    laptop_ws.send(json!({"type": "ping"})).await?;
    assert_eq!(laptop_ws.next().await?["type"], "pong");
    assert_eq!(
        app.get("/api/v1/users/me", &laptop.access).await?.status,
        StatusCode::OK
    );
    let old = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "ann", "password": "password-ann"})),
        )
        .await?;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "ann", "password": "a-new-password"})),
        )
        .await?;
    assert_eq!(new.status, StatusCode::OK);
    app.stop().await
}
