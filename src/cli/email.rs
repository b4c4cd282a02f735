//! `receive`, `deliver` and `import`: the commands of an e-mail connector
//! (TeleMessage's SMTP forwarding and EML exports). Each builds the same
//! engine `sync` does, without an API client, opens one session and
//! hands it messages through an [`Intake`].

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;
use wechat_archiver::config::{ConnectorConfig, SourceKind};
use wechat_archiver::custody;
use wechat_archiver::email::import::{self, ImportFigures};
use wechat_archiver::email::lmtp::{self, Listener};
use wechat_archiver::email::{Accepted, EmailOptions, Intake, MAX_MESSAGE_BYTES, Quarantine};
use wechat_archiver::lock::{ConnectorLock, LockError};
use wechat_archiver::mailbox::Target;
use wechat_archiver::secrets::{ConnectorSecrets, OsKeyring, Places, Secret, SecretKind};
use wechat_archiver::sync::{Engine, SyncPlan, SyncReport, setup};

use super::args::{DeliverArgs, ImportArgs, ReceiveArgs};
use super::error::{HOME_HINT, setup_error};
use super::progress::Bar;
use super::{CliError, CommandResult, Context, ExitStatus, print_json};

/// How long `deliver` and `import` wait for another holder of the lock.
const LOCK_PATIENCE: Duration = Duration::from_secs(60);

/// The parts of an e-mail connector's run.
struct Parts {
    name: String,
    connector: ConnectorConfig,
    engine: Engine,
    plan: SyncPlan,
    quarantine: Quarantine,
    options: EmailOptions,
}

async fn parts(ctx: &Context, name: Option<&str>) -> Result<(Parts, ConnectorLock), CliError> {
    let config = ctx.home.load()?;
    let (name, connector) = config.connector(name)?;
    if connector.source != SourceKind::Email {
        return Err(CliError::usage(format!(
            "connector '{name}' reads the TeleMessage API; receive, deliver and import feed e-mail connectors"
        ))
        .hint("create one with `wechat-archiver create NAME --source email --target TARGET`"));
    }
    let lock = ConnectorLock::acquire_waiting(&ctx.home.lock_file(&name), &name, LOCK_PATIENCE)
        .map_err(lock_error)?;
    let secrets = email_secrets(&name, connector)?;
    let ledger = setup::ledger(&ctx.home).map_err(setup_error)?;
    let resolver = setup::resolver(connector).map_err(|e| setup_error(e.into()))?;
    let mut domains: Vec<String> = connector.domains.iter().map(|d| d.to_lowercase()).collect();
    if domains.is_empty() {
        domains = resolver.mapped_domains();
    }
    let engine = Engine {
        client: None,
        writer: setup::writer(&name, connector, &secrets)
            .await
            .map_err(setup_error)?,
        resolver,
        ledger,
        progress: None,
    };
    let now = Utc::now();
    let plan = SyncPlan {
        connector: name.clone(),
        since: now,
        until: now,
        dry_run: false,
        concurrency: 1,
        fallback_mailbox: connector.fallback_mailbox.clone(),
        spool_dir: ctx.home.spool_dir(&name),
        advance_checkpoint: false,
        mapping_fingerprint: setup::mapping_fingerprint(connector),
        retry_unmapped: false,
        manifest_dir: Some(custody::dir(ctx.home.root(), &name)),
    };
    let parts = Parts {
        quarantine: Quarantine::new(ctx.home.root(), &name),
        name,
        connector: connector.clone(),
        engine,
        plan,
        options: EmailOptions {
            domains,
            mailbox_from_recipient: connector.mailbox_from_recipient,
        },
    };
    Ok((parts, lock))
}

