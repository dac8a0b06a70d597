//! The cluster's message store on DynamoDB (decision record 0005), as the seed design has it:
//! an adapter for `HistoryStore`, fed by the sink from the log and eventually consistent with it.
//! It sits where `harmony-postgres`'s `HistoryDb` sits in the data flow (`history.backend =
//! "dynamodb"`): the sink upserts placed entries, history pages and resumes read it, the
//! projector purges deleted chats. Live delivery never waits on it.
//!
//! Credentials come from the AWS SDK's usual chain (environment, profile, web identity,
//! container or instance metadata) and are never printed. The HTTP client is rustls on ring.

mod apply;
mod item;
mod store;
mod table;

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::Client;
use harmony_core::ports::{StoreError, UserStore};

/// Where the table is and what to do when it is missing.
#[derive(Clone)]
pub struct DynamoSettings {
    /// An endpoint other than AWS's (dynalite, DynamoDB Local); `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub table: String,
    /// Create the table when it is missing; false refuses to start instead (an account where
    /// the service may not create tables).
    pub create_table: bool,
    /// Fixed credentials `(access key id, secret)` for a local endpoint; `None`: the SDK's
    /// chain.
    pub static_credentials: Option<(String, String)>,
}

/// The message store on DynamoDB. Cheap to clone.
#[derive(Clone)]
pub struct DynamoHistory {
    client: Client,
    table: Arc<str>,
    profiles: Arc<dyn UserStore>,
}

impl DynamoHistory {
    /// Connects with the SDK's credential chain and makes sure the table is there.
    pub async fn connect(
        settings: &DynamoSettings,
        profiles: Arc<dyn UserStore>,
    ) -> Result<Self, StoreError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .region(Region::new(settings.region.clone()));
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some((id, secret)) = &settings.static_credentials {
            let fixed =
                aws_sdk_dynamodb::config::Credentials::new(id, secret, None, None, "harmony");
            loader = loader.credentials_provider(fixed);
        }
        let client = Client::new(&loader.load().await);
        Self::with_client(client, settings, profiles).await
    }

    /// A store on a client built elsewhere (tests give one with fixed credentials).
    pub async fn with_client(
        client: Client,
        settings: &DynamoSettings,
        profiles: Arc<dyn UserStore>,
    ) -> Result<Self, StoreError> {
        table::ensure(&client, &settings.table, settings.create_table).await?;
        Ok(Self {
            client,
            table: settings.table.as_str().into(),
            profiles,
        })
    }
}

/// The SDK's HTTP client: hyper with rustls on ring (HTTPS to AWS, plain HTTP to a local
/// endpoint).
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Any SDK failure: the store is unavailable (a throttle the SDK's retries did not absorb
/// included), so the caller retries later; the message names the cause.
pub(crate) fn unavailable<E>(e: E) -> StoreError
where
    E: std::error::Error + 'static,
{
    StoreError::Unavailable(format!("dynamodb: {}", DisplayErrorContext(e)))
}

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("dynamodb {what}: {detail}"))
}
