//! Errors at the command-line edge: every failure becomes a kind, an exit
//! status from `cli.md`, a message and a "Hint:" line that says what to do.

use std::fmt;

use wechat_archiver::text::escape_lines;

/// Exit statuses of `cli.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    Incomplete = 3,
    Locked = 4,
    /// `sysexits.h` `EX_DATAERR`: `deliver` got a message that will never
    /// be accepted.
    DataErr = 65,
    /// `sysexits.h` `EX_TEMPFAIL`: `deliver` could not archive the message
    /// now; the MTA keeps it and tries again.
    TempFail = 75,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s as u8)
    }
}

/// A failure that stops a command.
#[derive(Debug)]
pub struct CliError {
    pub status: ExitStatus,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(status: ExitStatus, message: impl fmt::Display) -> Self {
        CliError {
            status,
            message: message.to_string(),
            hint: None,
        }
    }

    /// Exit status 1: the command could not do its work.
    pub fn failure(message: impl fmt::Display) -> Self {
        CliError::new(ExitStatus::Failure, message)
    }

    /// Exit status 2: the command line itself is wrong.
    pub fn usage(message: impl fmt::Display) -> Self {
        CliError::new(ExitStatus::Usage, message)
    }

    pub fn hint(mut self, hint: impl fmt::Display) -> Self {
        self.hint = Some(hint.to_string());
        self
    }

    /// Prints the error to standard error as `error: ...` then `Hint: ...`,
    /// control characters escaped (messages quote servers and files).
    pub fn report(&self) {
        eprintln!("error: {}", escape_lines(&self.message));
        if let Some(hint) = &self.hint {
            eprintln!("Hint: {}", escape_lines(hint));
        }
    }
}

impl From<wechat_archiver::config::ConfigError> for CliError {
    fn from(e: wechat_archiver::config::ConfigError) -> Self {
        use wechat_archiver::config::ConfigError as E;
        let hint = match &e {
            E::NoHome => "pass --home DIR or set WECHAT_ARCHIVER_HOME".to_owned(),
            E::UnknownConnector { .. } | E::NoConnectors => {
                "create one with `wechat-archiver create NAME --endpoint URL --username USER --target TARGET`, or check --connector and --home".to_owned()
            }
            E::AmbiguousConnector(_) => "add --connector NAME".to_owned(),
            E::ConnectorExists(_) => "choose another name".to_owned(),
            E::BadConnectorName(_) => "for example: contoso-wechat".to_owned(),
            E::Read { .. } | E::Write { .. } => {
                "check that the home directory exists and is yours (see --home)".to_owned()
            }
            E::Parse { .. } => "fix or remove the file; it is TOML written by `create`".to_owned(),
        };
        CliError::failure(e).hint(hint)
    }
}

/// What to do when the home directory cannot be used.
pub const HOME_HINT: &str = "check that the home directory is writable (see --home)";

/// What to do about a part of a sync (target, client, mapping, ledger,
/// home) that could not be set up.
pub fn setup_error(e: wechat_archiver::sync::setup::SetupError) -> CliError {
    use wechat_archiver::ledger::LedgerError;
    use wechat_archiver::sync::setup::SetupError as E;
    let hint = match &e {
        E::Target { .. } | E::TargetConfig { .. } => {
            "re-create the connector with a valid --target (see `wechat-archiver create --help`)"
        }
        E::TargetUnusable(_) => {
            "make the target reachable and writable (permissions, disk space, server), then run sync again"
        }
        E::Client(_) => "fix the endpoint with `create`, or edit config.toml",
        E::Mapping(_) => "check the mapping file with `wechat-archiver map validate FILE`",
        E::Ledger(LedgerError::NewerVersion { .. }) => {
            "run the newer wechat-archiver that wrote it; this version leaves the ledger untouched"
        }
        E::Ledger(_) | E::Home(_) => HOME_HINT,
    };
    CliError::failure(&e).hint(hint)
}
