//! The binary's commands: each turns parsed arguments into calls on the
//! library and presents the result (tables, JSON, exit status).

pub mod args;
pub mod error;
pub mod login;

use std::path::PathBuf;

use wechat_archiver::config::Home;

pub use error::{CliError, ExitStatus};

/// What every command gets: where the home is and how chatty to be.
#[derive(Debug, Clone)]
pub struct Context {
    pub home: Home,
    pub verbose: u8,
    /// The `--home` given on the command line, if any (for messages).
    pub home_flag: Option<PathBuf>,
}

/// The result of a command that ran to its end.
pub type CommandResult = Result<ExitStatus, CliError>;

/// Prints a value as the one JSON object on standard output.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failure(format!("cannot encode JSON output: {e}")))?;
    println!("{text}");
    Ok(())
}
