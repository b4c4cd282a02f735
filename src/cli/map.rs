//! `wechat-archiver map validate`: checks a mapping file before a sync
//! relies on it. Exit 0 when it is usable, 3 when not; the human report
//! is plain text that reads the same on a terminal and in a cron mail.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};

use comfy_table::{ContentArrangement, Table, presets::ASCII_FULL_CONDENSED};
use wechat_archiver::config::ConnectorConfig;
use wechat_archiver::mailbox::target::Target;
use wechat_archiver::mapping::{
    self, Code, DefaultRegion, Finding, MappingError, MappingTable, Report,
};
use wechat_archiver::secrets::{self, ConnectorSecrets, Secret};
use wechat_archiver::sync::setup;
use wechat_archiver::text::escape_control;

use super::args::MapValidateArgs;
use super::{CliError, CommandResult, Context, ExitStatus};

/// Rows shown per kind of finding in the human report (`--json` has all).
const SHOWN_PER_GROUP: usize = 50;
/// Table width when standard output is not a terminal (a cron mail).
const PLAIN_WIDTH: u16 = 110;

pub async fn validate(ctx: &Context, args: &MapValidateArgs) -> CommandResult {
    let connector = connector(ctx, args)?;
    let region = region(args, connector.as_ref().map(|(_, c)| c))?;
    let checks = args.check_telemessage || args.check_target;
    let (mut report, table) = if checks {
        mapping::validate_with_table(&args.file, region).map_err(read_error)?
    } else {
        let report = mapping::validate_file(&args.file, region).map_err(read_error)?;
        (report, MappingTable::default())
    };
    let header_read = report.dialect().mailbox_column.is_some();
    if checks && header_read {
        let (name, config) = connector.as_ref().ok_or_else(|| needs_connector(args))?;
        if args.check_telemessage {
            check_telemessage(name, config, &table, &mut report).await?;
        }
        if args.check_target {
            check_target(name, config, &table, &mut report).await?;
        }
    }
    let text = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::failure(format!("cannot encode JSON output: {e}")))?
    } else {
        render_report(&report)
    };
    emit(&text)?;
    Ok(if report.is_usable() {
        ExitStatus::Ok
    } else {
        ExitStatus::Incomplete
    })
}

/// The connector whose settings apply: the named one, else the only one;
/// none when no connector is set up (or several and none named), which is
/// fine unless a check needs one.
fn connector(
    ctx: &Context,
    args: &MapValidateArgs,
) -> Result<Option<(String, ConnectorConfig)>, CliError> {
    let config = ctx.home.load()?;
    if args.connector.is_none() && config.connectors.len() != 1 {
        return Ok(None);
    }
    let (name, c) = config.connector(args.connector.as_deref())?;
    Ok(Some((name, c.clone())))
}

fn region(
    args: &MapValidateArgs,
    connector: Option<&ConnectorConfig>,
) -> Result<Option<DefaultRegion>, CliError> {
    if let Some(code) = &args.default_region {
        return DefaultRegion::parse(code)
            .map(Some)
            .map_err(|e| CliError::usage(e).hint("for example --default-region CN"));
    }
    match connector.and_then(|c| c.default_region.as_deref()) {
        Some(code) => DefaultRegion::parse(code).map(Some).map_err(|e| {
            CliError::failure(format!("the connector's default region: {e}"))
                .hint("pass --default-region CC, or re-create the connector with a valid one")
        }),
        None => Ok(None),
    }
}

fn read_error(e: MappingError) -> CliError {
    CliError::failure(&e).hint("check the path, and that the file is readable by this user")
}

fn needs_connector(args: &MapValidateArgs) -> CliError {
    let flag = if args.check_telemessage {
        "--check-telemessage"
    } else {
        "--check-target"
    };
    CliError::usage(format!(
        "{flag} compares the file with a connector's account and target, but no connector was chosen"
    ))
    .hint("pass --connector NAME (or create a connector with `wechat-archiver create`)")
}

async fn check_telemessage(
    name: &str,
    config: &ConnectorConfig,
    table: &MappingTable,
    report: &mut Report,
) -> Result<(), CliError> {
    let secrets = secrets::load(name).map_err(|e| {
        CliError::failure(&e).hint(format!(
            "run `wechat-archiver login --connector {name}` first, or set WECHAT_ARCHIVER_PASSWORD_FILE"
        ))
    })?;
    let client = setup::client(config, &secrets)
        .map_err(|e| CliError::failure(&e).hint("fix the connector's endpoint"))?;
    let users = client.registered_users().await.map_err(|e| {
        CliError::failure(format!(
            "cannot list the registered users of {}: {e}",
            config.endpoint
        ))
        .hint("check the endpoint and the credentials (`wechat-archiver login`), or leave out --check-telemessage")
    })?;
    report.extend(mapping::check_telemessage(table, &users));
    report.add_check(format!(
        "telemessage {} ({} registered users)",
        config.endpoint,
        users.len()
    ));
    Ok(())
}

