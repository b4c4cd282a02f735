//! `wechat-archiver create`: the reference product's set-up wizard as a
//! command. Asks for what is missing on a terminal; fails in a script.

use std::io::{BufRead, IsTerminal, Write};

use wechat_archiver::config::{
    Cloud, ConnectorConfig, SourceKind, TargetAuth, validate_connector_name,
};
use wechat_archiver::mailbox::Target;
use wechat_archiver::mailbox::maildir::MaildirWriter;
use wechat_archiver::telemessage::client::check_endpoint;
use wechat_archiver::types::Mailbox;

use super::args::{AuthArg, CloudArg, CreateArgs, SourceArg};
use super::{CliError, CommandResult, Context, ExitStatus, print_json};

const TERMS: &str = "\
TeleMessage terms of service
  wechat-archiver copies your organisation's WeChat and WeCom traffic, as
  captured by TeleMessage, into employees' mailboxes. You confirm that your
  organisation has a TeleMessage WeChat Archiver subscription, that you are
  authorised to archive this traffic, and that employees have been informed
  as your jurisdiction requires.";

pub async fn run(ctx: &Context, args: &CreateArgs) -> CommandResult {
    let interactive = std::io::stdin().is_terminal();
    let name = required(args.name.clone(), "NAME", "connector name", interactive)?;
    validate_connector_name(&name)?;
    let mut config = ctx.home.load()?;
    if config.connectors.contains_key(&name) {
        return Err(
            CliError::failure(format!("a connector named '{name}' already exists"))
                .hint("choose another name, or remove it from config.toml under the home"),
        );
    }
    let email = args.source == SourceArg::Email;
    let (endpoint, username) = if email {
        check_email_options(args)?;
        (String::new(), String::new())
    } else {
        if !args.domains.is_empty() || args.mailbox_from_recipient {
            return Err(CliError::usage(
                "--domain and --mailbox-from-recipient apply to e-mail connectors only",
            )
            .hint("add --source email"));
        }
        api_source(args, interactive)?
    };
    let target_text = required(
        args.target.clone(),
        "--target",
        "target (maildir:DIR, imap://HOST:PORT, imaps://HOST:PORT, graph:TENANT)",
        interactive,
    )?;
    let target: Target = target_text.parse().map_err(|e| CliError::usage(&e))?;
    check_target_options(&target, args)?;
    let large_item_fallback = large_item_fallback(&target, args)?;
    let target_text = absolute_target(target);
    let fallback_mailbox = args
        .fallback_mailbox
        .as_deref()
        .map(Mailbox::parse)
        .transpose()
        .map_err(|e| CliError::usage(format!("--fallback-mailbox: {e}")))?;
    if let Some(path) = &args.mapping
        && !path.is_file()
    {
        return Err(CliError::usage(format!(
            "--mapping: {} is not a readable file",
            path.display()
        )));
    }
    accept_terms(args.accept_terms, interactive)?;
    let connector = ConnectorConfig {
        source: if email {
            SourceKind::Email
        } else {
            SourceKind::Api
        },
        domains: args.domains.iter().map(|d| d.to_lowercase()).collect(),
        mailbox_from_recipient: args.mailbox_from_recipient,
        endpoint,
        username,
        target: target_text,
        mapping: args
            .mapping
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or(p.clone())),
        auto_mapping: !args.no_auto_mapping,
        default_region: args.default_region.as_ref().map(|r| r.to_uppercase()),
        folder: args.folder.clone(),
        fallback_mailbox,
        target_user: args.target_user.clone(),
        client_id: args.client_id.clone(),
        cloud: cloud(args.cloud),
        graph_endpoint: args.graph_endpoint.clone(),
        login_endpoint: args.login_endpoint.clone(),
        auth: match args.auth {
            AuthArg::Plain => TargetAuth::Plain,
            AuthArg::Xoauth2 => TargetAuth::Xoauth2,
        },
        tenant: args.tenant.clone(),
        large_item_fallback,
        terms_accepted_at: chrono::Utc::now().to_rfc3339(),
    };
    config.connectors.insert(name.clone(), connector.clone());
    ctx.home.save(&config)?;
    if args.json {
        print_json(&serde_json::json!({"name": name, "connector": connector}))?;
    } else if email {
        println!(
            "Created e-mail connector '{name}' in {}.\nNext: `wechat-archiver receive --connector {name} --listen 127.0.0.1:2424` behind your MTA, or `wechat-archiver import --connector {name} DIR` for EML batches.",
            ctx.home.config_file().display()
        );
    } else {
        println!(
            "Created connector '{name}' in {}.\nNext: `wechat-archiver login --connector {name}` to store the password, then `wechat-archiver sync --connector {name}`.",
            ctx.home.config_file().display()
        );
    }
    Ok(ExitStatus::Ok)
}

