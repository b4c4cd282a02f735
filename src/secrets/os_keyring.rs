//! The OS keyring: the Secret Service on Linux (gnome-keyring, KWallet,
//! KeePassXC), the Keychain on macOS, the Credential Manager on Windows.
//!
//! The store is named explicitly rather than left to `keyring`'s default,
//! which is an in-memory mock on a build without a platform feature: there
//! everything would seem to work and nothing would persist.

use std::sync::OnceLock;

use super::{KeyStore, SERVICE, Secret};

/// Why the keyring could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// No keyring to talk to: no session bus (cron, ssh without a desktop
    /// session, a container), or no Secret Service on the bus.
    #[error("no keyring reachable: {0}")]
    Unreachable(String),
    /// Reachable but locked, or the user refused the prompt.
    #[error("the keyring is locked or refused access: {0}")]
    Locked(String),
    #[error("the keyring failed: {0}")]
    Failure(String),
}

/// The platform's keyring, under service [`SERVICE`].
#[derive(Debug, Default)]
pub struct OsKeyring {
    reachable: OnceLock<Result<(), KeyringError>>,
}

impl OsKeyring {
    pub fn new() -> Self {
        OsKeyring::default()
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry, KeyringError> {
        self.probe()?;
        platform::entry(account).map_err(|e| describe(e, account))
    }
}

impl KeyStore for OsKeyring {
    fn backend(&self) -> &'static str {
        platform::BACKEND
    }

    fn probe(&self) -> Result<(), KeyringError> {
        self.reachable.get_or_init(platform::probe).clone()
    }

    fn get(&self, account: &str) -> Result<Option<Secret>, KeyringError> {
        match self.entry(account)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(describe(e, account)),
        }
    }

    fn set(&self, account: &str, secret: &Secret) -> Result<(), KeyringError> {
        self.entry(account)?
            .set_password(secret.expose())
            .map_err(|e| describe(e, account))
    }

    fn delete(&self, account: &str) -> Result<bool, KeyringError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(keyring::Error::Ambiguous(items)) => {
                for item in items {
                    item.delete_credential().map_err(|e| describe(e, account))?;
                }
                Ok(true)
            }
            Err(e) => Err(describe(e, account)),
        }
    }
}

/// Turns a `keyring` error into ours. Written out by hand because some
/// variants (`BadEncoding`) carry the secret's bytes in their `Debug`.
fn describe(error: keyring::Error, account: &str) -> KeyringError {
    use keyring::Error as E;
    match error {
        E::NoStorageAccess(inner) => KeyringError::Locked(inner.to_string()),
        E::PlatformFailure(inner) => KeyringError::Failure(inner.to_string()),
        E::BadEncoding(_) => KeyringError::Failure(format!(
            "the entry for {account} is not UTF-8 text; store it again with `wechat-archiver login`"
        )),
        E::Ambiguous(items) => KeyringError::Failure(format!(
            "{} entries match service {SERVICE}, account {account}; remove them with `wechat-archiver login --forget` and log in again",
            items.len()
        )),
        E::NoEntry => KeyringError::Failure(format!("no entry for {account}")),
        other => KeyringError::Failure(other.to_string()),
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use std::time::Duration;

    use super::{KeyringError, SERVICE};

    pub const BACKEND: &str = "Secret Service";

    const SECRETS_NAME: &str = "org.freedesktop.secrets";

    pub fn entry(account: &str) -> keyring::Result<keyring::Entry> {
        let credential =
            keyring::secret_service::SsCredential::new_with_target(None, SERVICE, account)?;
        Ok(keyring::Entry::new_with_credential(Box::new(credential)))
    }

    /// Connects to the session bus and looks for a Secret Service on it,
    /// so that "there is no keyring here" is told apart from a failure.
    pub fn probe() -> Result<(), KeyringError> {
        let bus = dbus::blocking::Connection::new_session().map_err(|e| {
            let why = match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
                Ok(address) if !address.is_empty() => {
                    format!("{address}: {}", e.message().unwrap_or("no reason given"))
                }
                _ => "DBUS_SESSION_BUS_ADDRESS is not set".to_owned(),
            };
            KeyringError::Unreachable(format!(
                "cannot connect to the D-Bus session bus ({why}); cron jobs, containers and ssh logins without a desktop session have none"
            ))
        })?;
        let proxy = bus.with_proxy(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            Duration::from_secs(5),
        );
        let failed = |e: dbus::Error| {
            KeyringError::Unreachable(format!(
                "the D-Bus session bus does not answer ({})",
                e.message().unwrap_or("no reason given")
            ))
        };
        let (owned,): (bool,) = proxy
            .method_call("org.freedesktop.DBus", "NameHasOwner", (SECRETS_NAME,))
            .map_err(failed)?;
        if owned {
            return Ok(());
        }
        let (activatable,): (Vec<String>,) = proxy
            .method_call("org.freedesktop.DBus", "ListActivatableNames", ())
            .map_err(failed)?;
        if activatable.iter().any(|n| n == SECRETS_NAME) {
            return Ok(());
        }
        Err(KeyringError::Unreachable(
            "the D-Bus session bus has no Secret Service (start gnome-keyring-daemon, KWallet or KeePassXC's Secret Service)".to_owned(),
        ))
    }
}

#[cfg(any(target_os = "macos", target_os = "windows"))]
mod platform {
    use super::{KeyringError, SERVICE};

    #[cfg(target_os = "macos")]
    pub const BACKEND: &str = "macOS Keychain";
    #[cfg(target_os = "windows")]
    pub const BACKEND: &str = "Windows Credential Manager";

    /// The `apple-native` and `windows-native` features make these the
    /// default store, so `Entry::new` is the real one here.
    pub fn entry(account: &str) -> keyring::Result<keyring::Entry> {
        keyring::Entry::new(SERVICE, account)
    }

    pub fn probe() -> Result<(), KeyringError> {
        Ok(())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod platform {
    use super::KeyringError;

    pub const BACKEND: &str = "none";

    pub fn entry(_account: &str) -> keyring::Result<keyring::Entry> {
        Err(keyring::Error::NoStorageAccess(
            "no supported keyring on this platform".into(),
        ))
    }

    pub fn probe() -> Result<(), KeyringError> {
        Err(KeyringError::Unreachable(
            "this build supports the keyrings of Linux, macOS and Windows only".to_owned(),
        ))
    }
}
