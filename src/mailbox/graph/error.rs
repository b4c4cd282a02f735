//! How a Graph call failed, kept apart from [`WriteError`] so each caller
//! can decide whether a failure concerns the copy, the mailbox or the
//! whole target.

use crate::mailbox::WriteError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum GraphError {
    /// Graph answered with an error status and, usually, an OData error.
    #[error("Microsoft Graph answered {status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// A request that is not safe to repeat failed after it may have been
    /// processed (a timeout, a reset, a gateway timeout).
    #[error("the outcome of a request to Microsoft Graph is unknown ({0})")]
    Ambiguous(String),
    /// Graph could not be reached, even after retries.
    #[error("cannot reach Microsoft Graph: {0}")]
    Unreachable(String),
    /// Throttling or server errors outlasted the retry budget.
    #[error(
        "Microsoft Graph is still answering {status} after {attempts} attempts; try again later"
    )]
    GaveUp { status: u16, attempts: u32 },
    /// The identity platform refused the application's credentials.
    #[error("{0}")]
    Auth(String),
    /// Graph answered something other than what it documents.
    #[error("unexpected answer from Microsoft Graph: {0}")]
    Protocol(String),
}

impl From<crate::mailbox::oauth::TokenError> for GraphError {
    fn from(e: crate::mailbox::oauth::TokenError) -> Self {
        use crate::mailbox::oauth::TokenError;
        match e {
            TokenError::Refused(m) => GraphError::Auth(m),
            TokenError::Unreachable(m) => GraphError::Unreachable(m),
            TokenError::Protocol(m) => GraphError::Protocol(m),
        }
    }
}

impl GraphError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
            || matches!(
                self.code(),
                Some("ErrorItemNotFound" | "Request_ResourceNotFound" | "ResourceNotFound")
            )
    }

    /// The mailbox itself is unusable: it does not exist, has no Exchange
    /// mailbox, or the tenant's policy keeps the application out of it.
    pub fn is_mailbox_refusal(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "ErrorAccessDenied"
                    | "ErrorInvalidUser"
                    | "MailboxNotEnabledForRESTAPI"
                    | "MailboxNotSupportedForRESTAPI"
                    | "ErrorNonExistentMailbox"
            )
        )
    }

    /// Maps a failure of a write into the trait's error kinds.
    pub fn into_write_error(self, mailbox: &str) -> WriteError {
        match &self {
            GraphError::Auth(_) | GraphError::Unreachable(_) => {
                WriteError::Target(self.to_string())
            }
            _ if self.is_mailbox_refusal() => WriteError::Mailbox {
                mailbox: mailbox.to_owned(),
                reason: self.to_string(),
            },
            _ => WriteError::Copy(self.to_string()),
        }
    }
}
