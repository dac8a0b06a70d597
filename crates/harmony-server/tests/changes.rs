//! Message changes on one node (decision record 0004), through the front door: the scenarios
//! shared with the cluster (`scenarios`), and what only the single node can show: a deleted
//! message's words are in no byte of the data directory afterwards.

mod scenarios;

use harmony_testkit::TestApp;
use scenarios::{Shape, R};

#[tokio::test]
async fn edits_deletes_and_reactions_are_entries_of_the_chats_order() -> R {
    let app = TestApp::spawn().await?;
    scenarios::changes_live_history_and_resume(&app, &app, Shape::SingleNode).await?;
    app.stop().await
}

#[tokio::test]
async fn replies_quote_their_original_and_mentions_count_until_read() -> R {
    let app = TestApp::spawn().await?;
    scenarios::replies_and_mentions(&app, &app).await?;
    app.stop().await
}

#[tokio::test]
async fn removed_members_change_nothing_and_racing_reactions_are_one() -> R {
    let app = TestApp::spawn().await?;
    scenarios::removed_members_and_racing_reactions(&app, &app).await?;
    app.stop().await
}

#[tokio::test]
async fn members_and_renames_leave_timeline_lines() -> R {
    let app = TestApp::spawn().await?;
    scenarios::timeline_lines(&app, &app).await?;
    app.stop().await
}

#[tokio::test]
async fn messages_of_chats_one_is_not_in_cannot_be_named() -> R {
    let app = TestApp::spawn().await?;
    scenarios::targets_elsewhere_are_not_found(&app, &app).await?;
    app.stop().await
}

/// Every file under `dir`, read whole. A file SQLite removes while the walk runs (its WAL and
/// shared-memory files go once the last connection closed) holds nothing any more.
fn files(dir: &std::path::Path) -> anyhow::Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files(&path)?);
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => out.push((path, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

#[tokio::test]
async fn a_deleted_message_leaves_no_trace_in_the_data_directory() -> R {
    let app = TestApp::spawn().await?;
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "g", &[]).await?;
    let kept = app.send(&ann, &chat, "kept-words-1").await?;
    let gone = app.send(&ann, &chat, "vanishing-words-1").await?;
    let gone_id = gone["id"].as_str().unwrap_or_default().to_owned();
    let reply = scenarios::edit(&app, &ann, &chat, &gone_id, "vanishing-words-2", None).await?;
    assert_eq!(reply.status, reqwest::StatusCode::OK, "{reply:?}");
    let reply = scenarios::delete(&app, &ann, &chat, &gone_id).await?;
    assert_eq!(reply.status, reqwest::StatusCode::NO_CONTENT, "{reply:?}");
    let dir = app.stop_keeping_data().await?;

    let all = files(dir.path())?;
    let holds = |needle: &str| {
        all.iter()
            .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .map(|(path, _)| path.display().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        !holds("kept-words-1").is_empty(),
        "the check can see a kept message"
    );
    assert_eq!(kept["seq"], 1);
    for words in ["vanishing-words-1", "vanishing-words-2"] {
        assert_eq!(
            holds(words),
            Vec::<String>::new(),
            "{words} survives in these files"
        );
    }
    Ok(())
}

#[tokio::test]
async fn changes_share_the_send_rate_limit() -> R {
    let app = TestApp::spawn_with(|config| {
        config.limits.send_burst = 3;
        config.limits.send_per_second = 0.1;
    })
    .await?;
    let ann = app.register("ann").await?;
    let chat = app.group(&ann, "g", &[]).await?;
    let first = app.send(&ann, &chat, "one").await?;
    let id = first["id"].as_str().unwrap_or_default().to_owned();
    // The send took one of three; two edits take the rest; a flood of changes is refused.
    for i in 0..2 {
        let reply = scenarios::edit(&app, &ann, &chat, &id, &format!("edit {i}"), None).await?;
        assert_eq!(reply.status, reqwest::StatusCode::OK, "{reply:?}");
    }
    let flood = scenarios::react(&app, &ann, &chat, &id, "👍", true).await?;
    assert_eq!(
        flood.status,
        reqwest::StatusCode::TOO_MANY_REQUESTS,
        "{flood:?}"
    );
    assert!(flood.headers.contains_key("retry-after"));
    let edited = scenarios::in_history(&app, &ann, &chat, &id).await?;
    assert_eq!(
        (edited["content"].as_str(), &edited["reactions"]),
        (Some("edit 1"), &serde_json::json!([]))
    );
    app.stop().await
}
