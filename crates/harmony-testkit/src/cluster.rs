//! A private cluster for one test: PostgreSQL, Redis and a Kafka-API broker of its own, and any
//! number of Harmony nodes with chosen roles sharing them.

use harmony_server::Config;

use crate::kafka::PrivateBroker;
use crate::postgres::PrivatePostgres;
use crate::redis::PrivateRedis;
use crate::TestApp;

pub struct TestCluster {
    pub postgres: PrivatePostgres,
    pub redis: PrivateRedis,
    pub broker: PrivateBroker,
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
            redis: PrivateRedis::start().await?,
            broker: PrivateBroker::start().await?,
            state_url,
            history_url,
        })
    }

    /// Points a configuration at this cluster's services.
    pub fn configure(&self, config: &mut Config) {
        let c = &mut config.cluster;
        c.postgres_url = self.state_url.clone();
        c.history_url = self.history_url.clone();
        c.brokers = self.broker.bootstrap();
        c.redis_url = self.redis.url();
        c.partitions = 2;
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
