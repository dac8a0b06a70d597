//! The shared store conformance suite with the message store on DynamoDB (a private dynalite)
//! and the rest on PostgreSQL, as a cluster runs them; and the table's creation: made when
//! missing, found when there, refused when missing and creating is not allowed.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use harmony_dynamodb::{DynamoHistory, DynamoSettings};
use harmony_postgres::StateDb;
use harmony_testkit::conformance::{run_all, Stores};
use harmony_testkit::dynamo::{PrivateDynamo, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use harmony_testkit::postgres::PrivatePostgres;

fn client(dynamo: &PrivateDynamo) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(dynamo.endpoint())
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        ))
        .http_client(harmony_dynamodb::http_client())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn settings(table: &str, create_table: bool) -> DynamoSettings {
    DynamoSettings {
        endpoint: None,
        region: REGION.into(),
        table: table.into(),
        create_table,
        static_credentials: None,
    }
}

#[tokio::test]
async fn dynamodb_history_keeps_every_port_promise() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let dynamo = PrivateDynamo::start().await?;
    let state = Arc::new(StateDb::connect(&pg.database("state").await?, 4).await?);
    let refused =
        DynamoHistory::with_client(client(&dynamo), &settings("messages", false), state.clone())
            .await;
    assert!(
        refused.is_err(),
        "a missing table is refused when creating is not allowed"
    );
    let history = Arc::new(
        DynamoHistory::with_client(client(&dynamo), &settings("messages", true), state.clone())
            .await?,
    );
    // A second node finds the table there.
    DynamoHistory::with_client(client(&dynamo), &settings("messages", false), state.clone())
        .await?;
    let stores = Stores {
        users: state.clone(),
        sessions: state.clone(),
        friends: state.clone(),
        chats: state.clone(),
        history,
    };
    run_all(&stores).await
}
