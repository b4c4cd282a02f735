//! `wechat-archiver`: a thin clap front end over the `wechat_archiver`
//! library. Data goes to standard output, progress and logs to standard
//! error.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use wechat_archiver::config::Home;

use cli::args::{Cli, Command, LedgerCommand, MapCommand};
use cli::{CliError, CommandResult, Context, ExitStatus};

fn main() -> ExitCode {
    restore_sigpipe();
    let args = Cli::parse();
    init_logging(args.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            CliError::failure(format!("cannot start the async runtime: {e}")).report();
            return ExitStatus::Failure.into();
        }
    };
    match runtime.block_on(run(args)) {
        Ok(status) => status.into(),
        Err(error) => {
            error.report();
            error.status.into()
        }
    }
}

async fn run(args: Cli) -> CommandResult {
    let home = Home::locate(args.home.as_deref())?;
    let ctx = Context { home };
    match &args.command {
        Command::Create(a) => cli::create::run(&ctx, a).await,
        Command::Sync(a) => cli::sync::run(&ctx, a).await,
        Command::Status(a) => cli::status::run(&ctx, a).await,
        Command::Receive(a) => cli::email::receive(&ctx, a).await,
        Command::Deliver(a) => cli::email::deliver(&ctx, a).await,
        Command::Import(a) => cli::email::import(&ctx, a).await,
        Command::Verify(a) => cli::verify::run(&ctx, a).await,
        Command::Login(a) => cli::login::run(&ctx, a).await,
        Command::Demo(a) => cli::demo::run(a).await,
        Command::Simulate(a) => cli::demo::simulate(a).await,
        Command::Map(MapCommand::Validate(a)) => cli::map::validate(&ctx, a).await,
        Command::Ledger(LedgerCommand::Rebuild(a)) => cli::ledger::rebuild(&ctx, a).await,
        Command::Ledger(LedgerCommand::Check(a)) => cli::ledger::check(&ctx, a).await,
    }
}

/// Dies quietly when standard output is a closed pipe (`status | head`),
/// as command-line tools do, instead of panicking on the failed write.
/// Every write the tool does is crash-safe, so this loses nothing.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,wechat_archiver=info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WECHAT_ARCHIVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    use wechat_archiver::text::{CleanWriter, colour_wanted};
    let colour = colour_wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(move || CleanWriter::new(std::io::stderr(), colour))
        .with_target(false)
        .init();
}