/// The API source's endpoint and user name, checked.
fn api_source(args: &CreateArgs, interactive: bool) -> Result<(String, String), CliError> {
    let endpoint = required(
        args.endpoint.clone(),
        "--endpoint",
        "TeleMessage API URL",
        interactive,
    )?;
    check_endpoint(&endpoint).map_err(|e| {
        CliError::usage(&e)
            .hint("use https://HOST (plain http:// is allowed only to 127.0.0.1 or localhost)")
    })?;
    let username = required(
        args.username.clone(),
        "--username",
        "TeleMessage user name",
        interactive,
    )?;
    Ok((endpoint, username))
}

/// An e-mail connector has no endpoint or TeleMessage login; its domains
/// must be domain names.
fn check_email_options(args: &CreateArgs) -> Result<(), CliError> {
    if args.endpoint.is_some() || args.username.is_some() {
        return Err(
            CliError::usage("an e-mail connector has no --endpoint or --username")
                .hint("TeleMessage's mail reaches it through `receive`, `deliver` or `import`"),
        );
    }
    for domain in &args.domains {
        let ok = !domain.is_empty()
            && domain.len() <= 253
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(
                CliError::usage(format!("--domain {domain:?} is not a domain name"))
                    .hint("for example --domain contoso.com"),
            );
        }
    }
    Ok(())
}

fn cloud(arg: CloudArg) -> Cloud {
    match arg {
        CloudArg::Global => Cloud::Global,
        CloudArg::Usgov => Cloud::Usgov,
        CloudArg::UsgovDod => Cloud::UsgovDod,
        CloudArg::China => Cloud::China,
    }
}

/// Stores a Maildir root as an absolute path, so cron's working directory
/// does not matter.
fn absolute_target(target: Target) -> String {
    match target {
        Target::Maildir { root } => Target::Maildir {
            root: std::path::absolute(&root).unwrap_or(root),
        }
        .to_string(),
        other => other.to_string(),
    }
}

fn check_target_options(target: &Target, args: &CreateArgs) -> Result<(), CliError> {
    let xoauth2 = args.auth == AuthArg::Xoauth2;
    if xoauth2 && !matches!(target, Target::Imap { .. }) {
        return Err(CliError::usage("--auth xoauth2 applies to IMAP targets only")
            .hint("for Exchange Online: --target imaps://outlook.office365.com:993 --auth xoauth2 --tenant TENANT --client-id ID"));
    }
    if args.tenant.is_some() && !xoauth2 {
        return Err(CliError::usage("--tenant goes with --auth xoauth2")
            .hint("a Graph target names its tenant itself: --target graph:TENANT"));
    }
    if args.large_item_fallback.is_some() && !matches!(target, Target::Graph { .. }) {
        return Err(CliError::usage(
            "--large-item-fallback applies to Graph targets only",
        ));
    }
    match target {
        Target::Maildir { root } => {
            MaildirWriter::new(root, &args.folder).map_err(|e| CliError::usage(&e))?;
        }
        Target::Imap { tls, host, .. } => {
            if xoauth2 {
                check_xoauth2(args)?;
            } else if args.target_user.is_none() {
                return Err(
                    CliError::usage("an IMAP target needs --target-user ADMIN").hint(
                        "or, for Exchange Online, --auth xoauth2 --tenant TENANT --client-id ID",
                    ),
                );
            }
            if !tls && !wechat_archiver::mailbox::target::is_loopback_host(host) {
                return Err(CliError::usage(format!(
                    "imap:// to {host} would send passwords in clear text"
                ))
                .hint("use imaps://HOST:993; plain imap:// is allowed only to loopback"));
            }
        }
        Target::Graph { .. } => {
            if args.client_id.is_none() {
                return Err(CliError::usage("a Graph target needs --client-id ID"));
            }
        }
    }
    Ok(())
}

