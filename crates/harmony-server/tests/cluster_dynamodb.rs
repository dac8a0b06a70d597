//! A cluster whose message store is DynamoDB (a private dynalite; decision record 0005):
//! history, resume and message changes through the front door as on PostgreSQL; and DynamoDB
//! going away: live delivery goes on, history answers 503, and the sink catches up once it is
//! back, with nothing lost or doubled.

mod scenarios;

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::eventually;
use reqwest::StatusCode;
use scenarios::{Shape, R};

const API: &str = "api,fanout,sink,projector,relay";

#[tokio::test]
async fn history_and_changes_on_dynamodb_match_the_contract() -> R {
    let cluster = TestCluster::with_dynamodb().await?;
    let api = cluster.node(API).await?;
    let gateway = cluster.node("api,gateway").await?;
    scenarios::changes_live_history_and_resume(&api, &gateway, Shape::Cluster).await?;
    scenarios::replies_and_mentions(&api, &gateway).await?;
    scenarios::removed_members_and_racing_reactions(&api, &gateway).await?;
    Ok(())
}

#[tokio::test]
async fn with_dynamodb_down_live_delivery_goes_on_and_the_sink_catches_up() -> R {
    let mut cluster = TestCluster::with_dynamodb().await?;
    let api = cluster.node(API).await?;
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    for i in 1..=5 {
        api.send(&ann, &chat, &format!("before {i}")).await?;
    }
    eventually("five messages in history", || async {
        Ok((api.all_history(&bob, &chat).await?.len() == 5).then_some(()))
    })
    .await?;

    let dynamo = cluster
        .dynamo
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("no dynamo"))?;
    dynamo.stop();
    for i in 6..=15 {
        api.send(&ann, &chat, &format!("during {i}")).await?;
    }
    let mut live = Vec::new();
    while live.last() != Some(&15) {
        let frame = ws.next_of("message").await?;
        live.push(frame["message"]["seq"].as_i64().unwrap_or(-1));
    }
    assert_eq!(
        live,
        (1..=15).collect::<Vec<_>>(),
        "live delivery, in order, while DynamoDB is down"
    );
    let page = api
        .get(&format!("/api/v1/chats/{chat}/messages"), &bob.access)
        .await?;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{page:?}");

    dynamo.start_again().await?;
    let all = eventually("the sink caught up", || async {
        let all = api.all_history(&bob, &chat).await.ok();
        Ok(all.filter(|all| all.len() >= 15))
    })
    .await?;
    let seqs: Vec<i64> = all.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=15).collect::<Vec<_>>(),
        "nothing lost or doubled"
    );
    assert_eq!(all[14]["content"], "during 15");
    ws.close().await;
    Ok(())
}
