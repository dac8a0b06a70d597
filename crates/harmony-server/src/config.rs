//! Configuration in layers: the defaults file in the repository (built in), an optional file,
//! `HARMONY_*` environment variables, then command-line flags. The merged result is checked
//! once, at start: unknown keys and bad values stop the process with a message naming them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::Deserialize;

mod validate;

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
    pub history: HistoryConfig,
}

/// The cluster's message store.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    pub backend: HistoryBackend,
    pub dynamodb_endpoint: String,
    pub dynamodb_region: String,
    pub dynamodb_access_key_id: String,
    pub dynamodb_secret_access_key: String,
    pub dynamodb_table: String,
    pub dynamodb_create_table: bool,
}

impl fmt::Debug for HistoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &str| if v.is_empty() { "<empty>" } else { "<set>" };
        f.debug_struct("HistoryConfig")
            .field("backend", &self.backend)
            .field("dynamodb_endpoint", &self.dynamodb_endpoint)
            .field("dynamodb_region", &self.dynamodb_region)
            .field("dynamodb_access_key_id", &set(&self.dynamodb_access_key_id))
            .field(
                "dynamodb_secret_access_key",
                &set(&self.dynamodb_secret_access_key),
            )
            .field("dynamodb_table", &self.dynamodb_table)
            .field("dynamodb_create_table", &self.dynamodb_create_table)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryBackend {
    Postgres,
    Dynamodb,
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
