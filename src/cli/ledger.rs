//! `wechat-archiver ledger rebuild` and `ledger check`: the ledger's copies
//! rebuilt from the target, and the two compared. The work is the
//! library's (`Engine::rebuild`, `sync::check`); this prints it.

use std::io::IsTerminal;
use std::sync::Arc;

use chrono::Utc;
use wechat_archiver::config::SourceKind;
use wechat_archiver::custody;
use wechat_archiver::lock::ConnectorLock;
use wechat_archiver::sync::check::{self, CheckReport, OneSided};
use wechat_archiver::sync::{Engine, Progress, SyncPlan, SyncReport, setup, window};
use wechat_archiver::text::Clean;

use super::args::{LedgerCheckArgs, LedgerRebuildArgs};
use super::error::setup_error;
use super::progress::Bar;
use super::sync::{load_secrets, lock_error, parse_when, sync_error};
use super::{CliError, CommandResult, Context, ExitStatus, print_json};

/// Copies listed per side in the human report; `--json` has them all.
const SHOWN: usize = 20;

pub async fn rebuild(ctx: &Context, args: &LedgerRebuildArgs) -> CommandResult {
    let config = ctx.home.load()?;
    let (name, connector) = config.connector(args.connector.as_deref())?;
    if connector.source == SourceKind::Email {
        return Err(CliError::usage(format!(
            "connector '{name}' reads TeleMessage's e-mail delivery; there is no listing to rebuild from"
        ))
        .hint("its messages are recorded as `receive`, `deliver` or `import` archive them"));
    }
    let _lock = ConnectorLock::acquire(&ctx.home.lock_file(&name), &name).map_err(lock_error)?;
    let secrets = load_secrets(&name, connector)?;
    let now = Utc::now();
    let since = parse_when(args.since.as_deref(), now, "--since")?;
    let (since, until) =
        window::choose(since, Some(now), None, now).map_err(|e| CliError::usage(&e))?;
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Bar::new()));
    let engine = Engine {
        client: Some(setup::client(connector, &secrets).map_err(|e| setup_error(e.into()))?),
        writer: setup::writer(&name, connector, &secrets)
            .await
            .map_err(setup_error)?,
        resolver: setup::resolver(connector).map_err(|e| setup_error(e.into()))?,
        ledger: setup::ledger(&ctx.home).map_err(setup_error)?,
        progress: bar.clone().map(|b| b as Arc<dyn Progress>),
    };
    let plan = SyncPlan {
        connector: name.clone(),
        since,
        until,
        dry_run: false,
        concurrency: engine.writer.items_in_flight(),
        fallback_mailbox: connector.fallback_mailbox.clone(),
        spool_dir: ctx.home.spool_dir(&name),
        advance_checkpoint: false,
        mapping_fingerprint: setup::mapping_fingerprint(connector),
        retry_unmapped: true,
        manifest_dir: Some(custody::dir(ctx.home.root(), &name)),
    };
    let result = engine.rebuild(&plan).await;
    if let Some(bar) = &bar {
        bar.finish();
    }
    let report = result.map_err(|e| sync_error(e, &connector.endpoint))?;
    if args.json {
        print_json(&report)?;
    } else {
        print_rebuild(&report);
    }
    Ok(if report.failed > 0 {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Ok
    })
}

fn print_rebuild(report: &SyncReport) {
    let recorded = report.already_archived - report.adopted;
    println!(
        "{}: {} items listed [{} .. {}): {} copies found on the target and recorded, {} already in the ledger, {} not on the target, {} unmapped, {} failed, in {:.1} s",
        report.connector,
        report.listed,
        super::human::time_str(&report.since),
        super::human::time_str(&report.until),
        report.adopted,
        recorded,
        report.would_write.len(),
        report.unmapped,
        report.failed,
        report.duration_ms as f64 / 1000.0
    );
    if let Some(head) = &report.manifest_head {
        println!("manifest head: {head}");
    }
    for missing in report.would_write.iter().take(SHOWN) {
        println!(
            "not on the target: item {} for {}",
            missing.item_id,
            Clean(&missing.mailbox)
        );
    }
    if report.would_write.len() > SHOWN {
        println!(
            "... and {} more (`ledger rebuild --json` lists them all)",
            report.would_write.len() - SHOWN
        );
    }
    for f in report.failures.iter().take(SHOWN) {
        let into = f
            .mailbox
            .as_deref()
            .map(|m| format!(" in {}", Clean(m)))
            .unwrap_or_default();
        eprintln!("failed: item {}{into}: {}", f.item_id, Clean(&f.reason));
    }
    if !report.would_write.is_empty() {
        eprintln!(
            "Hint: copies not on the target are written by the next sync (their items are kept as failed, so it retries them)."
        );
    }
    if report.failed > 0 {
        eprintln!(
            "Hint: make the target reachable and run `ledger rebuild` again; nothing was written to the target."
        );
    }
}

