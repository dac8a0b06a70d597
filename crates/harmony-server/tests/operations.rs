//! Operability through the front door: health, readiness, metrics, the OpenAPI document and
//! docs page, and the binary's command line (help, bad configuration).

use harmony_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

type R = anyhow::Result<()>;

#[tokio::test]
async fn health_readiness_metrics_and_docs() -> R {
    let app = TestApp::spawn().await?;
    let get = |path: &str| app.client.get(app.url(path)).send();
    assert_eq!(get("/healthz").await?.text().await?, "ok");
    assert_eq!(get("/readyz").await?.status(), StatusCode::OK);
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "g", &[]).await?;
    app.send(&ann, &chat, "counted").await?;
    let metrics = get("/metrics").await?.text().await?;
    for family in [
        "harmony_http_requests_total",
        "harmony_http_request_duration_seconds",
        "harmony_ws_sessions",
        "harmony_messages_appended_total 1",
        "harmony_messages_delivered_total",
        "harmony_consumer_lag",
    ] {
        assert!(metrics.contains(family), "{family} missing from /metrics");
    }
    assert!(
        metrics.contains("route=\"/api/v1/chats/{id}/messages\""),
        "routes are labelled by pattern"
    );

    let doc: Value = get("/api/v1/openapi.json").await?.json().await?;
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for path in [
        "/api/v1/auth/register",
        "/api/v1/chats/{id}/messages",
        "/api/v1/friends/requests/{id}/accept",
        "/api/v1/ws",
        "/api/v1/users/me/password",
        "/api/v1/presence",
        "/api/v1/chats/{id}/messages/{message_id}",
        "/api/v1/chats/{id}/messages/{message_id}/reactions/{emoji}",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(paths.len(), 23, "every route of contract v1 is documented");
    for schema in ["ServerFrame", "ClientFrame", "Problem", "MessageDto"] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} schema missing"
        );
    }
    let docs = get("/docs").await?;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await?.contains("/api/v1/openapi.json"));
    app.stop().await
}

#[test]
fn the_binary_explains_itself_and_refuses_bad_settings() -> R {
    let bin = env!("CARGO_BIN_EXE_harmony");
    let help = std::process::Command::new(bin).arg("--help").output()?;
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    for word in ["--listen", "--data-dir", "--config", "HARMONY_"] {
        assert!(text.contains(word), "--help does not mention {word}");
    }
    let bad = std::process::Command::new(bin)
        .env("HARMONY_LIMITS__SEND_BURST", "many")
        .output()?;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("send_burst"));
    let unknown = std::process::Command::new(bin)
        .env("HARMONY_SERVER__PORT", "1")
        .output()?;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("server.port"));
    let defaults = std::process::Command::new(bin).arg("config").output()?;
    assert!(String::from_utf8_lossy(&defaults.stdout).contains("session_queue"));
    Ok(())
}

#[tokio::test]
async fn invented_http_methods_cannot_grow_the_metrics() -> R {
    let app = TestApp::spawn().await?;
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes())?;
        let reply = app
            .client
            .request(method, app.url("/healthz"))
            .send()
            .await?;
        assert!(reply.status().is_client_error(), "{}", reply.status());
    }
    let metrics = app.metrics().await?;
    assert!(!metrics.contains("INVENTED"), "raw methods in the labels");
    assert!(metrics.contains("method=\"other\""), "counted as other");
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_the_owners_alone() -> R {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn_with(|c| c.server.data_dir = c.server.data_dir.join("data")).await?;
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "g", &[]).await?;
    app.send(&ann, &chat, "private").await?;
    let dir = app.data_dir().join("data");
    let mode = |p: &std::path::Path| -> anyhow::Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    assert_eq!(mode(&dir)?, 0o700, "data directory");
    for file in ["harmony.db", "harmony.db-wal"] {
        assert_eq!(mode(&dir.join(file))?, 0o600, "{file}");
    }
    app.stop().await
}

#[tokio::test]
async fn every_answer_carries_the_protective_headers() -> R {
    let app = TestApp::spawn().await?;
    for path in ["/", "/api/v1/users/me", "/api/v1/openapi.json", "/nope"] {
        let reply = app.client.get(app.url(path)).send().await?;
        let h = reply.headers();
        let get = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(get("referrer-policy"), "same-origin", "{path}");
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert!(
            get("content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
    }
    // Pages allow scripts and styles from the origin and their own inline blocks, by hash.
    for path in ["/", "/docs", "/chats/some/deep/link"] {
        let reply = app.client.get(app.url(path)).send().await?;
        let csp = reply
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(csp.contains("script-src 'self' 'sha256-"), "{path}: {csp}");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
    }
    Ok(())
}
