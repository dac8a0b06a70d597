//! Accounts and sessions through the front door: registration, login, refresh rotation with its
//! grace period and reuse detection, logout, forged tokens, cookie sessions with CSRF.

use std::time::Duration;

use base64::Engine;
use harmony_testkit::{TestApp, TEST_JWT_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

async fn post_anon(
    app: &TestApp,
    path: &str,
    body: Value,
) -> anyhow::Result<harmony_testkit::Reply> {
    app.call(Method::POST, path, None, Some(body)).await
}

#[tokio::test]
async fn register_login_and_me() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let me = app.get("/api/v1/users/me", &ann.access).await?;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "ann");
    assert_eq!(me.body["id"], ann.id.as_str());
    assert!(me.body["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let again = post_anon(
        &app,
        "/api/v1/auth/register",
        json!({"username": "ANN", "password": "whatever123"}),
    )
    .await?;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), Some("username_taken"));

    let login = post_anon(
        &app,
        "/api/v1/auth/login",
        json!({"username": "ann", "password": "password-ann"}),
    )
    .await?;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["expires_in"], 900);
    assert!(login.str("/access_token").len() > 20 && login.str("/refresh_token").len() == 43);

    let wrong = post_anon(
        &app,
        "/api/v1/auth/login",
        json!({"username": "ann", "password": "not-the-password"}),
    )
    .await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), Some("invalid_credentials"));
    let nobody = post_anon(
        &app,
        "/api/v1/auth/login",
        json!({"username": "nobody", "password": "password-x"}),
    )
    .await?;
    assert_eq!(nobody.code(), Some("invalid_credentials"));
    app.stop().await
}

#[tokio::test]
async fn registration_reports_every_bad_field() -> R {
    let app = TestApp::spawn().await?;
    let reply = post_anon(
        &app,
        "/api/v1/auth/register",
        json!({"username": "a!", "password": "short", "display_name": "  "}),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), Some("validation_failed"));
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["username", "password", "display_name"]);
    // Nothing was written: the name is still free.
    app.register("a_b").await?;
    app.stop().await
}

#[tokio::test]
async fn password_work_past_a_bounded_queue_is_shed_with_retry_after() -> R {
    let app = std::sync::Arc::new(TestApp::spawn_with(|c| c.limits.password_queue = 1).await?);
    app.register("ann").await?;
    // Forty logins at once: one hash per core runs, one waits, the rest are shed at once.
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                post_anon(
                    &app,
                    "/api/v1/auth/login",
                    json!({"username": "ann", "password": "password-ann"}),
                )
                .await
            })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for attempt in attempts {
        let reply = attempt.await??;
        match reply.status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(reply.code(), Some("unavailable"));
                assert_eq!(reply.headers["retry-after"], "1");
                shed += 1;
            }
            other => anyhow::bail!("unexpected {other}: {reply:?}"),
        }
    }
    assert!(ok >= 1 && shed >= 1, "{ok} answered, {shed} shed");
    Ok(())
}

#[tokio::test]
async fn names_that_reorder_or_hide_text_are_refused() -> R {
    let app = TestApp::spawn().await?;
    // "ann" followed by a right-to-left override: shown as someone else's name.
    let reply = post_anon(
        &app,
        "/api/v1/auth/register",
        json!({"username": "mallory", "password": "password-mallory", "display_name": "ann\u{202E}nimda"}),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["errors"][0]["field"], "display_name");
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "g", &[]).await?;
    let renamed = app
        .call(
            Method::PATCH,
            &format!("/api/v1/chats/{chat}"),
            Some(&ann.access),
            Some(json!({"name": "g\u{200B}\u{200B}"})),
        )
        .await?;
    assert_eq!(renamed.status, StatusCode::BAD_REQUEST, "{renamed:?}");
    assert_eq!(renamed.code(), Some("validation_failed"));
    app.stop().await
}

#[tokio::test]
async fn refresh_rotates_with_grace_and_detects_reuse() -> R {
    let app = TestApp::spawn_with(|c| c.auth.refresh_grace_secs = 1).await?;
    let ann = app.register("ann").await?;
    let first = post_anon(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": ann.refresh}),
    )
    .await?;
    assert_eq!(first.status, StatusCode::OK);
    let second_token = first.str("/refresh_token");
    assert_ne!(second_token, ann.refresh, "refresh must rotate the token");
    assert_eq!(
        app.get("/api/v1/users/me", &first.str("/access_token"))
            .await?
            .status,
        StatusCode::OK
    );

    // Within the grace period the old token still works (two tabs racing).
    let racing = post_anon(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": ann.refresh}),
    )
    .await?;
    assert_eq!(racing.status, StatusCode::OK);

    // After it, presenting the old token is reuse: the whole family is revoked.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let reuse = post_anon(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": ann.refresh}),
    )
    .await?;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reuse.code(), Some("refresh_token_reused"));
    let newest = post_anon(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": second_token}),
    )
    .await?;
    assert_eq!(
        newest.code(),
        Some("invalid_refresh_token"),
        "the family must be revoked"
    );

    let unknown = post_anon(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": "nope"}),
    )
    .await?;
    assert_eq!(unknown.code(), Some("invalid_refresh_token"));
    app.stop().await
}

