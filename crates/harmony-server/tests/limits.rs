//! Login and registration limits through the front door, as an attacker meets them: per account
//! and address (a stranger cannot lock the owner out), per address across accounts, and
//! registrations per address. Addresses come from a trusted proxy's `X-Forwarded-For`; from
//! anyone else the header is ignored.

use harmony_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

/// Posts `body` to `path` as a client at `from`, behind the (trusted) local proxy.
async fn post_from(
    app: &TestApp,
    from: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<(StatusCode, Value)> {
    let reply = app
        .client
        .post(app.url(path))
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await?;
    let status = reply.status();
    Ok((status, reply.json().await.unwrap_or(Value::Null)))
}

fn login(username: &str, password: &str) -> Value {
    json!({"username": username, "password": password})
}

#[tokio::test]
async fn a_strangers_wrong_guesses_do_not_lock_the_owner_out() -> R {
    let app = TestApp::spawn_with(|c| {
        c.server.trusted_proxies = "127.0.0.1".into();
        c.limits.login_burst = 3;
        c.limits.login_per_minute = 1.0;
    })
    .await?;
    app.register("ann").await?;
    let path = "/api/v1/auth/login";
    let stranger = "203.0.113.9";
    for _ in 0..3 {
        let (status, _) = post_from(&app, stranger, path, login("ann", "wrong-password")).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let reply = app
        .client
        .post(app.url(path))
        .header("x-forwarded-for", stranger)
        .json(&login("ann", "password-ann"))
        .send()
        .await?;
    assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = reply.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "Retry-After {retry}");

    let (owner, body) = post_from(&app, "198.51.100.4", path, login("ann", "password-ann")).await?;
    assert_eq!(
        owner,
        StatusCode::OK,
        "the owner, elsewhere, signs in: {body}"
    );
    app.stop().await
}

#[tokio::test]
async fn one_address_cannot_try_a_password_on_many_accounts() -> R {
    let app = TestApp::spawn_with(|c| {
        c.server.trusted_proxies = "127.0.0.1".into();
        c.limits.login_address_burst = 5;
        c.limits.login_address_per_minute = 1.0;
    })
    .await?;
    let path = "/api/v1/auth/login";
    for i in 0..5 {
        let (status, _) = post_from(
            &app,
            "203.0.113.9",
            path,
            login(&format!("user{i}"), "password1"),
        )
        .await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = post_from(&app, "203.0.113.9", path, login("user9", "password1")).await?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], "rate_limited");
    let (status, _) = post_from(&app, "198.51.100.4", path, login("user9", "password1")).await?;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "another address is not limited"
    );
    app.stop().await
}

#[tokio::test]
async fn registrations_are_limited_per_address() -> R {
    let app = TestApp::spawn_with(|c| {
        c.server.trusted_proxies = "127.0.0.0/8".into();
        c.limits.register_burst = 2;
        c.limits.register_per_hour = 1.0;
    })
    .await?;
    let path = "/api/v1/auth/register";
    for name in ["ann", "bob"] {
        let (status, _) = post_from(&app, "203.0.113.9", path, login(name, "password-x")).await?;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, body) = post_from(&app, "203.0.113.9", path, login("cat", "password-x")).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    // An IPv6 client is counted by its /64: another address in it is the same client.
    let (status, _) = post_from(&app, "2001:db8:1:2::1", path, login("dan", "password-x")).await?;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = post_from(&app, "2001:db8:1:2::2", path, login("eve", "password-x")).await?;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = post_from(&app, "2001:db8:1:2::3", path, login("fay", "password-x")).await?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = post_from(&app, "198.51.100.4", path, login("gus", "password-x")).await?;
    assert_eq!(status, StatusCode::CREATED, "another address registers");
    app.stop().await
}

#[tokio::test]
async fn a_client_cannot_pick_its_address_without_a_trusted_proxy() -> R {
    let app = TestApp::spawn_with(|c| {
        c.limits.register_burst = 2;
        c.limits.register_per_hour = 1.0;
    })
    .await?;
    let path = "/api/v1/auth/register";
    let mut statuses = Vec::new();
    for (i, from) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .enumerate()
    {
        let (status, _) =
            post_from(&app, from, path, login(&format!("user{i}"), "password-x")).await?;
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "X-Forwarded-For from an untrusted peer is ignored: all three are 127.0.0.1"
    );
    app.stop().await
}
