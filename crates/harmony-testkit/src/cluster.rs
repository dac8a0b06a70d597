//! A private cluster for one test: PostgreSQL, Redis and a Kafka-API broker of its own, and any
//! number of Harmony nodes with chosen roles sharing them.

use harmony_server::Config;

use crate::dynamo::PrivateDynamo;
use crate::kafka::PrivateBroker;
use crate::postgres::PrivatePostgres;
use crate::redis::PrivateRedis;
use crate::TestApp;

pub struct TestCluster {
    pub postgres: PrivatePostgres,
    /// The message store's own server, when the test asked for one (`with_separate_history`).
    pub history: Option<PrivatePostgres>,
    pub redis: PrivateRedis,
    pub broker: PrivateBroker,
    /// The message store on DynamoDB (a private dynalite), when the test asked for it
    /// (`with_dynamodb`).
    pub dynamo: Option<PrivateDynamo>,
    state_url: String,
    history_url: String,
}

impl TestCluster {
    pub async fn start() -> anyhow::Result<Self> {
        let postgres = PrivatePostgres::start().await?;
        let state_url = postgres.database("state").await?;
        let history_url = postgres.database("history").await?;
        Ok(Self {
            postgres,
            history: None,
            redis: PrivateRedis::start().await?,
            broker: PrivateBroker::start().await?,
            dynamo: None,
            state_url,
            history_url,
        })
    }

    /// A cluster whose message store is a PostgreSQL server of its own, to be stopped alone.
    pub async fn with_separate_history() -> anyhow::Result<Self> {
        let mut cluster = Self::start().await?;
        let history = PrivatePostgres::start().await?;
        cluster.history_url = history.database("history").await?;
        cluster.history = Some(history);
        Ok(cluster)
    }

    /// A cluster whose message store is DynamoDB (a private dynalite).
    pub async fn with_dynamodb() -> anyhow::Result<Self> {
        let mut cluster = Self::start().await?;
        cluster.dynamo = Some(PrivateDynamo::start().await?);
        Ok(cluster)
    }

    /// The `[history]` settings of this cluster, as `(key, value)`.
    fn history(&self) -> Vec<(&'static str, String)> {
        let Some(dynamo) = &self.dynamo else {
            return Vec::new();
        };
        vec![
            ("backend", "dynamodb".to_owned()),
            ("dynamodb_endpoint", dynamo.endpoint()),
            ("dynamodb_region", crate::dynamo::REGION.to_owned()),
            (
                "dynamodb_access_key_id",
                crate::dynamo::ACCESS_KEY_ID.to_owned(),
            ),
            (
                "dynamodb_secret_access_key",
                crate::dynamo::SECRET_ACCESS_KEY.to_owned(),
            ),
        ]
    }

    /// Points a configuration at this cluster's services.
    pub fn configure(&self, config: &mut Config) {
        let c = &mut config.cluster;
        c.postgres_url = self.state_url.clone();
        c.history_url = self.history_url.clone();
        c.brokers = self.broker.bootstrap();
        c.redis_url = self.redis.url();
        c.partitions = 2;
        // One broker.
        c.replication_factor = 1;
        c.min_insync_replicas = 1;
        let h = &mut config.history;
        for (key, value) in self.history() {
            match key {
                "backend" => h.backend = harmony_server::config::HistoryBackend::Dynamodb,
                "dynamodb_endpoint" => h.dynamodb_endpoint = value,
                "dynamodb_region" => h.dynamodb_region = value,
                "dynamodb_access_key_id" => h.dynamodb_access_key_id = value,
                _ => h.dynamodb_secret_access_key = value,
            }
        }
    }

    /// The `HARMONY_*` variables that point a process node at this cluster.
    pub fn env(&self, roles: &str) -> Vec<(String, String)> {
        [
            ("HARMONY_SERVER__ROLES", roles.to_owned()),
            ("HARMONY_CLUSTER__POSTGRES_URL", self.state_url.clone()),
            ("HARMONY_CLUSTER__HISTORY_URL", self.history_url.clone()),
            ("HARMONY_CLUSTER__BROKERS", self.broker.bootstrap()),
            ("HARMONY_CLUSTER__REDIS_URL", self.redis.url()),
            ("HARMONY_CLUSTER__PARTITIONS", "2".to_owned()),
            ("HARMONY_CLUSTER__REPLICATION_FACTOR", "1".to_owned()),
            ("HARMONY_CLUSTER__MIN_INSYNC_REPLICAS", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            self.history()
                .into_iter()
                .map(|(k, v)| (format!("HARMONY_HISTORY__{}", k.to_ascii_uppercase()), v)),
        )
        .collect()
    }

    /// A node running the real binary `bin` with `roles`, to be killed with `kill9`.
    pub async fn process(&self, bin: &std::path::Path, roles: &str) -> anyhow::Result<TestApp> {
        TestApp::process(bin, &self.env(roles)).await
    }

    /// A node running `roles` ("api,fanout", "gateway", "all", ...).
    pub async fn node(&self, roles: &str) -> anyhow::Result<TestApp> {
        TestApp::spawn_with(|config| {
            self.configure(config);
            config.server.roles = roles.to_owned();
        })
        .await
    }
}