/// An e-mail connector has no TeleMessage password: only the target's
/// secret is looked up (keyring, or line 2 of the password file, whose
/// line 1 may stay empty); a Maildir target needs no secret at all.
fn email_secrets(name: &str, connector: &ConnectorConfig) -> Result<ConnectorSecrets, CliError> {
    let target_secret = match connector.target() {
        Ok(Target::Maildir { .. }) | Err(_) => None,
        Ok(_) => {
            let keyring = OsKeyring::new();
            let (secret, _) = Places::from_environment(&keyring)
                .find(name, SecretKind::TargetSecret)
                .map_err(|e| CliError::failure(&e).hint(e.hint()))?;
            Some(secret)
        }
    };
    Ok(ConnectorSecrets {
        telemessage_password: Secret::new(String::new()),
        target_secret,
    })
}

fn lock_error(e: LockError) -> CliError {
    match e {
        LockError::Held { .. } => CliError::new(ExitStatus::Locked, &e).hint(
            "another receive, deliver or import of this connector is running; feed messages through it, or wait",
        ),
        LockError::Io { .. } => CliError::failure(&e).hint(HOME_HINT),
    }
}

pub async fn receive(ctx: &Context, args: &ReceiveArgs) -> CommandResult {
    let (parts, _lock) = parts(ctx, args.connector.as_deref()).await?;
    let listener = listen(args).await?;
    let session = parts
        .engine
        .session(&parts.plan)
        .map_err(|e| CliError::failure(&e).hint(HOME_HINT))?;
    let intake = Intake::new(&session, &parts.name, parts.quarantine, parts.options);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    eprintln!(
        "receiving for connector '{}' on {}; stop with SIGTERM or Ctrl-C",
        parts.name,
        where_(args)
    );
    lmtp::serve(&listener, &intake, stop_rx).await;
    drop(listener);
    let report = session
        .finish()
        .await
        .map_err(|e| CliError::failure(&e).hint(HOME_HINT))?;
    eprintln!(
        "stopped: {} messages, {} copies written, {} already archived, {} unmapped, {} failed",
        report.listed, report.written, report.already_archived, report.unmapped, report.failed
    );
    Ok(ExitStatus::Ok)
}

fn where_(args: &ReceiveArgs) -> String {
    match (&args.listen, &args.socket) {
        (Some(addr), _) => addr.to_string(),
        (None, Some(path)) => path.display().to_string(),
        (None, None) => String::new(),
    }
}

