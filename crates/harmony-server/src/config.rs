//! Configuration in layers: the defaults file in the repository (built in), an optional file,
//! `HARMONY_*` environment variables, then command-line flags. The merged result is checked
//! once, at start: unknown keys and bad values stop the process with a message naming them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The defaults, documented key by key.
pub const DEFAULTS: &str = include_str!("../../../config/harmony.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub gateway: GatewayConfig,
    pub presence: PresenceConfig,
    pub cluster: ClusterConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_origin: String,
    pub shutdown_grace_secs: u64,
    pub roles: String,
    pub trusted_proxies: String,
    pub max_connections: usize,
    pub header_read_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub metrics_listen: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    pub refresh_grace_secs: u64,
    pub jwt_secret: String,
    pub max_sessions_per_user: u32,
    pub revocation_poll_ms: u64,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_days", &self.refresh_token_ttl_days)
            .field("refresh_grace_secs", &self.refresh_grace_secs)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("revocation_poll_ms", &self.revocation_poll_ms)
            .field(
                "jwt_secret",
                &if self.jwt_secret.is_empty() {
                    "<generated>"
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_group_members: u32,
    pub login_burst: u32,
    pub login_per_minute: f64,
    pub login_address_burst: u32,
    pub login_address_per_minute: f64,
    pub register_burst: u32,
    pub register_per_hour: f64,
    pub chat_create_burst: u32,
    pub chat_create_per_hour: f64,
    pub member_add_burst: u32,
    pub member_add_per_hour: f64,
    pub contact: String,
    pub send_burst: u32,
    pub send_per_second: f64,
    pub password_queue: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub session_queue: usize,
    pub max_sessions_per_user: usize,
    pub ping_interval_secs: u64,
    pub idle_timeout_secs: u64,
    pub drain_secs: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceConfig {
    pub grace_ms: u64,
    pub max_chat_members: u32,
    pub node_ttl_ms: u64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub postgres_url: String,
    pub history_url: String,
    pub brokers: String,
    pub redis_url: String,
    pub messages_topic: String,
    pub events_topic: String,
    pub dead_letter_topic: String,
    pub messages_dead_letter_topic: String,
    pub relay_slot: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub min_insync_replicas: i32,
    pub key_prefix: String,
    pub window_size: usize,
    pub linger_ms: u32,
    pub fetch_wait_ms: u32,
    pub max_connections: u32,
}

impl ClusterConfig {
    /// True when the cluster shape is configured.
    pub fn enabled(&self) -> bool {
        !self.postgres_url.is_empty()
    }
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may hold passwords.
        let set = |v: &str| if v.is_empty() { "<empty>" } else { "<set>" };
        f.debug_struct("ClusterConfig")
            .field("postgres_url", &set(&self.postgres_url))
            .field("history_url", &set(&self.history_url))
            .field("brokers", &self.brokers)
            .field("redis_url", &set(&self.redis_url))
            .field("messages_topic", &self.messages_topic)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("min_insync_replicas", &self.min_insync_replicas)
            .field("key_prefix", &self.key_prefix)
            .field("window_size", &self.window_size)
            .finish_non_exhaustive()
    }
}

/// The roles a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub gateway: bool,
    pub fanout: bool,
    pub sink: bool,
    pub projector: bool,
    pub relay: bool,
}

impl Roles {
    pub const ALL: Self = Self {
        api: true,
        gateway: true,
        fanout: true,
        sink: true,
        projector: true,
        relay: true,
    };

    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        if raw.trim() == "all" {
            return Ok(Self::ALL);
        }
        let none = Self {
            api: false,
            gateway: false,
            fanout: false,
            sink: false,
            projector: false,
            relay: false,
        };
        let mut roles = none;
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "api" => roles.api = true,
                "gateway" => roles.gateway = true,
                "fanout" => roles.fanout = true,
                "sink" => roles.sink = true,
                "projector" => roles.projector = true,
                "relay" => roles.relay = true,
                other => bail!(
                    "unknown role {other:?}: use api, gateway, fanout, sink, projector, relay or all"
                ),
            }
        }
        if roles == none {
            bail!("server.roles names no role");
        }
        Ok(roles)
    }
}

/// Values given on the command line; they win over every other layer.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub roles: Option<String>,
}

