//! Secrets: a wrapper type that never shows its contents, and where the
//! secrets of a connector come from (OS keyring, then file, then env).

use std::fmt;

use zeroize::Zeroize;

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

/// Environment variable holding the TeleMessage password (last resort).
pub const PASSWORD_ENV: &str = "WECHAT_ARCHIVER_PASSWORD";

/// Why no secret could be found; lists every place that was tried.
#[derive(Debug, thiserror::Error)]
#[error("no TeleMessage password for connector '{connector}': tried {tried}")]
pub struct NoSecret {
    pub connector: String,
    pub tried: String,
}

/// The secrets a connector needs at run time.
#[derive(Debug, Clone)]
pub struct ConnectorSecrets {
    pub telemessage_password: Secret,
    /// The IMAP password or Graph client secret, where the target has one.
    pub target_secret: Option<Secret>,
}

/// Finds the connector's secrets. For now only the environment variable;
/// the keyring and the password file arrive with `login`.
pub fn load(connector: &str) -> Result<ConnectorSecrets, NoSecret> {
    match std::env::var(PASSWORD_ENV) {
        Ok(value) if !value.is_empty() => Ok(ConnectorSecrets {
            telemessage_password: Secret::new(value),
            target_secret: None,
        }),
        _ => Err(NoSecret {
            connector: connector.to_owned(),
            tried: format!("the {PASSWORD_ENV} environment variable"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        let c = ConnectorSecrets {
            telemessage_password: s.clone(),
            target_secret: Some(s),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