pub async fn check(ctx: &Context, args: &LedgerCheckArgs) -> CommandResult {
    let config = ctx.home.load()?;
    let (name, connector) = config.connector(args.connector.as_deref())?;
    let _lock = ConnectorLock::acquire(&ctx.home.lock_file(&name), &name).map_err(lock_error)?;
    let secrets = load_secrets(&name, connector)?;
    let ledger = setup::ledger(&ctx.home).map_err(setup_error)?;
    let writer = setup::writer(&name, connector, &secrets)
        .await
        .map_err(setup_error)?;
    for (key, id) in ledger
        .folder_ids(&name)
        .map_err(|e| CliError::failure(&e))?
    {
        if let Ok(mailbox) = wechat_archiver::types::Mailbox::parse(&key) {
            writer.preload_folder_id(&mailbox, id);
        }
    }
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Bar::new()));
    let progress = bar.clone().map(|b| b as Arc<dyn Progress>);
    let result = check::check(&ledger, writer.as_ref(), &name, progress).await;
    writer.close().await;
    if let Some(bar) = &bar {
        bar.finish();
    }
    let report = result.map_err(|e| {
        CliError::failure(&e).hint("check the disk and permissions of the home directory")
    })?;
    if args.json {
        print_json(&report)?;
    } else {
        print_check(&report);
    }
    Ok(if !report.agrees() {
        ExitStatus::Incomplete
    } else if !report.unchecked.is_empty() {
        ExitStatus::Failure
    } else {
        ExitStatus::Ok
    })
}

fn print_check(report: &CheckReport) {
    println!(
        "{}: {} mailboxes: {} copies on the target, {} in the ledger; {} only on the target, {} only in the ledger, {} mailboxes not checked",
        report.connector,
        report.mailboxes,
        report.target_copies,
        report.ledger_copies,
        report.target_only.len(),
        report.ledger_only.len(),
        report.unchecked.len()
    );
    print_side("only on the target", &report.target_only);
    print_side("only in the ledger", &report.ledger_only);
    for u in &report.unchecked {
        eprintln!("not checked: {}: {}", Clean(&u.mailbox), Clean(&u.reason));
    }
    if !report.target_only.is_empty() {
        eprintln!(
            "Hint: `wechat-archiver ledger rebuild --since WHEN` records the copies only on the target (a sync adopts those of items in its window)."
        );
    }
    if !report.ledger_only.is_empty() {
        eprintln!(
            "Hint: copies only in the ledger were removed or moved on the target; `verify` names each, and restoring them from a backup of the archive brings them back."
        );
    }
    if report.agrees() && report.unchecked.is_empty() {
        println!("the ledger and the target agree");
    }
}

fn print_side(title: &str, copies: &[OneSided]) {
    for c in copies.iter().take(SHOWN) {
        let item = c.item.as_deref().unwrap_or("?");
        let by = c
            .written_by
            .as_deref()
            .map(|w| format!(" (written by {})", Clean(w)))
            .unwrap_or_default();
        println!(
            "{title}: {}: item {} at {}{by}",
            Clean(&c.mailbox),
            Clean(item),
            Clean(&c.location)
        );
    }
    if copies.len() > SHOWN {
        println!(
            "... and {} more {title} (`ledger check --json` lists them all)",
            copies.len() - SHOWN
        );
    }
}
