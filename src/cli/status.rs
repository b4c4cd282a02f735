//! `wechat-archiver status`: connectors, their last runs, and what was
//! written where.

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use wechat_archiver::config::{ConnectorConfig, SourceKind, TargetAuth};
use wechat_archiver::custody;
use wechat_archiver::email::Quarantine;
use wechat_archiver::ledger::{ForeignCopies, Ledger, RunRecord, Total};
use wechat_archiver::secrets;
use wechat_archiver::sync::setup;
use wechat_archiver::text::{Clean, escape_control};
use wechat_archiver::verify::{self, LastVerify};

use super::args::StatusArgs;
use super::error::setup_error;
use super::human;
use super::progress::human_bytes;
use super::{CliError, CommandResult, Context, ExitStatus, print_json};

/// A connector is flagged when its last successful run is older than this.
const STALE_AFTER_HOURS: i64 = 26;

#[derive(Debug, Serialize)]
struct ConnectorStatus {
    name: String,
    endpoint: String,
    target: String,
    /// How the target is logged in to, when an application's token does
    /// it (IMAP with XOAUTH2), and where Graph's large items go.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    large_item_fallback: Option<String>,
    checkpoint: Option<String>,
    last_success: Option<String>,
    /// No successful run in the last 26 hours (or never).
    stale: bool,
    last_run: Option<RunRecord>,
    runs: Vec<RunRecord>,
    mailboxes: Vec<Total>,
    types: Vec<Total>,
    items: Vec<(String, u64)>,
    problems: Vec<Problem>,
    /// Copies adopted from the archive that another connector name wrote:
    /// another home, or a renamed connector, writes to the same archive.
    foreign_copies: Vec<ForeignCopies>,
    /// Where each secret comes from (never the value).
    secrets: Vec<SecretLine>,
    /// The newest manifest of the chain of custody, as `HEAD` names it.
    manifest_head: Option<custody::Head>,
    /// The last `verify`: when, what it covered, the outcome.
    last_verify: Option<LastVerify>,
    /// An e-mail connector's messages that could not be parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    quarantine: Option<QuarantineLine>,
}

/// Messages kept whole because they could not be parsed: in no mailbox.
#[derive(Debug, Serialize)]
struct QuarantineLine {
    messages: u64,
    dir: String,
}

#[derive(Debug, Serialize)]
struct SecretLine {
    secret: &'static str,
    source: Option<&'static str>,
    detail: String,
}

fn secret_lines(name: &str, connector: &ConnectorConfig) -> Vec<SecretLine> {
    let needs_target = connector
        .target()
        .map(|t| secrets::target_needs_secret(&t))
        .unwrap_or(false);
    let found = secrets::sources(name, needs_target);
    let line = |secret, r: &Result<secrets::Source, secrets::NoSecret>| match r {
        Ok(source) => SecretLine {
            secret,
            source: Some(source.kind()),
            detail: source.to_string(),
        },
        Err(_) => SecretLine {
            secret,
            source: None,
            detail: format!(
                "not found in the keyring, WECHAT_ARCHIVER_PASSWORD_FILE or WECHAT_ARCHIVER_PASSWORD (`wechat-archiver login --connector {name}` stores it)"
            ),
        },
    };
    let mut lines = vec![line("telemessage_password", &found.telemessage_password)];
    if let Some(target) = &found.target_secret {
        lines.push(line("target_secret", target));
    }
    lines
}

#[derive(Debug, Serialize)]
struct Problem {
    item_id: String,
    state: String,
    reason: Option<String>,
}

pub async fn run(ctx: &Context, args: &StatusArgs) -> CommandResult {
    let config = ctx.home.load()?;
    let names: Vec<String> = match &args.connector {
        Some(name) => vec![config.connector(Some(name))?.0],
        None => config.connectors.keys().cloned().collect(),
    };
    let ledger = setup::ledger(&ctx.home).map_err(setup_error)?;
    let mut statuses = Vec::new();
    for name in names {
        let connector = &config.connectors[&name];
        let mut status = collect(&ledger, &name, connector).map_err(|e| CliError::failure(&e))?;
        let manifests = custody::dir(ctx.home.root(), &name);
        status.manifest_head = custody::read_head(&manifests);
        status.last_verify = verify::load_last(&manifests);
        if connector.source == SourceKind::Email {
            let quarantine = Quarantine::new(ctx.home.root(), &name);
            status.quarantine = Some(QuarantineLine {
                messages: quarantine.count(),
                dir: quarantine.dir().display().to_string(),
            });
        }
        statuses.push(status);
    }
    if args.json {
        print_json(&serde_json::json!({ "connectors": statuses }))?;
    } else if statuses.is_empty() {
        println!("No connector is set up yet. Create one with `wechat-archiver create`.");
    } else {
        for status in &statuses {
            print_status(status, args.mailboxes);
        }
    }
    Ok(ExitStatus::Ok)
}