/// XOAUTH2 logs in as each mailbox with the application's token: it needs
/// the tenant and the application, and has no admin user.
fn check_xoauth2(args: &CreateArgs) -> Result<(), CliError> {
    if args.target_user.is_some() {
        return Err(CliError::usage(
            "--target-user is not used with --auth xoauth2 (the application logs in as each mailbox)",
        ));
    }
    let Some(tenant) = args.tenant.as_deref() else {
        return Err(
            CliError::usage("--auth xoauth2 needs --tenant TENANT").hint(
                "the directory (tenant) id, or a verified domain such as contoso.onmicrosoft.com",
            ),
        );
    };
    let ok = !tenant.is_empty()
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if !ok {
        return Err(CliError::usage(format!(
            "--tenant {tenant:?} is not a tenant id: use its GUID or a domain name"
        )));
    }
    if args.client_id.is_none() {
        return Err(CliError::usage("--auth xoauth2 needs --client-id ID")
            .hint("the application (client) id of the app registration"));
    }
    Ok(())
}

/// `--large-item-fallback`: `imap` is the cloud's Exchange Online; an
/// explicit IMAP URL (a proxy, a test server) is kept as given.
/// (Plain `imap://` only to loopback: the token must not cross a network
/// in clear text.)
fn large_item_fallback(target: &Target, args: &CreateArgs) -> Result<Option<String>, CliError> {
    let Some(value) = args.large_item_fallback.as_deref() else {
        return Ok(None);
    };
    debug_assert!(matches!(target, Target::Graph { .. }));
    if value == "imap" {
        return Ok(Some(wechat_archiver::mailbox::graph::exchange_imap_target(
            cloud(args.cloud),
        )));
    }
    let bad = || {
        CliError::usage(format!("--large-item-fallback {value:?} is not understood"))
            .hint("use `imap` (Exchange Online over IMAP with XOAUTH2) or imaps://HOST:PORT")
    };
    match value.parse::<Target>() {
        Ok(Target::Imap { tls, host, port })
            if tls || wechat_archiver::mailbox::target::is_loopback_host(&host) =>
        {
            Ok(Some(Target::Imap { tls, host, port }.to_string()))
        }
        _ => Err(bad()),
    }
}

fn accept_terms(accepted: bool, interactive: bool) -> Result<(), CliError> {
    if accepted {
        return Ok(());
    }
    if !interactive {
        return Err(CliError::usage("the TeleMessage terms of service were not accepted")
            .hint("read them (`wechat-archiver create` on a terminal shows them) and pass --accept-terms"));
    }
    eprintln!("{TERMS}");
    let answer = ask("Accept the terms? [y/N]")?;
    if matches!(answer.to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::failure(
            "the terms were not accepted; nothing was created",
        ))
    }
}

/// A value from the flag, else asked for on a terminal, else an error
/// naming the flag.
fn required(
    value: Option<String>,
    flag: &str,
    label: &str,
    interactive: bool,
) -> Result<String, CliError> {
    if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
        return Ok(v);
    }
    if !interactive {
        return Err(CliError::usage(format!("{flag} is missing ({label})"))
            .hint("see `wechat-archiver create --help`"));
    }
    let answer = ask(&format!("{label}:"))?;
    if answer.is_empty() {
        return Err(CliError::usage(format!("{flag} is missing ({label})")));
    }
    Ok(answer)
}

fn ask(prompt: &str) -> Result<String, CliError> {
    eprint!("{prompt} ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::failure(format!("cannot read the answer: {e}")))?;
    Ok(line.trim().to_owned())
}
