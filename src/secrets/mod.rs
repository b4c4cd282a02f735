//! Secrets: a wrapper type that never shows its contents, and where the
//! secrets of a connector come from.
//!
//! Each secret is looked up in this order, the first place that has it wins:
//! 1. the OS keyring, service `wechat-archiver`, account
//!    `<connector>/telemessage` (the TeleMessage password) or
//!    `<connector>/target` (the IMAP password, or the client secret of a Graph or
//!    IMAP XOAUTH2 application),
//!    as `wechat-archiver login` stores them;
//! 2. the file named by `WECHAT_ARCHIVER_PASSWORD_FILE` (owner-only; line 1
//!    the TeleMessage password, line 2 the target's secret), for cron jobs
//!    and containers, which have no keyring to reach;
//! 3. `WECHAT_ARCHIVER_PASSWORD` (the TeleMessage password only).

mod file;
mod os_keyring;
pub mod verify;

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroize;

pub use file::{PasswordFile, PasswordFileError, read_password_file};
pub use os_keyring::{KeyringError, OsKeyring};

use crate::mailbox::Target;

/// The keyring service every entry of this tool is stored under.
pub const SERVICE: &str = "wechat-archiver";

/// Environment variable holding the TeleMessage password (last resort).
pub const PASSWORD_ENV: &str = "WECHAT_ARCHIVER_PASSWORD";

/// Environment variable naming the password file.
pub const PASSWORD_FILE_ENV: &str = "WECHAT_ARCHIVER_PASSWORD_FILE";

/// A password or client secret. `Debug` and `Display` print `[redacted]`,
/// and the bytes are zeroed when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The only way to read the value; grep for it to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Somewhere secrets are kept by name: the OS keyring in the product, a map
/// in unit tests of the code around it.
pub trait KeyStore {
    /// Names the store in messages, e.g. "Secret Service".
    fn backend(&self) -> &'static str;
    /// Whether the store can be reached at all.
    fn probe(&self) -> Result<(), KeyringError>;
    fn get(&self, account: &str) -> Result<Option<Secret>, KeyringError>;
    fn set(&self, account: &str, secret: &Secret) -> Result<(), KeyringError>;
    /// Removes the entry; `false` when there was none.
    fn delete(&self, account: &str) -> Result<bool, KeyringError>;
}

/// The two secrets a connector can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    TelemessagePassword,
    /// The IMAP password, or an application's client secret (Graph, IMAP
    /// with XOAUTH2).
    TargetSecret,
}

impl SecretKind {
    /// The keyring account this secret is stored under.
    pub fn account(self, connector: &str) -> String {
        match self {
            SecretKind::TelemessagePassword => format!("{connector}/telemessage"),
            SecretKind::TargetSecret => format!("{connector}/target"),
        }
    }

    /// Its line in the password file and on `login --password-stdin`.
    pub fn line(self) -> usize {
        match self {
            SecretKind::TelemessagePassword => 1,
            SecretKind::TargetSecret => 2,
        }
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::TelemessagePassword => "TeleMessage password",
            SecretKind::TargetSecret => {
                "target secret (IMAP password, or Graph or XOAUTH2 client secret)"
            }
        })
    }
}

/// Whether a target needs a secret of its own: IMAP and Graph do, a local
/// Maildir does not.
pub fn target_needs_secret(target: &Target) -> bool {
    !matches!(target, Target::Maildir { .. })
}

/// Where a secret was found. Says where, never what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Keyring {
        backend: &'static str,
        account: String,
    },
    PasswordFile {
        path: PathBuf,
        line: usize,
    },
    Environment {
        variable: &'static str,
    },
}

impl Source {
    /// A one-word name for JSON output: `keyring`, `password_file`, `environment`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Keyring { .. } => "keyring",
            Source::PasswordFile { .. } => "password_file",
            Source::Environment { .. } => "environment",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Keyring { backend, account } => write!(
                f,
                "the OS keyring ({backend}; service {SERVICE}, account {account})"
            ),
            Source::PasswordFile { path, line } => {
                write!(f, "the password file {} (line {line})", path.display())
            }
            Source::Environment { variable } => write!(f, "the {variable} environment variable"),
        }
    }
}

/// One place that was tried and why it gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub place: String,
    pub outcome: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.outcome)
    }
}

/// Why a secret could not be found; lists every place that was tried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no {kind} for connector '{connector}'; tried:{}", tried_list(.tried))]
pub struct NoSecret {
    pub connector: String,
    pub kind: SecretKind,
    pub tried: Vec<Attempt>,
}

fn tried_list(tried: &[Attempt]) -> String {
    tried.iter().map(|a| format!("\n  - {a}")).collect()
}

impl NoSecret {
    /// What to do about it, for the "Hint:" line.
    pub fn hint(&self) -> String {
        let connector = &self.connector;
        format!(
            "run `wechat-archiver login --connector {connector}` in a session that has a keyring. \
             A cron job has no session bus, so it cannot reach the keyring: either run the job \
             inside a user session whose keyring is unlocked (set DBUS_SESSION_BUS_ADDRESS in the \
             job), or run `login` once to check the password and then put the secrets in a file \
             only you can read (`chmod 600 FILE`; line 1 the TeleMessage password, line 2 the \
             target's secret if it has one) and set {PASSWORD_FILE_ENV}=FILE for the job"
        )
    }
}

/// The secrets a connector needs at run time.
#[derive(Debug, Clone)]
pub struct ConnectorSecrets {
    pub telemessage_password: Secret,
    /// The IMAP password or Graph client secret, where one was found.
    pub target_secret: Option<Secret>,
}

