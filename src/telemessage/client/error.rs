//! What can go wrong talking to TeleMessage, and which failures concern
//! one item only.

use std::time::Duration;

use crate::text::human_duration;

/// What went wrong talking to TeleMessage.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the endpoint {0:?} is not a valid URL")]
    BadEndpoint(String),
    #[error(
        "the endpoint {0} must not contain a user name or password; give the user name with --username and the password to `wechat-archiver login`"
    )]
    CredentialsInEndpoint(String),
    #[error("the endpoint {0} uses plain http:// to a host that is not loopback")]
    InsecureEndpoint(String),
    #[error("TeleMessage refused the user name or password (invalid_credentials)")]
    InvalidCredentials,
    #[error(
        "TeleMessage refused access ({code}){}",
        if message.is_empty() { String::new() } else { format!(": {message}") }
    )]
    Forbidden { code: String, message: String },
    #[error("TeleMessage rejected a fresh token twice in a row")]
    TokenRejected,
    #[error("TeleMessage answered 400 to {what}: {message}")]
    BadRequest { what: String, message: String },
    #[error("item {0} was purged from TeleMessage since it was listed (404)")]
    ItemGone(String),
    #[error(
        "item {0:?} cannot be requested: its id is a '.' or '..' path segment, which no URL can carry; ask TeleMessage for its content"
    )]
    UnaddressableItem(String),
    #[error("{what} failed after {attempts} attempts over {}: {last}", human_duration(*elapsed))]
    GaveUp {
        what: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    #[error(
        "TeleMessage asked to wait {} (Retry-After), longer than this run will wait",
        human_duration(*.0)
    )]
    RetryAfterTooLong(Duration),
    #[error(
        "TeleMessage answered {what} with a redirect to {location}; redirects are refused so that the password and tokens go only to the configured endpoint (set the endpoint to the URL the API really answers at)"
    )]
    Redirected { what: String, location: String },
    #[error("TeleMessage's answer to {what} cannot be used: {reason}")]
    Misbehaving { what: String, reason: String },
    #[error("cannot write the spool file {path}: {source}")]
    Spool {
        path: String,
        source: std::io::Error,
    },
}

impl ClientError {
    /// Failures that concern one item only; the run goes on without it.
    pub fn is_item_only(&self) -> bool {
        matches!(
            self,
            ClientError::ItemGone(_)
                | ClientError::UnaddressableItem(_)
                | ClientError::GaveUp { .. }
                | ClientError::Spool { .. }
        )
    }
}
