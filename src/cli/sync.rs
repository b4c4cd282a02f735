//! `wechat-archiver sync`.

use std::io::IsTerminal;
use std::sync::Arc;

use chrono::Utc;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use wechat_archiver::config::ConnectorConfig;
use wechat_archiver::custody;
use wechat_archiver::lock::{ConnectorLock, LockError};
use wechat_archiver::mailbox::Target;
use wechat_archiver::runlog::RunLog;
use wechat_archiver::secrets::{self, ConnectorSecrets};
use wechat_archiver::sync::window::{self, WindowError};
use wechat_archiver::sync::{Engine, SyncError, SyncPlan, SyncReport, setup};
use wechat_archiver::text::{Clean, escape_control};

use super::args::SyncArgs;
use super::error::{HOME_HINT, setup_error};
use super::human;
use super::progress::{Bar, human_bytes};
use super::{CliError, CommandResult, Context, ExitStatus, print_json};

pub async fn run(ctx: &Context, args: &SyncArgs) -> CommandResult {
    let config = ctx.home.load()?;
    let (name, connector) = config.connector(args.connector.as_deref())?;
    if connector.source == wechat_archiver::config::SourceKind::Email {
        return Err(CliError::usage(format!(
            "connector '{name}' reads TeleMessage's e-mail delivery; it has nothing to sync"
        ))
        .hint("its messages arrive through `receive` (or `deliver`) and `import`"));
    }
    let _lock = ConnectorLock::acquire(&ctx.home.lock_file(&name), &name).map_err(lock_error)?;
    let secrets = load_secrets(&name, connector)?;
    let log = RunLog::new(&ctx.home.log_dir());
    let report = match sync_connector(ctx, &name, connector, &secrets, args).await {
        Ok(report) => report,
        Err(e) => {
            let _ = log.record_error(&name, &e.message);
            return Err(e);
        }
    };
    if let Err(e) = log.record_run(&report) {
        tracing::warn!("cannot write the log {}: {e}", log.path().display());
    }
    if args.json {
        print_json(&report)?;
    } else {
        print_summary(&report);
    }
    Ok(if report.failed > 0 {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Ok
    })
}

/// The connector's secrets (keyring, password file, environment), with
/// the target's secret where the target needs one.
pub fn load_secrets(name: &str, connector: &ConnectorConfig) -> Result<ConnectorSecrets, CliError> {
    let needs_target_secret = connector
        .target()
        .map(|t| secrets::target_needs_secret(&t))
        .unwrap_or(false);
    secrets::load_for(name, needs_target_secret).map_err(|e| CliError::failure(&e).hint(e.hint()))
}

/// Builds the engine for a connector and runs one sync with the flags.
pub async fn sync_connector(
    ctx: &Context,
    name: &str,
    connector: &ConnectorConfig,
    secrets: &ConnectorSecrets,
    args: &SyncArgs,
) -> Result<SyncReport, CliError> {
    let now = Utc::now();
    let since = parse_when(args.since.as_deref(), now, "--since")?;
    let until = parse_when(args.until.as_deref(), now, "--until")?;
    let ledger = setup::ledger(&ctx.home).map_err(setup_error)?;
    let checkpoint = ledger.checkpoint(name).map_err(|e| CliError::failure(&e))?;
    let (since, until) =
        window::choose(since, until, checkpoint, now).map_err(|e| CliError::usage(&e))?;
    // Before the mapping file is loaded: an edit in between makes the next
    // run retry the unmapped items again, rather than never.
    let mapping_fingerprint = setup::mapping_fingerprint(connector);
    if matches!(connector.target(), Ok(Target::Graph { .. })) {
        return_freed_memory();
    }
    let engine = Engine {
        client: Some(setup::client(connector, secrets).map_err(|e| setup_error(e.into()))?),
        writer: setup::writer(name, connector, secrets)
            .await
            .map_err(setup_error)?,
        resolver: setup::resolver(connector).map_err(|e| setup_error(e.into()))?,
        ledger,
        progress: None,
    };
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Bar::new()));
    let engine = Engine {
        progress: bar
            .clone()
            .map(|b| b as Arc<dyn wechat_archiver::sync::Progress>),
        ..engine
    };
    let plan = SyncPlan {
        connector: name.to_owned(),
        since,
        until,
        dry_run: args.dry_run,
        concurrency: engine.writer.items_in_flight(),
        fallback_mailbox: connector.fallback_mailbox.clone(),
        spool_dir: ctx.home.spool_dir(name),
        advance_checkpoint: checkpoint.is_none_or(|c| since <= c),
        mapping_fingerprint,
        retry_unmapped: args.retry_unmapped,
        manifest_dir: Some(custody::dir(ctx.home.root(), name)),
    };
    let result = engine.run(&plan).await;
    if let Some(bar) = &bar {
        bar.finish();
    }
    result.map_err(|e| sync_error(e, &connector.endpoint))
}

pub(super) fn parse_when(
    value: Option<&str>,
    now: chrono::DateTime<Utc>,
    flag: &str,
) -> Result<Option<chrono::DateTime<Utc>>, CliError> {
    value
        .map(|v| window::parse_when(v, now))
        .transpose()
        .map_err(|e: WindowError| {
            CliError::usage(format!("{flag}: {e}")).hint(format!("for example {flag} 24h"))
        })
}