async fn check_target(
    name: &str,
    config: &ConnectorConfig,
    table: &MappingTable,
    report: &mut Report,
) -> Result<(), CliError> {
    let secrets = target_secrets(name, config)?;
    let writer = setup::writer(name, config, &secrets).await.map_err(|e| {
        CliError::failure(&e).hint("make the target reachable, or leave out --check-target")
    })?;
    let column = report.dialect().mailbox_column.clone();
    let findings = mapping::check_target(table, writer.as_ref(), column.as_deref()).await;
    writer.close().await;
    let findings = findings.map_err(|e| {
        CliError::failure(format!(
            "{} cannot say who its users are: {e}",
            writer.describe()
        ))
        .hint("make the target reachable, or leave out --check-target")
    })?;
    report.extend(findings);
    report.add_check(format!("target {}", writer.describe()));
    Ok(())
}

/// Only a target that logs in (IMAP, Graph) needs secrets; a Maildir check
/// works on a machine where none are stored.
fn target_secrets(name: &str, config: &ConnectorConfig) -> Result<ConnectorSecrets, CliError> {
    let needs = config
        .target()
        .map(|t: Target| secrets::target_needs_secret(&t))
        .unwrap_or(false);
    match secrets::load_for(name, needs) {
        Ok(s) => Ok(s),
        Err(_) if !needs => Ok(ConnectorSecrets {
            telemessage_password: Secret::new(String::new()),
            target_secret: None,
        }),
        Err(e) => Err(CliError::failure(&e).hint(format!(
            "run `wechat-archiver login --connector {name}` first"
        ))),
    }
}

/// Writes the output to standard output; a reader that went away (`| head`)
/// is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::failure(format!("cannot write the report: {e}")))
        }
        _ => Ok(()),
    }
}

fn render_report(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Mapping file: {}", escape_control(report.file()));
    let _ = writeln!(out, "{}", describe_dialect(report));
    let _ = writeln!(
        out,
        "Rows: {} read, {} valid; {} number(s) mapped",
        report.rows(),
        report.valid(),
        report.mappings()
    );
    if !report.checks().is_empty() {
        let _ = writeln!(out, "Checked against: {}", report.checks().join("; "));
    }
    render_findings(&mut out, "ERRORS", report.errors());
    render_findings(&mut out, "WARNINGS", report.warnings());
    let _ = write!(out, "\n{}", verdict(report));
    out
}

fn describe_dialect(report: &Report) -> String {
    let d = report.dialect();
    let mut text = match (&d.number_column, &d.mailbox_column) {
        (Some(n), Some(m)) => format!(
            "Read as: {}, {}-delimited\nColumns: number {n:?}, mailbox {m:?}",
            if d.encoding.as_deref() == Some("utf-8-bom") {
                "UTF-8 with BOM"
            } else {
                "UTF-8"
            },
            d.delimiter.as_deref().unwrap_or("comma")
        ),
        _ => "Read as: the header could not be used (see below)".to_owned(),
    };
    match report.default_region() {
        Some(r) => text.push_str(&format!("\nNumbers without a +country code: read in {r}")),
        None => text.push_str(
            "\nNumbers without a +country code: refused (no default region; see --default-region)",
        ),
    }
    text
}

fn render_findings(out: &mut String, title: &str, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = write!(out, "\n{title} ({})\n", findings.len());
    let mut codes: Vec<Code> = findings.iter().map(|f| f.code).collect();
    codes.sort();
    codes.dedup();
    for code in codes {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.code == code).collect();
        let _ = write!(
            out,
            "\n  {} [{}]: {}\n{}\n",
            code.title(),
            code.as_str(),
            group.len(),
            findings_table(&group)
        );
        if group.len() > SHOWN_PER_GROUP {
            let _ = writeln!(
                out,
                "  ... and {} more {} (run with --json for the full list)",
                group.len() - SHOWN_PER_GROUP,
                code.as_str()
            );
        }
    }
}

fn findings_table(group: &[&Finding]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(ASCII_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["Line", "Column", "Value", "Problem"]);
    if !std::io::stdout().is_terminal() {
        table.set_width(PLAIN_WIDTH);
    }
    for f in group.iter().take(SHOWN_PER_GROUP) {
        table.add_row([
            f.line.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            f.column.as_deref().map_or_else(|| "-".into(), printable),
            printable(&f.value),
            escape_control(&f.message).into_owned(),
        ]);
    }
    table
}

/// Keeps the table one row per finding: line breaks and control
/// characters inside a value are shown escaped.
fn printable(value: &str) -> String {
    if value.is_empty() {
        return "(empty)".into();
    }
    escape_control(value).into_owned()
}

fn verdict(report: &Report) -> String {
    let (e, w) = (report.errors().len(), report.warnings().len());
    if report.is_usable() {
        format!(
            "RESULT: usable: {} mapping(s), no errors, {w} warning(s).",
            report.mappings()
        )
    } else {
        format!(
            "RESULT: NOT USABLE: {e} error(s), {w} warning(s); sync refuses this file until the errors are fixed."
        )
    }
}
