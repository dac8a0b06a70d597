//! The checks a loaded configuration must pass before anything starts: ranges, settings that
//! must agree with each other, and the cluster's services named together or not at all.

use std::net::SocketAddr;

use anyhow::bail;

use super::{Config, Roles};

impl Config {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        let a = &self.auth;
        if !(60..=900).contains(&a.access_token_ttl_secs) {
            bail!(
                "auth.access_token_ttl_secs must be 60 to 900, not {}",
                a.access_token_ttl_secs
            );
        }
        if a.refresh_grace_secs > 10 {
            bail!(
                "auth.refresh_grace_secs must be at most 10, not {}",
                a.refresh_grace_secs
            );
        }
        if a.refresh_token_ttl_days == 0 || a.refresh_token_ttl_days > 365 {
            bail!("auth.refresh_token_ttl_days must be 1 to 365");
        }
        let s = &self.server;
        if s.max_connections < 16 {
            bail!("server.max_connections must be at least 16");
        }
        if !(1..=600).contains(&s.header_read_timeout_secs)
            || !(1..=3600).contains(&s.request_timeout_secs)
        {
            bail!(
                "server.header_read_timeout_secs must be 1 to 600 and \
                 server.request_timeout_secs 1 to 3600"
            );
        }
        if !s.metrics_listen.is_empty() && s.metrics_listen.parse::<SocketAddr>().is_err() {
            bail!(
                "server.metrics_listen must be an address and port, not {:?}",
                s.metrics_listen
            );
        }
        if let Err(e) = harmony_api::client::TrustedProxies::parse(&self.server.trusted_proxies) {
            bail!("server.trusted_proxies: {e}");
        }
        let l = &self.limits;
        if l.max_body_bytes < 1024 || l.max_body_bytes > 16 * 1024 * 1024 {
            bail!("limits.max_body_bytes must be 1 KiB to 16 MiB");
        }
        if l.login_burst == 0
            || l.send_burst == 0
            || l.login_address_burst == 0
            || l.register_burst == 0
            || l.login_per_minute <= 0.0
            || l.send_per_second <= 0.0
            || l.login_address_per_minute <= 0.0
            || l.register_per_hour <= 0.0
            || l.chat_create_burst == 0
            || l.member_add_burst == 0
            || l.chat_create_per_hour <= 0.0
            || l.member_add_per_hour <= 0.0
        {
            bail!("rate limits must be positive");
        }
        if let Err(e) = l.contact.parse::<harmony_core::usecases::Contact>() {
            bail!("limits.contact: {e}");
        }
        if l.max_group_members < 2 {
            bail!("limits.max_group_members must be at least 2");
        }
        if !(16..=1_000_000).contains(&self.gateway.session_queue) {
            bail!("gateway.session_queue must be 16 to 1000000");
        }
        if self.gateway.max_sessions_per_user == 0 || self.auth.max_sessions_per_user == 0 {
            bail!(
                "auth.max_sessions_per_user and gateway.max_sessions_per_user must be at least 1"
            );
        }
        let g = &self.gateway;
        if !(1..=3600).contains(&g.ping_interval_secs)
            || g.idle_timeout_secs < 2 * g.ping_interval_secs
            || g.idle_timeout_secs > 86_400
        {
            bail!(
                "gateway.ping_interval_secs must be 1 to 3600 and gateway.idle_timeout_secs at \
                 least twice it (and at most 86400)"
            );
        }
        let p = &self.presence;
        if p.grace_ms > 600_000 || !(300..=600_000).contains(&p.node_ttl_ms) {
            bail!(
                "presence.grace_ms must be at most 600000 and presence.node_ttl_ms 300 to 600000"
            );
        }
        if self.gateway.drain_secs > 0 && self.gateway.drain_secs >= self.server.shutdown_grace_secs
        {
            bail!("gateway.drain_secs must be below server.shutdown_grace_secs (or 0)");
        }
        if !(10..=10_000).contains(&self.auth.revocation_poll_ms) {
            bail!("auth.revocation_poll_ms must be 10 to 10000");
        }
        let roles = Roles::parse(&self.server.roles)?;
        let c = &self.cluster;
        let cluster_parts = [&c.postgres_url, &c.brokers, &c.redis_url]
            .iter()
            .filter(|v| !v.is_empty())
            .count();
        if cluster_parts != 0 && cluster_parts != 3 {
            bail!("cluster.postgres_url, cluster.brokers and cluster.redis_url are set together, or not at all");
        }
        if roles != Roles::ALL && !c.enabled() {
            bail!("server.roles other than \"all\" need the [cluster] settings");
        }
        if c.partitions < 1 || c.window_size < 10 || c.max_connections < 2 {
            bail!("cluster.partitions must be at least 1, window_size at least 10, max_connections at least 2");
        }
        if c.min_insync_replicas < 1 || c.min_insync_replicas > c.replication_factor {
            bail!("cluster.min_insync_replicas must be 1 to cluster.replication_factor");
        }
        let h = &self.history;
        if h.backend == super::HistoryBackend::Dynamodb {
            if h.dynamodb_region.is_empty() || h.dynamodb_table.is_empty() {
                bail!("history.dynamodb_region and history.dynamodb_table must be set for the dynamodb backend");
            }
            if h.dynamodb_access_key_id.is_empty() != h.dynamodb_secret_access_key.is_empty() {
                bail!("history.dynamodb_access_key_id and history.dynamodb_secret_access_key are set together, or not at all");
            }
        }
        let origin = &self.server.public_origin;
        let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
        if !origin.is_empty() && !scheme_ok {
            bail!("server.public_origin must start with http:// or https://");
        }
        Ok(())
    }
}