#[tokio::test]
async fn logout_ends_the_session() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let out = post_anon(
        &app,
        "/api/v1/auth/logout",
        json!({"refresh_token": ann.refresh}),
    )
    .await?;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = post_anon(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": ann.refresh}),
    )
    .await?;
    assert_eq!(after.code(), Some("invalid_refresh_token"));
    app.stop().await
}

fn sign(claims: Value, key: &[u8]) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("signs")
}

#[tokio::test]
async fn forged_none_and_expired_tokens_are_refused() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let now = time_now();
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let sid = ann.session();
    let claims = json!({"sub": ann.id, "sid": sid, "iat": now, "exp": now + 600, "typ": "access"});
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims.to_string())
    );
    let forged = sign(claims.clone(), b"some-other-key-some-other-key-!!");
    let expired = sign(
        json!({"sub": ann.id, "sid": sid, "iat": now - 7200, "exp": now - 3600, "typ": "access"}),
        TEST_JWT_SECRET,
    );
    let wrong_typ = sign(
        json!({"sub": ann.id, "sid": sid, "iat": now, "exp": now + 600, "typ": "refresh"}),
        TEST_JWT_SECRET,
    );
    let sessionless = sign(
        json!({"sub": ann.id, "iat": now, "exp": now + 600, "typ": "access"}),
        TEST_JWT_SECRET,
    );
    let genuine = sign(claims, TEST_JWT_SECRET);
    for (name, token) in [
        ("alg none", none),
        ("wrong key", forged),
        ("expired", expired),
        ("wrong typ", wrong_typ),
        ("no session", sessionless),
        ("garbage", "x.y.z".into()),
    ] {
        let reply = app.get("/api/v1/users/me", &token).await?;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(reply.code(), Some("invalid_token"), "{name}");
    }
    assert_eq!(
        app.get("/api/v1/users/me", &genuine).await?.status,
        StatusCode::OK
    );
    let anonymous = app
        .call(Method::GET, "/api/v1/users/me", None, None)
        .await?;
    assert_eq!(anonymous.code(), Some("unauthorized"));
    app.stop().await
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_account_and_address() -> R {
    let app = TestApp::spawn_with(|c| {
        c.limits.login_burst = 3;
        c.limits.login_per_minute = 1.0;
    })
    .await?;
    app.register("ann").await?;
    for _ in 0..3 {
        let r = post_anon(
            &app,
            "/api/v1/auth/login",
            json!({"username": "ann", "password": "wrong-password"}),
        )
        .await?;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let limited = post_anon(
        &app,
        "/api/v1/auth/login",
        json!({"username": "ann", "password": "password-ann"}),
    )
    .await?;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), Some("rate_limited"));
    let retry: u64 = limited.headers["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Another account is not affected.
    app.register("bob").await?;
    let bob = post_anon(
        &app,
        "/api/v1/auth/login",
        json!({"username": "bob", "password": "password-bob"}),
    )
    .await?;
    assert_eq!(bob.status, StatusCode::OK);
    app.stop().await
}

#[tokio::test]
async fn cookie_sessions_hide_tokens_and_require_csrf() -> R {
    let app = TestApp::spawn().await?;
    let jar = reqwest::Client::builder().cookie_store(true).build()?;
    let register = jar
        .post(app.url("/api/v1/auth/register"))
        .header("x-session-mode", "cookie")
        .json(&json!({"username": "ann", "password": "password-ann"}))
        .send()
        .await?;
    assert_eq!(register.status(), StatusCode::CREATED);
    let cookies: Vec<String> = register
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(cookies.iter().any(|c| c.starts_with("harmony_access=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Strict")));
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("harmony_refresh=") && c.contains("HttpOnly")));
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("harmony_csrf="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned();
    assert!(!csrf.is_empty());
    let body: Value = register.json().await?;
    assert!(
        body.get("access_token").is_none() && body.get("refresh_token").is_none(),
        "{body}"
    );

    // Reads work with the cookie alone.
    let me = jar.get(app.url("/api/v1/users/me")).send().await?;
    assert_eq!(me.status(), StatusCode::OK);
    // Unsafe requests need the CSRF header.
    let chat = json!({"kind": "group", "name": "g", "member_ids": []});
    let no_csrf = jar
        .post(app.url("/api/v1/chats"))
        .json(&chat)
        .send()
        .await?;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    assert_eq!(no_csrf.json::<Value>().await?["code"], "csrf_failed");
    let with_csrf = jar
        .post(app.url("/api/v1/chats"))
        .header("x-csrf-token", &csrf)
        .json(&chat)
        .send()
        .await?;
    assert_eq!(with_csrf.status(), StatusCode::CREATED);
    // Silent refresh and logout by cookie.
    let refresh = jar
        .post(app.url("/api/v1/auth/refresh"))
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    assert_eq!(refresh.status(), StatusCode::OK);
    let logout = jar
        .post(app.url("/api/v1/auth/logout"))
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = jar.get(app.url("/api/v1/users/me")).send().await?;
    assert_eq!(
        after.status(),
        StatusCode::UNAUTHORIZED,
        "{:?}",
        after.text().await
    );
    app.stop().await
}
