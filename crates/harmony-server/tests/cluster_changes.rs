//! Message changes in a cluster (decision record 0004), through two nodes: changes sent
//! through an api node reach a session on a gateway live, stay in the message store's history
//! and come back on resume, in the chat's one order (the scenarios shared with the single node,
//! `scenarios`). And what only a cluster has: a deleted message's words are gone from the
//! sequencer's records, the message store and Redis.

mod scenarios;

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::eventually;
use scenarios::{Shape, R};

const API: &str = "api,fanout,sink,projector,relay";

#[tokio::test]
async fn changes_cross_nodes_in_the_chats_order() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node(API).await?;
    let gateway = cluster.node("api,gateway").await?;
    scenarios::changes_live_history_and_resume(&api, &gateway, Shape::Cluster).await?;
    scenarios::replies_and_mentions(&api, &gateway).await?;
    scenarios::removed_members_and_racing_reactions(&api, &gateway).await?;
    scenarios::timeline_lines(&api, &gateway).await?;
    scenarios::targets_elsewhere_are_not_found(&api, &gateway).await?;
    Ok(())
}

#[tokio::test]
async fn a_deleted_message_is_gone_from_the_sequencer_the_store_and_redis() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node(API).await?;
    let gateway = cluster.node("gateway").await?;
    let ann = api.register("ann").await?;
    let chat = api.group(&ann, "g", &[]).await?;
    // A session follows the chat, so the fan-out fills its Redis window.
    let (mut ws, _) = gateway.ws(&ann.access).await?;
    api.send(&ann, &chat, "kept-words-1").await?;
    let gone = api.send(&ann, &chat, "vanishing-words-1").await?;
    let gone_id = gone["id"].as_str().unwrap_or_default().to_owned();
    let reply = scenarios::edit(&api, &ann, &chat, &gone_id, "vanishing-words-2", None).await?;
    assert_eq!(reply.status, reqwest::StatusCode::OK, "{reply:?}");
    for _ in 0..3 {
        scenarios::next_entry(&mut ws).await?;
    }

    let state = sqlx::PgPool::connect(&cluster.postgres.url("state")).await?;
    let history = sqlx::PgPool::connect(&cluster.postgres.url("history")).await?;
    let redis = redis::Client::open(cluster.redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    // Where each store holds `words`: counts in the sequencer, the message store, Redis.
    let places = |words: &'static str| {
        let (state, history, mut redis) = (state.clone(), history.clone(), redis.clone());
        async move {
            let like = format!("%{words}%");
            let sequenced: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sequenced WHERE convert_from(record, 'UTF8') LIKE $1",
            )
            .bind(&like)
            .fetch_one(&state)
            .await?;
            let stored: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE content LIKE $1")
                    .bind(&like)
                    .fetch_one(&history)
                    .await?;
            let mut in_redis = 0;
            let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut redis).await?;
            for key in keys {
                let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut redis).await?;
                if kind == "zset" {
                    let members: Vec<String> = redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut redis)
                        .await?;
                    in_redis += members.iter().filter(|m| m.contains(words)).count();
                }
            }
            anyhow::Ok((sequenced, stored, in_redis))
        }
    };
    // The check can see the words where they are: all three hold the edit before the delete.
    eventually("the edit in every store", || async {
        let (sequenced, stored, in_redis) = places("vanishing-words-2").await?;
        Ok((sequenced > 0 && stored > 0 && in_redis > 0).then_some(()))
    })
    .await?;

    let reply = scenarios::delete(&api, &ann, &chat, &gone_id).await?;
    assert_eq!(reply.status, reqwest::StatusCode::NO_CONTENT, "{reply:?}");
    scenarios::next_entry(&mut ws).await?;
    for words in ["vanishing-words-1", "vanishing-words-2"] {
        eventually("the words gone from every store", || async {
            Ok((places(words).await? == (0, 0, 0)).then_some(()))
        })
        .await?;
    }
    assert_ne!(places("kept-words-1").await?, (0, 0, 0));
    // And a resume from the start (served from the sequencer, the window being gone) shows a
    // tombstone, then the delete.
    let (mut fresh, _) = gateway.ws(&ann.access).await?;
    let replayed = scenarios::resume(&mut fresh, &chat, 0).await?;
    let text = serde_json::to_string(&replayed)?;
    assert!(!text.contains("vanishing-words"), "{text}");
    assert_eq!(replayed.len(), 4, "{replayed:?}");
    assert_eq!(replayed[3]["change"]["kind"], "delete");
    Ok(())
}
