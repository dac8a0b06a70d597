//! Edits, reactions and deletes: live, in history, on resume, with permissions and refusals.

use std::time::Duration;

use harmony_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::json;

use super::*;

/// Edits, reactions and deletes reach a member on the other front door live, as entries of the
/// chat's one order; history shows each message's current state and lists messages only;
/// permissions and the order's refusals hold; a resume from the start replays every entry once,
/// in order, with no deleted content; an edit missed while away arrives on resume.
pub async fn changes_live_history_and_resume(a: &TestApp, b: &TestApp, shape: Shape) -> R {
    let [ann, bob] = users(a, ["ann", "bob"]).await?;
    let chat = a.group(&ann, "g", &[&bob]).await?;
    let (mut bob_ws, _) = b.ws(&bob.access).await?;
    let first = a.send(&ann, &chat, "first").await?;
    let first_id = first["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(seq(&next_entry(&mut bob_ws).await?), 1);

    // An edit is the chat's next entry; a retry with its key is the same edit.
    let edited = edit(a, &ann, &chat, &first_id, "first, edited", Some("e-1")).await?;
    assert_status(&edited, StatusCode::OK, None, "edit");
    assert_eq!(
        (edited.body["seq"].as_i64(), edited.str("/kind")),
        (Some(2), "edit".to_owned())
    );
    let retry = edit(a, &ann, &chat, &first_id, "first, edited", Some("e-1")).await?;
    assert_eq!(
        retry.body["id"], edited.body["id"],
        "a retried edit is one edit"
    );
    let live = next_entry(&mut bob_ws).await?;
    assert_eq!(live["type"], "message_changed");
    assert_eq!(
        (
            live["prev_seq"].as_i64(),
            live["change"]["content"].as_str()
        ),
        (Some(1), Some("first, edited"))
    );
    assert_eq!(live["change"]["target_id"], first_id.as_str());

    // Reactions: a set per emoji; asking twice is done once.
    for (user, app) in [(&bob, b), (&bob, b), (&ann, a)] {
        let reply = react(app, user, &chat, &first_id, "👍", true).await?;
        assert_status(&reply, StatusCode::NO_CONTENT, None, "react");
    }
    let shown = history_shows(b, &bob, &chat, &first_id, "two reactions", |m| {
        m["reactions"][0]["count"] == 2
    })
    .await?;
    assert_eq!(shown["content"], "first, edited");
    assert!(shown["edited_at"].is_string(), "{shown}");
    assert_eq!(
        shown["reactions"][0]["user_ids"],
        json!([bob.id.as_str(), ann.id.as_str()])
    );
    let reply = react(b, &bob, &chat, &first_id, "👍", false).await?;
    assert_status(&reply, StatusCode::NO_CONTENT, None, "unreact");
    history_shows(b, &bob, &chat, &first_id, "bob's reaction gone", |m| {
        m["reactions"] == json!([{"emoji": "👍", "count": 1, "user_ids": [ann.id.as_str()]}])
    })
    .await?;
    let bad = react(b, &bob, &chat, &first_id, "abc", true).await?;
    assert_status(
        &bad,
        StatusCode::BAD_REQUEST,
        Some("validation_failed"),
        "not an emoji",
    );

    // Permissions: only the author edits; a member deletes only their own; the owner any.
    let theirs = edit(b, &bob, &chat, &first_id, "mine now", None).await?;
    assert_status(
        &theirs,
        StatusCode::FORBIDDEN,
        Some("not_author"),
        "edit another's",
    );
    let theirs = delete(b, &bob, &chat, &first_id).await?;
    assert_status(
        &theirs,
        StatusCode::FORBIDDEN,
        Some("forbidden"),
        "delete another's",
    );
    let nothing = edit(b, &bob, &chat, "01J00000000000000000000000", "x", None).await?;
    assert_status(
        &nothing,
        StatusCode::NOT_FOUND,
        Some("message_not_found"),
        "no such message",
    );

    let bobs = b.send(&bob, &chat, "bob's secret plan").await?;
    let bobs_id = bobs["id"].as_str().unwrap_or_default().to_owned();
    let reply = edit(b, &bob, &chat, &bobs_id, "bob's secret plan, revised", None).await?;
    assert_status(&reply, StatusCode::OK, None, "edit own");
    for _ in 0..2 {
        let reply = delete(a, &ann, &chat, &bobs_id).await?;
        assert_status(
            &reply,
            StatusCode::NO_CONTENT,
            None,
            "the owner deletes (twice)",
        );
    }
    let tomb = history_shows(b, &bob, &chat, &bobs_id, "a tombstone", |m| {
        m["deleted_at"].is_string()
    })
    .await?;
    assert_eq!(
        (tomb["content"].as_str(), &tomb["reactions"]),
        (Some(""), &json!([]))
    );
    let late = edit(b, &bob, &chat, &bobs_id, "back", None).await?;
    assert_status(
        &late,
        StatusCode::CONFLICT,
        Some("message_deleted"),
        "edit a deleted one",
    );
    let late = react(b, &bob, &chat, &bobs_id, "🎉", true).await?;
    assert_status(
        &late,
        StatusCode::CONFLICT,
        Some("message_deleted"),
        "react to a deleted one",
    );
    let listed = b.all_history(&bob, &chat).await?;
    assert_eq!(
        listed.len(),
        2,
        "history lists messages, not changes: {listed:?}"
    );

    // Live, bob saw every entry in order; a resume from the start replays them once, in order,
    // and none carries the deleted words.
    let mut live_seqs = vec![1, 2];
    let head = loop {
        let frame = tokio::time::timeout(Duration::from_secs(2), next_entry(&mut bob_ws)).await;
        let Ok(frame) = frame else {
            break *live_seqs.last().unwrap_or(&0);
        };
        live_seqs.push(seq(&frame?));
    };
    assert_eq!(
        live_seqs,
        (1..=head).collect::<Vec<_>>(),
        "dense and in order live"
    );
    bob_ws.close().await;
    let (mut bob_ws, _) = b.ws(&bob.access).await?;
    let replayed = resume(&mut bob_ws, &chat, 0).await?;
    let seqs: Vec<i64> = replayed.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "once, in order, on resume"
    );
    let kinds: Vec<String> = replayed
        .iter()
        .map(|f| match f["type"].as_str() {
            Some("message") => "message".to_owned(),
            _ => f["change"]["kind"].as_str().unwrap_or("?").to_owned(),
        })
        .collect();
    if shape == Shape::SingleNode {
        assert_eq!(
            kinds,
            ["message", "edit", "react", "react", "unreact", "message", "edit", "delete"],
            "one entry per change that changed something"
        );
    }
    assert!(
        !serde_json::to_string(&replayed)?.contains("secret plan"),
        "a deleted message's words never come back: {replayed:?}"
    );

    // The hidden gap: an edit made while bob is away reaches him on resume, once.
    bob_ws.close().await;
    let reply = edit(a, &ann, &chat, &first_id, "first, third time", None).await?;
    assert_status(&reply, StatusCode::OK, None, "edit while away");
    let (mut bob_ws, _) = b.ws(&bob.access).await?;
    let mut missed = resume(&mut bob_ws, &chat, head).await?;
    if missed.is_empty() {
        // A cluster's fan-out may publish it after the session started: then it comes live.
        missed.push(next_entry(&mut bob_ws).await?);
    }
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["change"]["content"], "first, third time");
    assert_eq!(missed[0]["prev_seq"].as_i64(), Some(head));
    bob_ws.close().await;
    Ok(())
}