impl Config {
    /// Builds the configuration from every layer, reading `HARMONY_*` from `env`.
    pub fn load(
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut merged: toml::Table = DEFAULTS.parse().context("the built-in defaults")?;
        if let Some(path) = &overrides.file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            let file: toml::Table = text
                .parse()
                .with_context(|| format!("parsing config file {}", path.display()))?;
            merge(&mut merged, file, "")?;
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("HARMONY_") else {
                continue;
            };
            let path: Vec<String> = match key {
                "LISTEN" => vec!["server".into(), "listen".into()],
                "DATA_DIR" => vec!["server".into(), "data_dir".into()],
                "CONFIG" => continue,
                _ => key.split("__").map(str::to_ascii_lowercase).collect(),
            };
            let [section, field] = path.as_slice() else {
                bail!("unknown environment variable {name}: use HARMONY_<SECTION>__<KEY>");
            };
            set(&mut merged, section, field, env_value(&value), &name)?;
        }
        if let Some(listen) = &overrides.listen {
            set(
                &mut merged,
                "server",
                "listen",
                toml::Value::String(listen.clone()),
                "--listen",
            )?;
        }
        if let Some(roles) = &overrides.roles {
            set(
                &mut merged,
                "server",
                "roles",
                toml::Value::String(roles.clone()),
                "--role",
            )?;
        }
        if let Some(dir) = &overrides.data_dir {
            let dir = toml::Value::String(dir.display().to_string());
            set(&mut merged, "server", "data_dir", dir, "--data-dir")?;
        }
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
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
        let origin = &self.server.public_origin;
        let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
        if !origin.is_empty() && !scheme_ok {
            bail!("server.public_origin must start with http:// or https://");
        }
        Ok(())
    }
}

/// Environment values are TOML when they parse as a number or boolean, text otherwise.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(v) = raw.parse::<i64>() {
        return toml::Value::Integer(v);
    }
    if let Ok(v) = raw.parse::<f64>() {
        return toml::Value::Float(v);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn set(
    table: &mut toml::Table,
    section: &str,
    key: &str,
    value: toml::Value,
    from: &str,
) -> anyhow::Result<()> {
    let Some(toml::Value::Table(section_table)) = table.get_mut(section) else {
        bail!("{from}: unknown section [{section}]");
    };
    let Some(current) = section_table.get(key) else {
        bail!("{from}: unknown setting {section}.{key}");
    };
    // A float setting given as "10" arrives as an integer.
    let value = match (current, value) {
        (toml::Value::Float(_), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
        (toml::Value::String(_), toml::Value::Integer(i)) => toml::Value::String(i.to_string()),
        (_, v) => v,
    };
    section_table.insert(key.to_owned(), value);
    Ok(())
}

/// Merges `over` into `base`; a key `base` does not have is an error naming it.
fn merge(base: &mut toml::Table, over: toml::Table, prefix: &str) -> anyhow::Result<()> {
    for (key, value) in over {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o, &name)?,
            (Some(toml::Value::Table(_)), _) => bail!("{name} must be a section"),
            (Some(slot), value) => *slot = value,
            (None, _) => bail!("unknown setting {name}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let config = Config::load(&Overrides::default(), env(&[])).expect("defaults are valid");
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.limits.send_burst, 60);
    }

    #[test]
    fn layers_override_in_order() {
        let dir = std::env::temp_dir().join(format!("harmony-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("h.toml");
        std::fs::write(&file, "[limits]\nsend_burst = 5\nsend_per_second = 2\n").expect("write");
        let overrides = Overrides {
            file: Some(file),
            listen: Some("127.0.0.1:9000".into()),
            data_dir: None,
            roles: None,
        };
        let config = Config::load(
            &overrides,
            env(&[
                ("HARMONY_LIMITS__SEND_BURST", "7"),
                ("HARMONY_LISTEN", "127.0.0.1:1"),
                ("PATH", "/bin"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.limits.send_burst, 7);
        assert_eq!(config.limits.send_per_second, 2.0);
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = |e: &[(&str, &str)]| {
            Config::load(&Overrides::default(), env(e))
                .err()
                .map(|e| format!("{e:#}"))
        };
        assert!(err(&[("HARMONY_LIMITS__NOPE", "1")]).is_some_and(|e| e.contains("limits.nope")));
        assert!(err(&[("HARMONY_NOPE", "1")]).is_some_and(|e| e.contains("HARMONY_NOPE")));
        assert!(err(&[("HARMONY_AUTH__ACCESS_TOKEN_TTL_SECS", "3600")])
            .is_some_and(|e| e.contains("900")));
        assert!(err(&[("HARMONY_LISTEN", "not an address")]).is_some());
        assert!(err(&[("HARMONY_LOG__FORMAT", "xml")]).is_some());
    }

    #[test]
    fn roles_parse_and_need_a_cluster() {
        assert_eq!(Roles::parse("all").ok(), Some(Roles::ALL));
        let some = Roles::parse("api, sink").expect("valid");
        assert!(some.api && some.sink && !some.gateway && !some.fanout && !some.projector);
        assert!(Roles::parse("api,teleport").is_err());
        assert!(Roles::parse("").is_err());
        let err = |e: &[(&str, &str)]| {
            Config::load(&Overrides::default(), env(e))
                .err()
                .map(|e| format!("{e:#}"))
        };
        assert!(err(&[("HARMONY_SERVER__ROLES", "api")]).is_some_and(|e| e.contains("[cluster]")));
        assert!(err(&[("HARMONY_CLUSTER__BROKERS", "x:1")]).is_some_and(|e| e.contains("together")));
    }

    #[test]
    fn secrets_do_not_print() {
        let mut config = Config::load(&Overrides::default(), env(&[])).expect("valid");
        config.auth.jwt_secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==".into();
        config.cluster.postgres_url = "postgres://u:hunter2@db/h".into();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
