//! Development secrets: generated once and kept in `DATA_DIR/secrets.json` (readable by the owner
//! only), so a restart keeps sessions valid without anything configured.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Serialize, Deserialize)]
pub(super) struct DevSecrets {
    pub(super) jwt_secret: String,
    pub(super) jwt_refresh_secret: String,
    /// Absent from files written before secrets were encrypted at rest; added on first start.
    #[serde(default)]
    pub(super) encryption_key: String,
}

impl DevSecrets {
    pub(super) fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join("secrets.json");
        if let Ok(raw) = std::fs::read_to_string(&path) {
            let mut secrets: DevSecrets = serde_json::from_str(&raw).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not valid: {e}", path.display()),
                )
            })?;
            if secrets.encryption_key.is_empty() {
                secrets.encryption_key = random_hex(32);
                let tmp = dir.join("secrets.json.tmp");
                let _ = std::fs::remove_file(&tmp);
                write_private(&tmp, &secrets)?;
                std::fs::rename(&tmp, &path)?;
            }
            return Ok(secrets);
        }
        std::fs::create_dir_all(dir)?;
        let secrets = DevSecrets {
            jwt_secret: random_hex(64),
            jwt_refresh_secret: random_hex(64),
            encryption_key: random_hex(32),
        };
        match write_private(&path, &secrets) {
            Ok(()) => Ok(secrets),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(dir),
            Err(e) => Err(e),
        }
    }
}

/// Writes `secrets` to a new file `path` readable by the owner only.
fn write_private(path: &Path, secrets: &DevSecrets) -> std::io::Result<()> {
    let body = serde_json::to_string_pretty(secrets).map_err(std::io::Error::other)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path)?;
    use std::io::Write;
    file.write_all(body.as_bytes())?;
    file.sync_all()
}

/// `n` random bytes, hex-encoded.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(super) fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
