//! The binary's commands: each turns parsed arguments into calls on the
//! library and presents the result (tables, JSON, exit status).

pub mod args;
#[cfg(test)]
mod assets;
pub mod create;
pub mod demo;
pub mod email;
pub mod error;
pub mod human;
pub mod ledger;
pub mod login;
#[cfg(test)]
mod manual;
pub mod map;
pub mod progress;
pub mod status;
pub mod sync;
pub mod verify;

use wechat_archiver::config::Home;

pub use error::{CliError, ExitStatus};

/// What every command gets: where the home is.
#[derive(Debug, Clone)]
pub struct Context {
    pub home: Home,
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