async fn listen(args: &ReceiveArgs) -> Result<Listener, CliError> {
    if let Some(addr) = args.listen {
        if !addr.ip().is_loopback() {
            return Err(CliError::usage(format!(
                "--listen {addr}: LMTP has no TLS here, so it listens on loopback only"
            ))
            .hint(
                "let the MTA face the network and hand mail over on 127.0.0.1 or a Unix socket",
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::failure(format!("cannot listen on {addr}: {e}")))?;
        return Ok(Listener::Tcp(listener));
    }
    let Some(path) = &args.socket else {
        return Err(CliError::usage(
            "give --listen 127.0.0.1:PORT or --socket PATH",
        ));
    };
    #[cfg(unix)]
    {
        if std::fs::symlink_metadata(path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            let _ = std::fs::remove_file(path);
        }
        let listener = tokio::net::UnixListener::bind(path)
            .map_err(|e| CliError::failure(format!("cannot listen on {}: {e}", path.display())))?;
        Ok(Listener::Unix(listener, path.clone()))
    }
    #[cfg(not(unix))]
    Err(CliError::usage("--socket needs a Unix system"))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// `deliver`: every failure but a message that can never be accepted is a
/// temporary one (75), so the MTA keeps the message.
pub async fn deliver(ctx: &Context, args: &DeliverArgs) -> CommandResult {
    let mut raw = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut raw);
    if let Err(e) = read {
        return Err(CliError::new(
            ExitStatus::TempFail,
            format!("cannot read the message: {e}"),
        ));
    }
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(CliError::new(
            ExitStatus::DataErr,
            format!("the message is larger than {MAX_MESSAGE_BYTES} bytes"),
        )
        .hint("TeleMessage's messages are far smaller; check what the MTA passes"));
    }
    let tempfail = |mut e: CliError| {
        e.status = ExitStatus::TempFail;
        e
    };
    let (parts, _lock) = parts(ctx, args.connector.as_deref())
        .await
        .map_err(tempfail)?;
    let session = parts
        .engine
        .session(&parts.plan)
        .map_err(|e| tempfail(CliError::failure(&e).hint(HOME_HINT)))?;
    let intake = Intake::new(&session, &parts.name, parts.quarantine, parts.options);
    let outcome = intake.accept(Bytes::from(raw), &args.recipients).await;
    drop(intake);
    let finished = session.finish().await;
    let outcome = outcome.map_err(|e| tempfail(CliError::failure(&e)))?;
    finished.map_err(|e| tempfail(CliError::failure(&e)))?;
    match outcome {
        Accepted::Archived { id, .. } => eprintln!("archived as {id}"),
        Accepted::Unmapped { id } => {
            eprintln!("kept as {id}; no participant maps to a mailbox yet")
        }
        Accepted::Quarantined { reason } => eprintln!("kept in the quarantine: {reason}"),
        Accepted::Failed { reason, .. } => {
            return Err(CliError::new(ExitStatus::TempFail, reason)
                .hint("the MTA keeps the message and tries again"));
        }
    }
    Ok(ExitStatus::Ok)
}

/// `import --json`: the sync figures plus the batches.
#[derive(Serialize)]
struct ImportOutput {
    #[serde(flatten)]
    report: SyncReport,
    #[serde(flatten)]
    import: ImportFigures,
}

pub async fn import(ctx: &Context, args: &ImportArgs) -> CommandResult {
    let (mut parts, _lock) = parts(ctx, args.connector.as_deref()).await?;
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Bar::new()));
    parts.engine.progress = bar
        .clone()
        .map(|b| b as Arc<dyn wechat_archiver::sync::Progress>);
    let session = parts
        .engine
        .session(&parts.plan)
        .map_err(|e| CliError::failure(&e).hint(HOME_HINT))?;
    let intake = Intake::new(&session, &parts.name, parts.quarantine, parts.options);
    let mut figures = ImportFigures::default();
    let imported = import::import_paths(&intake, &args.paths, &mut figures).await;
    drop(intake);
    let finished = session.finish().await;
    if let Some(bar) = &bar {
        bar.finish();
    }
    imported.map_err(|e| CliError::failure(&e).hint(HOME_HINT))?;
    let report = finished.map_err(|e| CliError::failure(&e).hint(HOME_HINT))?;
    let complete = figures.complete() && report.failed == 0;
    if args.json {
        print_json(&ImportOutput {
            report,
            import: figures,
        })?;
    } else {
        print_import(&parts.connector, &report, &figures);
    }
    Ok(if complete {
        ExitStatus::Ok
    } else {
        ExitStatus::Incomplete
    })
}

fn print_import(_connector: &ConnectorConfig, report: &SyncReport, figures: &ImportFigures) {
    for batch in &figures.batches {
        if batch.valid {
            println!("batch {}: valid", batch.name);
        } else {
            println!("batch {}: REFUSED, nothing imported from it", batch.name);
            for problem in &batch.problems {
                println!("  - {problem}");
            }
        }
        for line in &batch.not_understood {
            eprintln!("  manifest line not understood (ignored): {line}");
        }
    }
    println!(
        "{}: {} messages, {} copies written, {} already archived, {} unmapped, {} quarantined, {} not archived",
        report.connector,
        figures.messages,
        report.written,
        report.already_archived,
        report.unmapped,
        figures.quarantined,
        figures.not_archived.len()
    );
    for problem in &figures.not_archived {
        eprintln!("not archived: {problem}");
    }
    if !figures.complete() {
        eprintln!(
            "Hint: fix or re-fetch the refused batches and run import again; what was imported is not imported twice."
        );
    }
}
