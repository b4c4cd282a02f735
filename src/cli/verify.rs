//! `wechat-archiver verify`: the chain of custody, the ledger, the window
//! listed again and the copies read back; a report and an exit status
//! (0 everything checks, 3 something does not, 1 it could not check).

use std::io::IsTerminal;
use std::sync::Arc;

use chrono::{Duration, Utc};
use wechat_archiver::custody;
use wechat_archiver::lock::ConnectorLock;
use wechat_archiver::sync::setup;
use wechat_archiver::text::Clean;
use wechat_archiver::verify::{
    self, Outcome, Scope, Verifier, VerifyError, VerifyPlan, VerifyReport,
};

use super::args::VerifyArgs;
use super::error::setup_error;
use super::progress::{Bar, human_bytes};
use super::sync::{load_secrets, lock_error, parse_when};
use super::{CliError, CommandResult, Context, ExitStatus, print_json};

/// Findings printed in the human report; `--json` has them all.
const SHOWN: usize = 50;

pub async fn run(ctx: &Context, args: &VerifyArgs) -> CommandResult {
    let config = ctx.home.load()?;
    let (name, connector) = config.connector(args.connector.as_deref())?;
    let _lock = ConnectorLock::acquire(&ctx.home.lock_file(&name), &name).map_err(lock_error)?;
    let secrets = load_secrets(&name, connector)?;
    let now = Utc::now();
    let since = parse_when(args.since.as_deref(), now, "--since")?;
    let until = parse_when(args.until.as_deref(), now, "--until")?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(CliError::usage("--since must be before --until"));
    }
    let ledger = setup::ledger(&ctx.home).map_err(setup_error)?;
    let checkpoint = ledger
        .checkpoint(&name)
        .map_err(|e| CliError::failure(&e))?;
    let listing_until = until.or(checkpoint);
    let listing = listing_until
        .map(|u| (since.unwrap_or(u - Duration::hours(24)), u))
        .filter(|(s, u)| s < u);
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Bar::new()));
    let verifier = Verifier {
        client: Some(setup::client(connector, &secrets).map_err(|e| setup_error(e.into()))?),
        writer: setup::writer(&name, connector, &secrets)
            .await
            .map_err(setup_error)?,
        resolver: setup::resolver(connector).map_err(|e| setup_error(e.into()))?,
        ledger,
        fallback_mailbox: connector.fallback_mailbox.clone(),
        progress: bar
            .clone()
            .map(|b| b as Arc<dyn wechat_archiver::sync::Progress>),
    };
    let manifest_dir = custody::dir(ctx.home.root(), &name);
    let plan = VerifyPlan {
        connector: name.clone(),
        manifest_dir: manifest_dir.clone(),
        ledger_file: ctx.home.ledger_file(),
        scope: Scope { since, until },
        listing,
        sample: args.sample,
        expect_head: args.expect_head.clone(),
    };
    let result = verifier.run(&plan).await;
    if let Some(bar) = &bar {
        bar.finish();
    }
    let report = result.map_err(|e| verify_error(e, &connector.endpoint))?;
    if let Err(e) = verify::save_last(&manifest_dir, &report) {
        tracing::warn!(
            "cannot record the verify in {}: {e}",
            manifest_dir.display()
        );
    }
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report, listing.is_some());
    }
    Ok(match report.outcome {
        Outcome::Ok => ExitStatus::Ok,
        Outcome::Problems => ExitStatus::Incomplete,
        Outcome::Unchecked => ExitStatus::Failure,
    })
}

fn verify_error(e: VerifyError, endpoint: &str) -> CliError {
    let hint = match &e {
        VerifyError::Source(_) => format!(
            "check that {endpoint} is reachable from this machine and the password is current, then run verify again"
        ),
        VerifyError::Ledger(_) | VerifyError::Audit(_) => {
            "check the disk and permissions of the home directory (verify needs room for a scratch copy of the manifests)".to_owned()
        }
        VerifyError::Manifest(_) => {
            "check the permissions of the home directory's manifests/".to_owned()
        }
    };
    CliError::failure(&e).hint(hint)
}

fn print_report(report: &VerifyReport, listed: bool) {
    let chain = &report.chain;
    match &chain.head {
        Some(head) => println!(
            "{}: chain of {} manifests, head {head}",
            report.connector, chain.manifests
        ),
        None => println!("{}: no manifests yet", report.connector),
    }
    let ledger = &report.ledger;
    println!(
        "ledger: {} copies, {} items, {} runs compared with the manifests ({} copies recorded before the chain began)",
        ledger.copies, ledger.items, ledger.runs, chain.copies_before_chain
    );
    match &report.completeness {
        Some(c) => println!(
            "completeness: {} items listed: {} archived, {} incomplete, {} unmapped, {} failed, {} gone, {} missing; {} recalls ({} without their original)",
            c.listed,
            c.archived,
            c.incomplete,
            c.unmapped,
            c.failed,
            c.gone,
            c.missing,
            c.recalls,
            c.recalls_without_original
        ),
        None if !listed => {
            println!("completeness: not checked (nothing synced yet; give --since and --until)")
        }
        None => {}
    }
    let i = &report.integrity;
    println!(
        "integrity: {} copies read back ({}): {} intact, {} altered, {} gone, {} moved, {} unreadable",
        i.checked,
        human_bytes(i.bytes_read),
        i.intact,
        i.altered,
        i.gone,
        i.moved,
        i.unreadable
    );
    for f in report.findings.iter().take(SHOWN) {
        let mut about = Vec::new();
        if let Some(m) = &f.manifest {
            about.push(format!("manifest {m}"));
        }
        if let Some(item) = &f.item {
            about.push(format!("item {item}"));
        }
        if let Some(mailbox) = &f.mailbox {
            about.push(format!("in {mailbox}"));
        }
        let kind = serde_json::to_value(f.kind).unwrap_or_default();
        println!(
            "{}: {}: {}",
            kind.as_str().unwrap_or("finding"),
            Clean(&about.join(" ")),
            Clean(&f.detail)
        );
    }
    let total: u64 = report.counts.values().sum();
    if total as usize > SHOWN {
        println!(
            "... and {} more (see verify --json)",
            total as usize - SHOWN
        );
    }
    match report.outcome {
        Outcome::Ok => println!("verified: everything checks"),
        Outcome::Problems => {
            println!("NOT VERIFIED: {total} findings");
            eprintln!(
                "Hint: each finding names what does not check; `verify --json` lists them all for the auditor."
            );
        }
        Outcome::Unchecked => {
            println!("NOT VERIFIED: {total} things could not be checked");
            eprintln!("Hint: make the target readable and run verify again.");
        }
    }
}
