//! Backups of a single node through the real binary: `harmony backup` while the node takes
//! sends, `harmony restore` refused while a node runs on the directory, and a node started on the
//! restored database serves the same users and history, with the chat's order going on.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use harmony_testkit::TestApp;
use serde_json::json;

type R = anyhow::Result<()>;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_harmony"))
}

/// Runs `harmony <args> --data-dir <dir>`; returns (success, what it printed).
async fn harmony(args: &[&str], dir: &Path) -> anyhow::Result<(bool, String)> {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.extend([std::ffi::OsStr::new("--data-dir"), dir.as_os_str()]);
    harmony_testkit::run_harmony(bin(), &all, &[]).await
}

async fn node_on(dir: &Path) -> anyhow::Result<TestApp> {
    TestApp::process(
        bin(),
        &[("HARMONY_DATA_DIR".into(), dir.display().to_string())],
    )
    .await
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_into_a_working_node() -> R {
    let first = tempfile::tempdir()?;
    let second = tempfile::tempdir()?;
    let file = first.path().join("backup.db");
    let app = Arc::new(node_on(&first.path().join("node")).await?);
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "kept", &[]).await?;
    for i in 0..20 {
        app.send(&ann, &chat, &format!("before {i}")).await?;
    }
    // Sends go on while the backup is taken.
    let acked = Arc::new(AtomicUsize::new(20));
    let sender = {
        let (app, ann, chat, acked) = (app.clone(), ann.clone(), chat.clone(), acked.clone());
        tokio::spawn(async move {
            for i in 0..200 {
                if app.send(&ann, &chat, &format!("during {i}")).await.is_err() {
                    break;
                }
                acked.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let acked_before = acked.load(Ordering::SeqCst);
    let (ok, said) = harmony(
        &["backup", &file.display().to_string()],
        &first.path().join("node"),
    )
    .await?;
    assert!(ok, "backup failed: {said}");
    assert!(said.contains("1 users"), "{said}");
    sender.await?;
    let (ok, said) = harmony(
        &["backup", &file.display().to_string()],
        &first.path().join("node"),
    )
    .await?;
    assert!(!ok && said.contains("already exists"), "{said}");
    let (ok, said) = harmony(
        &["restore", &file.display().to_string()],
        &first.path().join("node"),
    )
    .await?;
    assert!(
        !ok && said.contains("running"),
        "a restore under a live node: {said}"
    );
    let total = acked.load(Ordering::SeqCst);
    Arc::try_unwrap(app)
        .map_err(|_| anyhow::anyhow!("the node is still shared"))?
        .stop()
        .await?;

    let (ok, said) = harmony(&["restore", &file.display().to_string()], second.path()).await?;
    assert!(ok, "restore failed: {said}");
    let app = node_on(second.path()).await?;
    let login = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "ann", "password": "password-ann"})),
        )
        .await?;
    assert_eq!(
        login.status.as_u16(),
        200,
        "ann signs in on the restored node"
    );
    let ann = harmony_testkit::TestUser {
        access: login.str("/access_token"),
        ..ann
    };
    let history = app.all_history(&ann, &chat).await?;
    let seqs: Vec<i64> = history.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert!(
        seqs.len() >= acked_before && seqs.len() <= total,
        "the backup holds every message acknowledged before it began ({acked_before}) and \
         nothing never acknowledged: {} of {total}",
        seqs.len()
    );
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "no hole");
    let next = app.send(&ann, &chat, "after the restore").await?;
    assert_eq!(
        next["seq"].as_i64(),
        Some(seqs.len() as i64 + 1),
        "the order goes on"
    );
    app.stop().await
}