pub(super) fn lock_error(e: LockError) -> CliError {
    match e {
        LockError::Held { .. } => CliError::new(ExitStatus::Locked, &e)
            .hint("wait for it to finish; a lock left by a killed run is released by the system"),
        LockError::Io { .. } => CliError::failure(&e).hint(HOME_HINT),
    }
}

pub(super) fn sync_error(e: SyncError, endpoint: &str) -> CliError {
    use wechat_archiver::telemessage::ClientError as C;
    let hint = match &e {
        SyncError::Source(C::InvalidCredentials) => {
            "run `wechat-archiver login` again with the current TeleMessage password".to_owned()
        }
        SyncError::Source(C::Forbidden { .. }) => {
            "ask TeleMessage to enable the account and its WeChat Archiver product".to_owned()
        }
        SyncError::Source(C::BadRequest { .. }) => {
            "this is a bug in wechat-archiver or a change in the TeleMessage API; report it with the log under the home".to_owned()
        }
        SyncError::Source(_) => format!(
            "check that {endpoint} is reachable from this machine; nothing is lost, the next run picks up where this one stopped"
        ),
        SyncError::Ledger(_) => "check the disk and permissions of the home directory".to_owned(),
        SyncError::Target { .. } => "make the target reachable and run sync again".to_owned(),
        SyncError::NoSource(..) => {
            "feed an e-mail connector with `receive`, `deliver` or `import`".to_owned()
        }
        SyncError::Manifest(_) => {
            "check the disk and permissions of the home directory's manifests/".to_owned()
        }
    };
    CliError::failure(&e).hint(hint)
}

pub fn print_summary(report: &SyncReport) {
    print_mailboxes(report);
    let verb = if report.dry_run {
        "would write"
    } else {
        "written"
    };
    println!(
        "{}: {} listed, {} copies {verb} ({}), {} already archived, {} unmapped, {} failed, in {:.1} s [{} .. {})",
        report.connector,
        report.listed,
        if report.dry_run {
            report.would_write.len() as u64
        } else {
            report.written
        },
        human_bytes(report.bytes_written),
        report.already_archived,
        report.unmapped,
        report.failed,
        report.duration_ms as f64 / 1000.0,
        human::time_str(&report.since),
        human::time_str(&report.until)
    );
    if let Some(head) = &report.manifest_head {
        println!("manifest head: {head}");
    }
    let (planned, more) = human::top(report.would_write.iter().collect(), human::TOP_ROWS);
    for planned in planned {
        println!(
            "would write {} ({}, {}) into {}",
            planned.item_id,
            Clean(&planned.item_type),
            human_bytes(planned.size),
            Clean(&planned.mailbox)
        );
    }
    if more > 0 {
        println!("... and {more} more copies (`sync --dry-run --json` lists them all)");
    }
    for f in report.failures.iter().take(20) {
        let into = f
            .mailbox
            .as_deref()
            .map(|m| format!(" into {}", Clean(m)))
            .unwrap_or_default();
        eprintln!("failed: item {}{into}: {}", f.item_id, Clean(&f.reason));
    }
    if report.failures.len() > 20 {
        eprintln!(
            "... and {} more failures (see `wechat-archiver status`)",
            report.failures.len() - 20
        );
    }
    if report.failed > 0 {
        eprintln!("Hint: the failed items are kept in the ledger; the next sync retries them.");
    }
}

/// The mailboxes with failures (most first), then those with the most
/// copies written, up to [`human::TOP_ROWS`]; a line counts the others.
fn print_mailboxes(report: &SyncReport) {
    let mut rows: Vec<_> = report.mailboxes.iter().collect();
    rows.sort_by(|(a_name, a), (b_name, b)| {
        (b.failed, b.written, b.already_archived, a_name.as_str()).cmp(&(
            a.failed,
            a.written,
            a.already_archived,
            b_name.as_str(),
        ))
    });
    let (rows, more) = human::top(rows, human::TOP_ROWS);
    if rows.is_empty() {
        return;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["mailbox", "written", "already archived", "failed", "bytes"]);
    for (mailbox, m) in rows {
        table.add_row([
            escape_control(mailbox).into_owned(),
            m.written.to_string(),
            m.already_archived.to_string(),
            m.failed.to_string(),
            human_bytes(m.bytes_written),
        ]);
    }
    if more > 0 {
        println!("Mailboxes with failures, then the most copies written:");
    }
    println!("{table}");
    if more > 0 {
        println!(
            "... and {more} more mailboxes (`sync --json` has this run's figures for each, `status --connector {} --mailboxes` their totals)",
            report.connector
        );
    }
}

/// Keeps glibc from holding on to freed memory in a Graph sync, which
/// frees many 3.2 MB upload chunks and spooled items: glibc's mmap
/// threshold grows to the largest block freed, after which such blocks
/// come from the heap and stay there once freed. A fixed threshold of
/// 128 KiB and two arenas: peak RSS of `bench/graph` 74 -> 61 MiB for the
/// same peak heap. Left alone for the other targets, which were measured
/// without it.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; glibc takes its own
    // locks, so it may be called while other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
