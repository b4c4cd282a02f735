//! The command-line surface of `cli.md`, as clap definitions. Nothing here
//! does any work; `completions/` and `man/` are generated from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Archive WeChat and WeCom traffic from TeleMessage into employees'
/// mailboxes (Maildir, IMAP, Microsoft 365).
#[derive(Debug, Parser)]
#[command(name = "wechat-archiver", version, about, max_term_width = 100)]
pub struct Cli {
    /// Directory for configuration, the ledger and logs
    /// [default: $WECHAT_ARCHIVER_HOME, else the platform's data directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// More detail on standard error (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up a connector: a TeleMessage account, a target, mapping rules
    Create(Box<CreateArgs>),
    /// Store the connector's passwords in the OS keyring
    Login(LoginArgs),
    /// Work with user-mapping CSV files
    #[command(subcommand)]
    Map(MapCommand),
    /// Copy newly archived items into the mapped mailboxes
    Sync(SyncArgs),
    /// Show connectors, their last runs and what was written where
    Status(StatusArgs),
    /// Serve LMTP for an e-mail connector (TeleMessage's SMTP forwarding
    /// through a local MTA)
    Receive(ReceiveArgs),
    /// Archive one message from standard input (an MTA's pipe transport)
    Deliver(DeliverArgs),
    /// Archive TeleMessage EML exports: ZIP batches, .eml files, directories
    Import(ImportArgs),
    /// Prove the archive complete and unaltered: exit 0 when everything
    /// checks, 3 when something does not, 1 when it could not check
    Verify(VerifyArgs),
    /// Rebuild the ledger from the target, or check the two agree
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Run the bundled simulator and sync it into a local Maildir
    Demo(DemoArgs),
    /// Serve the bundled TeleMessage simulator (for tests and benchmarks)
    #[command(hide = true)]
    Simulate(SimulateArgs),
}

/// Microsoft national clouds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudArg {
    /// Worldwide Microsoft 365 (also GCC)
    Global,
    /// GCC High (graph.microsoft.us)
    Usgov,
    /// DoD (dod-graph.microsoft.us)
    UsgovDod,
    /// Microsoft 365 operated by 21Vianet
    China,
}

/// How an IMAP target logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// SASL PLAIN as an admin acting for each mailbox (--target-user)
    Plain,
    /// SASL XOAUTH2 with an Entra ID application's own token, each mailbox
    /// as the user (Exchange Online; --tenant, --client-id)
    Xoauth2,
}

/// Where a connector's items come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// The TeleMessage archive API (`sync`)
    Api,
    /// TeleMessage's SMTP forwarding and EML exports (`receive`, `deliver`, `import`)
    Email,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the connector (letters, digits, '.', '_', '-')
    pub name: Option<String>,
    /// Where items come from
    #[arg(long, value_enum, default_value = "api")]
    pub source: SourceArg,
    /// E-mail source: an organisation mail domain (repeatable); automatic
    /// mapping by address applies only to them [default: the mapping
    /// file's domains]
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// E-mail source: the envelope recipient (without its +tag) names the
    /// employee's mailbox
    #[arg(long)]
    pub mailbox_from_recipient: bool,
    /// TeleMessage API base URL (https://, or http:// to loopback only)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// TeleMessage administrator user name
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// maildir:DIR, imap://HOST:PORT, imaps://HOST:PORT or graph:TENANT_ID
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
    /// Custom user-mapping CSV (mobile number to mailbox)
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Do not map participants by the e-mail address TeleMessage holds
    #[arg(long)]
    pub no_auto_mapping: bool,
    /// Region for numbers written without a country code (ISO 3166, e.g. CN)
    #[arg(long, value_name = "CC")]
    pub default_region: Option<String>,
    /// Archive folder in each mailbox
    #[arg(long, value_name = "NAME", default_value = "WeChat Archiver")]
    pub folder: String,
    /// Mailbox that receives items with no mapped participant
    #[arg(long, value_name = "ADDR")]
    pub fallback_mailbox: Option<String>,
    /// Admin user for IMAP targets (writes into every user's mailbox)
    #[arg(long, value_name = "ADMIN")]
    pub target_user: Option<String>,
    /// How an IMAP target logs in
    #[arg(long, value_enum, default_value = "plain")]
    pub auth: AuthArg,
    /// Directory (tenant) id or verified domain, for --auth xoauth2
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Application (client) id for Graph targets and --auth xoauth2
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// National cloud for Graph targets and --auth xoauth2
    #[arg(long, value_enum, default_value = "global")]
    pub cloud: CloudArg,
    /// Graph service root override (a proxy, or a test server on loopback)
    #[arg(long, value_name = "URL")]
    pub graph_endpoint: Option<String>,
    /// Login authority root override (Graph targets and --auth xoauth2)
    #[arg(long, value_name = "URL")]
    pub login_endpoint: Option<String>,
    /// Graph target: items Graph cannot take whole go over IMAP with
    /// XOAUTH2, same application: `imap` (the cloud's Exchange Online) or
    /// an imaps:// URL
    #[arg(long, value_name = "imap|URL")]
    pub large_item_fallback: Option<String>,
    /// Accept the TeleMessage terms of service without asking
    #[arg(long)]
    pub accept_terms: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Connector to log in (may be left out when there is only one)
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Read the secrets from standard input, one per line
    #[arg(long)]
    pub password_stdin: bool,
    /// Say where each secret comes from, without showing it
    #[arg(long, conflicts_with_all = ["password_stdin", "forget"])]
    pub status: bool,
    /// Remove the connector's secrets from the keyring
    #[arg(long, conflicts_with = "password_stdin")]
    pub forget: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Check a mapping CSV before using it; exit 3 when it is not usable
    Validate(MapValidateArgs),
}

