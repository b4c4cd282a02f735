//! The home directory (configuration, ledger, logs, spool) and the
//! connector settings kept in `config.toml`. No secret is ever stored here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mailbox::Target;
use crate::types::Mailbox;

/// Environment variable naming the home directory.
pub const HOME_ENV: &str = "WECHAT_ARCHIVER_HOME";

/// The archive folder name used when `--folder` is not given.
pub const DEFAULT_FOLDER: &str = "WeChat Archiver";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot determine a home directory; pass --home DIR or set {HOME_ENV}")]
    NoHome,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid configuration file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no connector named '{name}'{}", known_list(.known))]
    UnknownConnector { name: String, known: Vec<String> },
    #[error("no connector is set up yet")]
    NoConnectors,
    #[error("there are several connectors ({}); say which one with --connector NAME", .0.join(", "))]
    AmbiguousConnector(Vec<String>),
    #[error("a connector named '{0}' already exists")]
    ConnectorExists(String),
    #[error(
        "connector name {0:?} is not allowed: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    BadConnectorName(String),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (no connector is set up yet)".to_owned()
    } else {
        format!(" (known: {})", known.join(", "))
    }
}

/// The directory everything lives under.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `--home`, else `$WECHAT_ARCHIVER_HOME`, else the platform's data
    /// directory for the application.
    pub fn locate(explicit: Option<&Path>) -> Result<Home, ConfigError> {
        if let Some(dir) = explicit {
            return Ok(Home::at(dir));
        }
        if let Some(dir) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(Home::at(Path::new(&dir)));
        }
        directories::ProjectDirs::from("", "", "wechat-archiver")
            .map(|dirs| Home::at(dirs.data_dir()))
            .ok_or(ConfigError::NoHome)
    }

    pub fn at(dir: &Path) -> Home {
        Home {
            root: dir.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub fn ledger_file(&self) -> PathBuf {
        self.root.join("ledger.sqlite")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Where a connector's large downloads are spooled while being written.
    pub fn spool_dir(&self, connector: &str) -> PathBuf {
        self.root.join("spool").join(connector)
    }

    pub fn lock_file(&self, connector: &str) -> PathBuf {
        self.root.join("locks").join(format!("{connector}.lock"))
    }

    /// Creates the home if it does not exist and makes it owner-only: it
    /// holds the ledger and logs, which name every archived conversation.
    /// A home that cannot be made private is an error, not a shrug.
    pub fn ensure(&self) -> Result<(), ConfigError> {
        let write_err = |source| ConfigError::Write {
            path: self.root.clone(),
            source,
        };
        std::fs::create_dir_all(&self.root).map_err(write_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.root)
                .map_err(write_err)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| {
                        write_err(std::io::Error::new(
                            e.kind(),
                            format!("cannot make it private to its user (chmod 700): {e}"),
                        ))
                    })?;
            }
        }
        Ok(())
    }

    pub fn load(&self) -> Result<Config, ConfigError> {
        let path = self.config_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Writes the configuration atomically (temp file, then rename).
    pub fn save(&self, config: &Config) -> Result<(), ConfigError> {
        self.ensure()?;
        let path = self.config_file();
        let text = toml::to_string_pretty(config).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("toml.tmp");
        let write_err = |source| ConfigError::Write {
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, &path).map_err(write_err)
    }
}

/// Microsoft national clouds (`--cloud`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    #[default]
    Global,
    Usgov,
    UsgovDod,
    China,
}

/// How an IMAP target logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetAuth {
    /// SASL PLAIN as an admin (`--target-user`) acting for each mailbox.
    #[default]
    Plain,
    /// SASL XOAUTH2 with an app-only token from the Microsoft identity
    /// platform (Exchange Online): `tenant`, `client_id`, `cloud` and
    /// `login_endpoint` say where the token comes from; the client secret
    /// is the target's secret.
    Xoauth2,
}

impl TargetAuth {
    fn is_plain(&self) -> bool {
        *self == TargetAuth::Plain
    }
}

/// Where a connector's items come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// The archive API, read by `sync` (connectors made before e-mail
    /// sources existed have no `source` and are this).
    #[default]
    Api,
    /// TeleMessage's e-mail delivery, fed by `receive`, `deliver` and
    /// `import` (`telemessage-email.md`).
    Email,
}

impl SourceKind {
    fn is_api(&self) -> bool {
        *self == SourceKind::Api
    }
}

/// One connector: a TeleMessage account, a target, and mapping rules.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectorConfig {
    #[serde(default, skip_serializing_if = "SourceKind::is_api")]
    pub source: SourceKind,
    /// The API's base URL (empty for an e-mail source).
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub username: String,
    /// E-mail source: the organisation's mail domains; automatic mapping
    /// by address applies only to addresses in them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// E-mail source: the envelope recipient names the employee.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mailbox_from_recipient: bool,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<PathBuf>,
    #[serde(default = "yes")]
    pub auto_mapping: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_region: Option<String>,
    #[serde(default = "default_folder")]
    pub folder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_mailbox: Option<Mailbox>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default)]
    pub cloud: Cloud,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_endpoint: Option<String>,
    /// IMAP target: how it logs in.
    #[serde(default, skip_serializing_if = "TargetAuth::is_plain")]
    pub auth: TargetAuth,
    /// IMAP target with XOAUTH2: the directory (tenant) id or a verified
    /// domain the application's token comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Graph target: an `imaps://` URL into Exchange Online that takes,
    /// over IMAP with XOAUTH2 and the same application, the items Graph
    /// cannot take whole (`--large-item-fallback imap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_item_fallback: Option<String>,
    /// When the TeleMessage terms were accepted (RFC 3339).
    pub terms_accepted_at: String,
}

fn yes() -> bool {
    true
}

fn default_folder() -> String {
    DEFAULT_FOLDER.to_owned()
}

impl ConnectorConfig {
    pub fn target(&self) -> Result<Target, crate::mailbox::target::InvalidTarget> {
        self.target.parse()
    }
}

/// The whole `config.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Config {
    #[serde(default)]
    pub connectors: BTreeMap<String, ConnectorConfig>,
}

impl Config {
    /// The named connector, or the only one when no name is given.
    pub fn connector(&self, name: Option<&str>) -> Result<(String, &ConnectorConfig), ConfigError> {
        let known = || self.connectors.keys().cloned().collect::<Vec<_>>();
        match name {
            Some(name) => self
                .connectors
                .get(name)
                .map(|c| (name.to_owned(), c))
                .ok_or_else(|| ConfigError::UnknownConnector {
                    name: name.to_owned(),
                    known: known(),
                }),
            None => match self.connectors.len() {
                0 => Err(ConfigError::NoConnectors),
                1 => {
                    let (name, c) = self.connectors.iter().next().expect("one connector");
                    Ok((name.clone(), c))
                }
                _ => Err(ConfigError::AmbiguousConnector(known())),
            },
        }
    }
}

/// Checks a connector name: it names files (lock, log) and appears in
/// headers, so it is kept to a safe alphabet.
pub fn validate_connector_name(name: &str) -> Result<(), ConfigError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadConnectorName(name.to_owned()))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_home_is_made_private_and_a_failed_chmod_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        Home::at(&root).ensure().unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        // Even root may not chmod /proc/sys (mode 0555).
        let e = Home::at(Path::new("/proc/sys")).ensure().unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("/proc/sys") && text.contains("chmod 700"),
            "{text}"
        );
    }
}
