//! The JWT signing key: from configuration, or generated on first start and kept in the data
//! directory (mode 0600), so tokens survive restarts.

use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

use crate::config::AuthConfig;

const KEY_FILE: &str = "jwt.key";

pub fn jwt_secret(auth: &AuthConfig, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if !auth.jwt_secret.is_empty() {
        let key = STANDARD
            .decode(auth.jwt_secret.trim())
            .context("auth.jwt_secret is not valid base64")?;
        if key.len() < 32 {
            bail!("auth.jwt_secret must decode to at least 32 bytes");
        }
        return Ok(key);
    }
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let key = STANDARD
            .decode(text.trim())
            .with_context(|| format!("{} is not valid base64", path.display()))?;
        if key.len() < 32 {
            bail!("{} holds a key shorter than 32 bytes", path.display());
        }
        return Ok(key);
    }
    let mut key = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    write_private(&path, &STANDARD.encode(&key))?;
    tracing::info!(path = %path.display(), "generated a new JWT signing key");
    Ok(key)
}

/// Makes a file (0600) or a directory (0700) its owner's alone: the data directory holds the
/// signing key, the database and every message. A no-op where there are no Unix modes.
pub fn make_private(path: &Path, directory: bool) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if directory { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, directory);
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