#[derive(Debug, Args)]
pub struct MapValidateArgs {
    /// The CSV file to check
    pub file: PathBuf,
    /// Connector whose settings (region, target, account) apply
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Region for numbers written without a country code (overrides the connector's)
    #[arg(long, value_name = "CC")]
    pub default_region: Option<String>,
    /// Warn about numbers TeleMessage does not know, and users with no mapping
    #[arg(long)]
    pub check_telemessage: bool,
    /// Check that every mailbox is a valid user of the connector's target
    #[arg(long)]
    pub check_target: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Connector to run (may be left out when there is only one)
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Start of the window: a duration back from now (24h, 90m, 7d) or an
    /// RFC 3339 time [default: the connector's checkpoint, or 24h]
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// End of the window, same forms as --since [default: now]
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// List what would be written, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Retry every unmapped item now, as after adding users to the target
    /// [default: those of the last 7 days; older ones when the mapping
    /// changed, or at least every 7 days]
    #[arg(long)]
    pub retry_unmapped: bool,
    /// Print the run's figures as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// E-mail connector to feed (may be left out when there is only one)
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Loopback address and port to listen on, e.g. 127.0.0.1:2424
    #[arg(
        long,
        value_name = "ADDR",
        conflicts_with = "socket",
        required_unless_present = "socket"
    )]
    pub listen: Option<std::net::SocketAddr>,
    /// Unix socket to listen on instead
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeliverArgs {
    /// E-mail connector to feed (may be left out when there is only one)
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Envelope recipient (repeatable), as the MTA passes it
    #[arg(long = "recipient", value_name = "ADDR")]
    pub recipients: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// E-mail connector to feed (may be left out when there is only one)
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Print the figures as JSON
    #[arg(long)]
    pub json: bool,
    /// ZIP batches, .eml files and directories of them
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Connector to verify (may be left out when there is only one)
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Start of the window of items to check, same forms as sync's
    /// [default: every copy; TeleMessage is listed for the 24 hours before
    /// the checkpoint]
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// End of the window [default: the connector's checkpoint]
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Read back this many copies picked at random instead of all
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// A manifest head hash kept from an earlier sync: it must still be in
    /// the chain
    #[arg(long, value_name = "SHA256")]
    pub expect_head: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Record the copies the target already holds for a window of items
    /// (after losing the home or restoring an older one); writes nothing
    /// to the target
    Rebuild(LedgerRebuildArgs),
    /// Compare the copies the target holds with the ledger's: exit 0 when
    /// they agree, 3 when they differ, 1 when a folder could not be listed
    Check(LedgerCheckArgs),
}

#[derive(Debug, Args)]
pub struct LedgerRebuildArgs {
    /// Connector to rebuild (may be left out when there is only one)
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Start of the window of items to look for, same forms as sync's
    /// (90d, 2026-01-01T00:00:00Z) [default: 24h]; it ends now
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LedgerCheckArgs {
    /// Connector to check (may be left out when there is only one)
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// Print the findings as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this connector
    #[arg(long, value_name = "NAME")]
    pub connector: Option<String>,
    /// List every mailbox (by default the 20 with the most copies; --json
    /// always lists every one)
    #[arg(long)]
    pub mailboxes: bool,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the demo's home and archive
    #[arg(long, value_name = "DIR", default_value = "wechat-archiver-demo")]
    pub dir: PathBuf,
    /// How many items the simulator generates
    #[arg(long, default_value_t = 300)]
    pub items: usize,
    /// Seed for the generated data
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback)
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Overrides: key=value,... (seed, items, large, large-size, faults=...)
    #[arg(long, value_name = "SPEC", default_value = "")]
    pub set: String,
    /// End the generated window at the current hour instead of a fixed date
    #[arg(long)]
    pub ending_now: bool,
}
