//! Replies and mentions.

use harmony_testkit::{eventually, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;

/// Replies quote their original as it reads now; mentions of members count per chat until
/// read; `@everyone` counts only from an admin or the owner.
pub async fn replies_and_mentions(a: &TestApp, b: &TestApp) -> R {
    let [ann, bob, cat] = users(a, ["ann", "bob", "cat"]).await?;
    let chat = a.group(&ann, "g", &[&bob, &cat]).await?;
    let text = format!(
        "a question for @{} and @nobody, also @{}.",
        bob.username,
        cat.username.to_uppercase()
    );
    let question = a.send(&ann, &chat, &text).await?;
    let question_id = question["id"].as_str().unwrap_or_default().to_owned();
    let mut mentioned = question["mentions"].as_array().cloned().unwrap_or_default();
    mentioned.sort_by_key(|v| v.as_str().unwrap_or_default().to_owned());
    let mut expected = vec![json!(bob.id), json!(cat.id)];
    expected.sort_by_key(|v| v.as_str().unwrap_or_default().to_owned());
    assert_eq!(mentioned, expected);

    let path = format!("/api/v1/chats/{chat}/messages");
    let answer = call(
        b,
        Method::POST,
        &path,
        &bob,
        Some(json!({"content": "an answer", "reply_to": question_id})),
    )
    .await?;
    assert_status(&answer, StatusCode::CREATED, None, "reply");
    assert_eq!(answer.body["reply_to"]["id"], question_id.as_str());
    assert_eq!(
        answer.body["reply_to"]["author"]["username"],
        ann.username.as_str()
    );
    let answer_id = answer.str("/id");

    let mention_count = |user: &'static str| {
        let (app, who) = match user {
            "bob" => (b, &bob),
            _ => (b, &cat),
        };
        let chat = chat.clone();
        async move {
            let list = app.get("/api/v1/chats", &who.access).await?;
            let item = list.body["chats"]
                .as_array()
                .or(list.body.as_array())
                .into_iter()
                .flatten()
                .find(|c| c["id"] == chat.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            anyhow::Ok(item["mention_count"].as_u64())
        }
    };
    eventually("bob's mention counted", || async {
        Ok((mention_count("bob").await? == Some(1)).then_some(()))
    })
    .await?;

    // The quote follows the original's edit, then its deletion.
    let reply = edit(
        a,
        &ann,
        &chat,
        &question_id,
        "the question, rephrased",
        None,
    )
    .await?;
    assert_status(&reply, StatusCode::OK, None, "edit the original");
    history_shows(
        b,
        &bob,
        &chat,
        &answer_id,
        "the quote follows the edit",
        |m| m["reply_to"]["excerpt"] == "the question, rephrased",
    )
    .await?;

    // `@everyone` from a member is plain text; from the owner it counts for everyone.
    let plain = b.send(&bob, &chat, "@everyone hello").await?;
    assert_eq!(plain["mentions_everyone"], false);
    let all = a.send(&ann, &chat, "@everyone lunch").await?;
    assert_eq!(all["mentions_everyone"], true);
    eventually("cat's mentions: the question and @everyone", || async {
        Ok((mention_count("cat").await? == Some(2)).then_some(()))
    })
    .await?;
    // Reading clears them.
    let head = all["seq"].as_i64().unwrap_or_default();
    let read = b
        .post(
            &format!("/api/v1/chats/{chat}/read"),
            &cat.access,
            json!({"seq": head}),
        )
        .await?;
    assert_status(&read, StatusCode::NO_CONTENT, None, "read");
    assert_eq!(mention_count("cat").await?, Some(0));

    let reply = delete(a, &ann, &chat, &question_id).await?;
    assert_status(&reply, StatusCode::NO_CONTENT, None, "delete the original");
    let quoted = history_shows(
        b,
        &bob,
        &chat,
        &answer_id,
        "the quote shows the deletion",
        |m| m["reply_to"]["deleted"] == true,
    )
    .await?;
    assert_eq!(quoted["reply_to"]["excerpt"], "");
    let late = call(
        b,
        Method::POST,
        &path,
        &bob,
        Some(json!({"content": "late", "reply_to": question_id})),
    )
    .await?;
    assert_status(
        &late,
        StatusCode::CONFLICT,
        Some("message_deleted"),
        "reply to a deleted one",
    );
    let unknown = call(
        b,
        Method::POST,
        &path,
        &bob,
        Some(json!({"content": "x", "reply_to": "01J00000000000000000000000"})),
    )
    .await?;
    assert_status(
        &unknown,
        StatusCode::NOT_FOUND,
        Some("message_not_found"),
        "reply to nothing",
    );

    // One key, one entry: a key that made a message cannot make an edit, nor the reverse.
    let keyed = call(
        b,
        Method::POST,
        &path,
        &bob,
        Some(json!({"content": "keyed", "client_msg_id": "key-1"})),
    )
    .await?;
    assert_status(&keyed, StatusCode::CREATED, None, "a keyed send");
    let keyed_id = keyed.str("/id");
    let reused = edit(b, &bob, &chat, &keyed_id, "keyed, edited", Some("key-1")).await?;
    let code = Some("idempotency_key_reused");
    assert_status(
        &reused,
        StatusCode::CONFLICT,
        code,
        "a send's key on an edit",
    );
    let edited = edit(b, &bob, &chat, &keyed_id, "keyed, edited", Some("key-2")).await?;
    assert_status(&edited, StatusCode::OK, None, "a fresh key");
    let body = json!({"content": "again", "client_msg_id": "key-2"});
    let reused = call(b, Method::POST, &path, &bob, Some(body)).await?;
    assert_status(
        &reused,
        StatusCode::CONFLICT,
        code,
        "an edit's key on a send",
    );
    Ok(())
}