fn collect(
    ledger: &Ledger,
    name: &str,
    connector: &ConnectorConfig,
) -> Result<ConnectorStatus, wechat_archiver::ledger::LedgerError> {
    let runs = ledger.last_runs(name, 5)?;
    let last_success = ledger.last_success(name)?;
    let stale = last_success
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| {
            Utc::now() - t.with_timezone(&Utc) > chrono::Duration::hours(STALE_AFTER_HOURS)
        });
    Ok(ConnectorStatus {
        name: name.to_owned(),
        endpoint: connector.endpoint.clone(),
        target: connector.target.clone(),
        target_login: target_login(connector),
        large_item_fallback: connector
            .large_item_fallback
            .as_ref()
            .map(|url| format!("{url} (IMAP with XOAUTH2, the same application)")),
        checkpoint: ledger.checkpoint(name)?.map(|c| c.to_rfc3339()),
        last_success,
        stale,
        last_run: runs.first().cloned(),
        runs,
        mailboxes: ledger.mailbox_totals(name)?,
        types: ledger.type_totals(name)?,
        items: ledger.item_counts(name)?,
        secrets: secret_lines(name, connector),
        foreign_copies: ledger.foreign_copies(name)?,
        manifest_head: None,
        last_verify: None,
        quarantine: None,
        problems: ledger
            .problem_items(name, 20)?
            .into_iter()
            .map(|(item_id, state, reason)| Problem {
                item_id,
                state,
                reason,
            })
            .collect(),
    })
}

/// "XOAUTH2 as application ID of tenant T (cloud)" for an IMAP target
/// logged in to with the application's own token.
fn target_login(connector: &ConnectorConfig) -> Option<String> {
    (connector.auth == TargetAuth::Xoauth2).then(|| {
        format!(
            "XOAUTH2 as application {} of tenant {} ({} cloud{}), each mailbox as the user",
            connector.client_id.as_deref().unwrap_or("(no client id)"),
            connector.tenant.as_deref().unwrap_or("(no tenant)"),
            serde_json::to_value(connector.cloud)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            connector
                .login_endpoint
                .as_deref()
                .map(|l| format!(", tokens from {l}"))
                .unwrap_or_default()
        )
    })
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    t
}