/// Finds the connector's secrets: the TeleMessage password is required,
/// the target's secret is returned when one is found. Callers whose target
/// needs a secret should use [`load_for`], which fails without it.
pub fn load(connector: &str) -> Result<ConnectorSecrets, NoSecret> {
    load_for(connector, false)
}

/// Finds the connector's secrets; with `target_secret_required` a missing
/// target secret is an error that lists where it was looked for.
pub fn load_for(
    connector: &str,
    target_secret_required: bool,
) -> Result<ConnectorSecrets, NoSecret> {
    Places::from_environment(&OsKeyring::new()).load(connector, target_secret_required)
}

/// Where each secret of a connector comes from, without its value: for
/// `login --status` and `status`.
#[derive(Debug, Clone)]
pub struct SecretSources {
    pub telemessage_password: Result<Source, NoSecret>,
    /// `None` when the target has no secret (a Maildir target).
    pub target_secret: Option<Result<Source, NoSecret>>,
}

/// Looks up where each secret of a connector comes from. The values are
/// read (that is the only way to know a place really has one) and dropped.
pub fn sources(connector: &str, target_needs_secret: bool) -> SecretSources {
    Places::from_environment(&OsKeyring::new()).sources(connector, target_needs_secret)
}

/// The places secrets are looked up in, in order.
pub struct Places<'a> {
    pub keyring: &'a dyn KeyStore,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<Secret>,
}

impl<'a> Places<'a> {
    /// The keyring given, and the password file and variable of this process.
    pub fn from_environment(keyring: &'a dyn KeyStore) -> Self {
        Places {
            keyring,
            password_file: std::env::var_os(PASSWORD_FILE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            password_env: std::env::var(PASSWORD_ENV)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Secret::new),
        }
    }

    pub fn load(
        &self,
        connector: &str,
        target_secret_required: bool,
    ) -> Result<ConnectorSecrets, NoSecret> {
        let (telemessage_password, _) = self.find(connector, SecretKind::TelemessagePassword)?;
        let target_secret = match self.find(connector, SecretKind::TargetSecret) {
            Ok((secret, _)) => Some(secret),
            Err(missing) if target_secret_required => return Err(missing),
            Err(_) => None,
        };
        Ok(ConnectorSecrets {
            telemessage_password,
            target_secret,
        })
    }

    pub fn sources(&self, connector: &str, target_needs_secret: bool) -> SecretSources {
        let locate = |kind| self.find(connector, kind).map(|(_, source)| source);
        SecretSources {
            telemessage_password: locate(SecretKind::TelemessagePassword),
            target_secret: target_needs_secret.then(|| locate(SecretKind::TargetSecret)),
        }
    }

    /// Walks the places in order. A place that fails (a refused file, a
    /// locked keyring) is noted and the walk goes on, as ssh skips a key
    /// file others can read; the note appears in the error if nothing works.
    pub fn find(&self, connector: &str, kind: SecretKind) -> Result<(Secret, Source), NoSecret> {
        let mut tried = Vec::new();
        let account = kind.account(connector);
        let keyring_place = format!(
            "the OS keyring ({}; service {SERVICE}, account {account})",
            self.keyring.backend()
        );
        match self.keyring.get(&account) {
            Ok(Some(secret)) if !secret.is_empty() => {
                let source = Source::Keyring {
                    backend: self.keyring.backend(),
                    account,
                };
                return Ok((secret, source));
            }
            Ok(_) => tried.push(attempt(keyring_place, "no entry")),
            Err(e) => tried.push(attempt(keyring_place, e)),
        }
        match self.in_file(kind) {
            Ok(found) => return Ok(found),
            Err(note) => tried.push(note),
        }
        match (&self.password_env, kind) {
            (Some(secret), SecretKind::TelemessagePassword) => {
                if let Some(refused) = tried
                    .iter()
                    .find(|a| a.place.starts_with(PASSWORD_FILE_ENV))
                    && self.password_file.is_some()
                {
                    tracing::warn!(
                        "using {PASSWORD_ENV} because the password file is unusable: {}",
                        refused.outcome
                    );
                }
                let source = Source::Environment {
                    variable: PASSWORD_ENV,
                };
                return Ok((secret.clone(), source));
            }
            (None, SecretKind::TelemessagePassword) => tried.push(attempt(PASSWORD_ENV, "not set")),
            (_, SecretKind::TargetSecret) => tried.push(attempt(
                PASSWORD_ENV,
                "holds the TeleMessage password only, never the target's secret",
            )),
        }
        Err(NoSecret {
            connector: connector.to_owned(),
            kind,
            tried,
        })
    }

    fn in_file(&self, kind: SecretKind) -> Result<(Secret, Source), Attempt> {
        let Some(path) = &self.password_file else {
            return Err(attempt(PASSWORD_FILE_ENV, "not set"));
        };
        let place = format!("{PASSWORD_FILE_ENV}={}", path.display());
        let file = read_password_file(path).map_err(|e| attempt(place.clone(), e))?;
        let line = kind.line();
        match file.line(line) {
            Some(secret) => Ok((
                secret.clone(),
                Source::PasswordFile {
                    path: path.clone(),
                    line,
                },
            )),
            None => Err(attempt(place, format!("line {line} is missing or empty"))),
        }
    }
}

fn attempt(place: impl fmt::Display, outcome: impl fmt::Display) -> Attempt {
    Attempt {
        place: place.to_string(),
        outcome: outcome.to_string(),
    }
}

#[cfg(test)]
mod tests;