fn print_status(s: &ConnectorStatus, every_mailbox: bool) {
    println!(
        "Connector {}  ({} -> {})",
        s.name,
        Clean(&s.endpoint),
        Clean(&s.target)
    );
    if let Some(login) = &s.target_login {
        println!("  target login: {}", Clean(login));
    }
    if let Some(fallback) = &s.large_item_fallback {
        println!("  large items: {}", Clean(fallback));
    }
    println!(
        "  checkpoint: {}   last successful run: {}",
        s.checkpoint
            .as_deref()
            .map_or("none yet".to_owned(), human::time_str),
        s.last_success
            .as_deref()
            .map_or("never".to_owned(), human::time_str)
    );
    for line in &s.secrets {
        println!(
            "  {}: {}",
            line.secret.replace('_', " "),
            Clean(&line.detail)
        );
    }
    if let Some(head) = &s.manifest_head {
        println!("  manifest head: {head}");
    }
    match &s.last_verify {
        Some(v) => println!(
            "  last verify: {} ({}): {:?}, {} findings, {} copies read back{}",
            v.at,
            covered(v),
            v.outcome,
            v.findings,
            v.copies_checked,
            v.listed
                .map(|n| format!(", {n} items listed again"))
                .unwrap_or_default()
        ),
        None => println!("  last verify: never"),
    }
    if s.stale {
        println!(
            "  WARNING: no successful sync in the last {STALE_AFTER_HOURS} hours; check cron and the log"
        );
    }
    print_foreign(&s.name, &s.foreign_copies);
    print_quarantine(&s.name, s.quarantine.as_ref());
    let mut runs = table(&[
        "run", "started", "outcome", "listed", "written", "already", "unmapped", "failed", "bytes",
    ]);
    for r in &s.runs {
        let outcome = if r.dry_run {
            format!("{:?} (dry run)", r.outcome).to_lowercase()
        } else {
            format!("{:?}", r.outcome).to_lowercase()
        };
        runs.add_row([
            r.id.to_string(),
            human::time_str(&r.started_at),
            outcome,
            r.figures.listed.to_string(),
            r.figures.written.to_string(),
            r.figures.already_archived.to_string(),
            r.figures.unmapped.to_string(),
            r.figures.failed.to_string(),
            human_bytes(r.figures.bytes_written),
        ]);
    }
    println!("Last runs\n{runs}");
    print_mailboxes(s, every_mailbox);
    print_totals("Item types", "type", &s.types);
    if !s.items.is_empty() {
        let counts: Vec<String> = s
            .items
            .iter()
            .map(|(k, n)| format!("{n} {}", Clean(k)))
            .collect();
        println!("Items: {}", counts.join(", "));
    }
    for p in &s.problems {
        println!(
            "  {} {}: {}",
            Clean(&p.state),
            Clean(&p.item_id),
            Clean(p.reason.as_deref().unwrap_or(""))
        );
    }
    println!();
}

fn print_quarantine(name: &str, quarantine: Option<&QuarantineLine>) {
    let Some(q) = quarantine.filter(|q| q.messages > 0) else {
        return;
    };
    println!(
        "  WARNING: {} received messages could not be parsed and are in no mailbox; \
         they are kept whole in {}",
        q.messages,
        Clean(&q.dir)
    );
    println!(
        "  Hint: each NAME.txt there says why; fix or re-export a message, feed it with \
         `wechat-archiver import --connector {name} FILE.eml`, then delete both files"
    );
}

/// Every mailbox by name with `--mailboxes`; otherwise the ones with the
/// most copies, up to [`human::TOP_ROWS`], and a line counting the others.
fn print_mailboxes(s: &ConnectorStatus, every_mailbox: bool) {
    if every_mailbox {
        print_totals("Mailboxes", "mailbox", &s.mailboxes);
        return;
    }
    let mut rows = s.mailboxes.clone();
    rows.sort_by(|a, b| b.copies.cmp(&a.copies).then_with(|| a.key.cmp(&b.key)));
    let (rows, more) = human::top(rows, human::TOP_ROWS);
    if more == 0 {
        print_totals("Mailboxes", "mailbox", &rows);
        return;
    }
    print_totals("Mailboxes with the most copies", "mailbox", &rows);
    println!(
        "... and {more} more mailboxes (`status --connector {} --mailboxes` lists every one)",
        s.name
    );
}

/// Warns of copies found in the archive that another connector name wrote.
fn print_foreign(name: &str, foreign: &[ForeignCopies]) {
    for f in foreign {
        println!(
            "  WARNING: {} copies in {} were written by connector \"{}\", not \"{}\" (last seen {}): \
             another home or connector writes to this archive; they were adopted, not written again",
            f.copies,
            Clean(&f.mailbox),
            Clean(&f.written_by),
            Clean(name),
            Clean(&f.last_seen)
        );
    }
}

/// What a verify covered, for people.
fn covered(v: &LastVerify) -> String {
    let window = match (&v.since, &v.until) {
        (None, None) => "every copy".to_owned(),
        (s, u) => format!(
            "[{} .. {})",
            s.as_deref().unwrap_or("start"),
            u.as_deref().unwrap_or("checkpoint")
        ),
    };
    match v.sample {
        Some(n) => format!("{window}, a sample of {n}"),
        None => window,
    }
}

fn print_totals(title: &str, key: &str, totals: &[Total]) {
    if totals.is_empty() {
        return;
    }
    let mut t = table(&[key, "copies", "bytes"]);
    for total in totals {
        t.add_row([
            escape_control(&total.key).into_owned(),
            total.copies.to_string(),
            human_bytes(total.bytes),
        ]);
    }
    println!("{title}\n{t}");
}
