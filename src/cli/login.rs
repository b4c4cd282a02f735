//! `login`: checks the TeleMessage password against the API, then stores it
//! (and the target's secret) in the OS keyring. `--status` says where each
//! secret comes from and whether TeleMessage accepts the password;
//! `--forget` removes the keyring entries.

use std::io::{IsTerminal, Read};

use serde::Serialize;
use wechat_archiver::config::{ConfigError, ConnectorConfig, TargetAuth, validate_connector_name};
use wechat_archiver::mailbox::Target;
use wechat_archiver::secrets::verify::{self, Accepted, CredentialCheckError};
use wechat_archiver::secrets::{
    KeyStore, KeyringError, NoSecret, OsKeyring, PASSWORD_FILE_ENV, Places, SERVICE, Secret,
    SecretKind, Source, target_needs_secret,
};
use wechat_archiver::text::{Clean, escape_lines};
use zeroize::Zeroizing;

use super::args::LoginArgs;
use super::{CliError, CommandResult, Context, ExitStatus, print_json};

/// The most `--password-stdin` reads; a few secrets fit many times over.
const STDIN_LIMIT: usize = 64 * 1024;

pub async fn run(ctx: &Context, args: &LoginArgs) -> CommandResult {
    let config = ctx.home.load()?;
    if args.forget {
        let name = connector_to_forget(&config, args.connector.as_deref())?;
        return forget(&OsKeyring::new(), &name, args.json);
    }
    let (name, connector) = config.connector(args.connector.as_deref())?;
    let target = parse_target(connector)?;
    if args.status {
        return status(&name, connector, &target, args.json).await;
    }
    store(&name, connector, &target, args).await
}

/// `--forget` also works for a connector no longer in `config.toml`, so
/// the secrets of a removed connector can be cleaned up by name.
fn connector_to_forget(
    config: &wechat_archiver::config::Config,
    name: Option<&str>,
) -> Result<String, CliError> {
    match config.connector(name) {
        Ok((name, _)) => Ok(name),
        Err(ConfigError::UnknownConnector { name, .. }) => {
            validate_connector_name(&name)?;
            Ok(name)
        }
        Err(e) => Err(e.into()),
    }
}

fn parse_target(connector: &ConnectorConfig) -> Result<Target, CliError> {
    connector.target().map_err(|e| {
        CliError::failure(e).hint("fix `target` in config.toml, or create the connector again")
    })
}

async fn store(
    name: &str,
    connector: &ConnectorConfig,
    target: &Target,
    args: &LoginArgs,
) -> CommandResult {
    verify::token_url(&connector.endpoint).map_err(|e| check_error(e, name, connector, true))?;
    let keyring = OsKeyring::new();
    // A locked keyring shows on a read; find out before asking for anything.
    keyring
        .get(&SecretKind::TelemessagePassword.account(name))
        .map_err(|e| keyring_error(e, name))?;
    let secrets = read_secrets(name, connector, target, args.password_stdin)?;
    eprintln!(
        "Checking the password of {} with TeleMessage at {}...",
        connector.username, connector.endpoint
    );
    let accepted = verify::check_credentials(
        &connector.endpoint,
        &connector.username,
        &secrets.telemessage,
    )
    .await
    .map_err(|e| check_error(e, name, connector, true))?;
    let mut stored = Vec::new();
    for (kind, secret) in secrets.iter() {
        let account = kind.account(name);
        keep(&keyring, &account, secret).map_err(|e| keyring_error(e, name))?;
        stored.push(StoredEntry {
            secret: kind,
            account,
        });
    }
    let report = LoginReport {
        connector: name.to_owned(),
        keyring: keyring.backend(),
        service: SERVICE,
        telemessage_account: accepted,
        stored,
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_stored(&report, target);
    }
    Ok(ExitStatus::Ok)
}

/// Stores a secret and reads it back, so a keyring that accepts writes but
/// keeps nothing is caught here rather than at the next cron run.
fn keep(keyring: &OsKeyring, account: &str, secret: &Secret) -> Result<(), KeyringError> {
    keyring.set(account, secret)?;
    match keyring.get(account)? {
        Some(read) if read == *secret => Ok(()),
        _ => Err(KeyringError::Failure(format!(
            "the entry for {account} was written but does not read back"
        ))),
    }
}

#[derive(Serialize)]
struct LoginReport {
    connector: String,
    keyring: &'static str,
    service: &'static str,
    telemessage_account: Accepted,
    stored: Vec<StoredEntry>,
}

#[derive(Serialize)]
struct StoredEntry {
    secret: SecretKind,
    account: String,
}

fn print_stored(report: &LoginReport, target: &Target) {
    let account = report
        .telemessage_account
        .account_name
        .as_deref()
        .map(|n| format!(" (account {})", Clean(n)))
        .unwrap_or_default();
    println!("TeleMessage accepted the password{account}.");
    println!(
        "Stored in the OS keyring ({}), service {}:",
        report.keyring, report.service
    );
    for entry in &report.stored {
        println!("  {}: account {}", entry.secret, entry.account);
    }
    if target_needs_secret(target) {
        println!(
            "The target's secret was stored as given; `sync` and `map validate --check-target` use it against {target}."
        );
    }
}

/// The secrets `login` was given, in the order of `cli.md`.
struct GivenSecrets {
    telemessage: Secret,
    target: Option<Secret>,
}

impl GivenSecrets {
    fn iter(&self) -> impl Iterator<Item = (SecretKind, &Secret)> {
        std::iter::once((SecretKind::TelemessagePassword, &self.telemessage))
            .chain(self.target.as_ref().map(|s| (SecretKind::TargetSecret, s)))
    }
}

fn read_secrets(
    name: &str,
    connector: &ConnectorConfig,
    target: &Target,
    from_stdin: bool,
) -> Result<GivenSecrets, CliError> {
    let prompts = prompts(connector, target);
    let mut values = if from_stdin {
        read_stdin_lines(name, &prompts)?
    } else if std::io::stdin().is_terminal() {
        prompt_each(&prompts)?
    } else {
        return Err(CliError::failure(
            "standard input is not a terminal, so there is nowhere to ask for the password",
        )
        .hint(format!(
            "pass --password-stdin and send one secret per line: {}",
            line_list(&prompts)
        )));
    };
    let target_secret = (values.len() > 1).then(|| values.remove(1));
    Ok(GivenSecrets {
        telemessage: values.remove(0),
        target: target_secret,
    })
}

/// What each secret is, for prompts and messages: the TeleMessage password,
/// then the target's secret where it has one.
fn prompts(connector: &ConnectorConfig, target: &Target) -> Vec<String> {
    let mut prompts = vec![format!(
        "TeleMessage password for {} at {}",
        connector.username, connector.endpoint
    )];
    match target {
        Target::Maildir { .. } => {}
        Target::Imap { .. } if connector.auth == TargetAuth::Xoauth2 => prompts.push(format!(
            "client secret of application {} in tenant {} (IMAP with XOAUTH2 at {target})",
            connector.client_id.as_deref().unwrap_or("(no --client-id)"),
            connector.tenant.as_deref().unwrap_or("(no --tenant)")
        )),
        Target::Imap { .. } => prompts.push(format!(
            "IMAP password for {} at {target}",
            connector.target_user.as_deref().unwrap_or("the admin user")
        )),
        Target::Graph { tenant } => prompts.push(format!(
            "client secret of application {} in tenant {tenant}",
            connector.client_id.as_deref().unwrap_or("(no --client-id)")
        )),
    }
    prompts
}

fn line_list(prompts: &[String]) -> String {
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| format!("line {}: the {p}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
}

fn prompt_each(prompts: &[String]) -> Result<Vec<Secret>, CliError> {
    prompts
        .iter()
        .map(|prompt| {
            let value = rpassword::prompt_password(format!("{prompt}: "))
                .map_err(|e| CliError::failure(format!("cannot read the password: {e}")))?;
            let secret = Secret::new(value);
            if secret.is_empty() {
                return Err(CliError::failure(format!(
                    "the {prompt} is empty; nothing was stored"
                )));
            }
            Ok(secret)
        })
        .collect()
}

fn read_stdin_lines(name: &str, prompts: &[String]) -> Result<Vec<Secret>, CliError> {
    // Sized up front so the buffer never reallocates, leaving no copy behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(STDIN_LIMIT + 2));
    std::io::stdin()
        .lock()
        .take(STDIN_LIMIT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::failure(format!("cannot read standard input: {e}")))?;
    let hint = || format!("send one secret per line: {}", line_list(prompts));
    if bytes.len() > STDIN_LIMIT {
        return Err(CliError::failure("standard input is larger than 64 KiB").hint(hint()));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::failure("standard input is not UTF-8 text").hint(hint()))?;
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<&str> = if body.is_empty() {
        Vec::new()
    } else {
        body.split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect()
    };
    if lines.len() != prompts.len() {
        return Err(CliError::failure(format!(
            "standard input has {} line(s), and connector '{name}' takes {}; nothing was stored",
            lines.len(),
            prompts.len()
        ))
        .hint(hint()));
    }
    if let Some(empty) = lines.iter().position(|l| l.is_empty()) {
        return Err(CliError::failure(format!(
            "line {} of standard input (the {}) is empty; nothing was stored",
            empty + 1,
            prompts[empty]
        ))
        .hint(hint()));
    }
    Ok(lines.into_iter().map(Secret::new).collect())
}

/// The error for a failed credential check; `login` adds that nothing
/// was stored, `--status` has nothing to store.
fn check_error(
    error: CredentialCheckError,
    name: &str,
    connector: &ConnectorConfig,
    during_login: bool,
) -> CliError {
    use CredentialCheckError as E;
    let hint = match &error {
        E::Rejected { .. } => format!(
            "check the password, and the user name '{}' of connector '{name}' (config.toml)",
            connector.username
        ),
        E::AccountDisabled | E::ProductNotEnabled | E::Forbidden { .. } => {
            "ask TeleMessage (or your account administrator) to enable the account and its WeChat Archiver product".to_owned()
        }
        E::BadEndpoint { .. } => {
            format!("fix `endpoint` of connector '{name}' in config.toml")
        }
        E::Unreachable { .. } | E::Unexpected { .. } => {
            "check the endpoint and the network, then try again".to_owned()
        }
    };
    let hint = if during_login {
        format!("{hint}; nothing was stored")
    } else {
        hint
    };
    CliError::failure(error).hint(hint)
}

fn keyring_error(error: KeyringError, name: &str) -> CliError {
    let hint = match &error {
        KeyringError::Unreachable(_) => format!(
            "`login` stores secrets in the OS keyring, and none can be reached from here. Run it in a \
             desktop session, or in an ssh session that has a session bus and an unlocked keyring. \
             Where no keyring can be (cron, containers), put the secrets in a file only you can read \
             (`chmod 600 FILE`; line 1 the TeleMessage password, line 2 the target's secret if any), \
             set {PASSWORD_FILE_ENV}=FILE, and check it with `wechat-archiver login --status --connector {name}`"
        ),
        KeyringError::Locked(_) => "unlock the keyring, or create a default one if there is none (log in to the desktop session, or `gnome-keyring-daemon --unlock`), and try again".to_owned(),
        KeyringError::Failure(_) => "check the keyring with your desktop's password manager or `secret-tool search service wechat-archiver`, then try again".to_owned(),
    };
    CliError::failure(error).hint(hint)
}

fn forget(keyring: &OsKeyring, name: &str, json: bool) -> CommandResult {
    keyring.probe().map_err(|e| keyring_error(e, name))?;
    let mut removed = Vec::new();
    for kind in [SecretKind::TelemessagePassword, SecretKind::TargetSecret] {
        let account = kind.account(name);
        if keyring
            .delete(&account)
            .map_err(|e| keyring_error(e, name))?
        {
            removed.push(account);
        }
    }
    if json {
        print_json(&serde_json::json!({
            "connector": name,
            "keyring": keyring.backend(),
            "service": SERVICE,
            "removed": removed,
        }))?;
    } else if removed.is_empty() {
        println!(
            "Nothing was stored for connector '{name}' in the OS keyring ({}).",
            keyring.backend()
        );
    } else {
        println!(
            "Removed from the OS keyring ({}), service {SERVICE}: {}.",
            keyring.backend(),
            removed.join(", ")
        );
    }
    if std::env::var_os(PASSWORD_FILE_ENV).is_some() {
        eprintln!("Note: the file named by {PASSWORD_FILE_ENV} is not touched.");
    }
    Ok(ExitStatus::Ok)
}

#[derive(Serialize)]
struct StatusReport {
    connector: String,
    keyring: KeyringStatus,
    secrets: Vec<SecretStatus>,
    telemessage: Option<CheckStatus>,
}

#[derive(Serialize)]
struct KeyringStatus {
    backend: &'static str,
    reachable: bool,
    problem: Option<String>,
}

#[derive(Serialize)]
struct SecretStatus {
    secret: SecretKind,
    found: bool,
    /// `keyring`, `password_file` or `environment`.
    source: Option<&'static str>,
    location: Option<String>,
    tried: Vec<String>,
}

#[derive(Serialize)]
struct CheckStatus {
    accepted: bool,
    account_name: Option<String>,
    problem: Option<String>,
}

impl SecretStatus {
    fn new(kind: SecretKind, found: &Result<Source, NoSecret>) -> Self {
        match found {
            Ok(source) => SecretStatus {
                secret: kind,
                found: true,
                source: Some(source.kind()),
                location: Some(source.to_string()),
                tried: Vec::new(),
            },
            Err(missing) => SecretStatus {
                secret: kind,
                found: false,
                source: None,
                location: None,
                tried: missing.tried.iter().map(|a| a.to_string()).collect(),
            },
        }
    }
}

async fn status(
    name: &str,
    connector: &ConnectorConfig,
    target: &Target,
    json: bool,
) -> CommandResult {
    let keyring = OsKeyring::new();
    let places = Places::from_environment(&keyring);
    let telemessage = places.find(name, SecretKind::TelemessagePassword);
    let target_secret = target_needs_secret(target)
        .then(|| places.find(name, SecretKind::TargetSecret).map(|(_, s)| s));
    let check = match &telemessage {
        Ok((password, _)) => Some(
            verify::check_credentials(&connector.endpoint, &connector.username, password).await,
        ),
        Err(_) => None,
    };
    let telemessage = telemessage.map(|(_, source)| source);
    let report = status_report(name, &keyring, &telemessage, &target_secret, &check);
    if json {
        print_json(&report)?;
    } else {
        print_status(&report, connector, target);
    }
    status_outcome(name, connector, telemessage, target_secret, check)
}

fn status_report(
    name: &str,
    keyring: &OsKeyring,
    telemessage: &Result<Source, NoSecret>,
    target_secret: &Option<Result<Source, NoSecret>>,
    check: &Option<Result<Accepted, CredentialCheckError>>,
) -> StatusReport {
    let probe = keyring.probe();
    let mut secrets = vec![SecretStatus::new(
        SecretKind::TelemessagePassword,
        telemessage,
    )];
    if let Some(found) = target_secret {
        secrets.push(SecretStatus::new(SecretKind::TargetSecret, found));
    }
    StatusReport {
        connector: name.to_owned(),
        keyring: KeyringStatus {
            backend: keyring.backend(),
            reachable: probe.is_ok(),
            problem: probe.err().map(|e| e.to_string()),
        },
        secrets,
        telemessage: check.as_ref().map(|c| match c {
            Ok(accepted) => CheckStatus {
                accepted: true,
                account_name: accepted.account_name.clone(),
                problem: None,
            },
            Err(e) => CheckStatus {
                accepted: false,
                account_name: None,
                problem: Some(e.to_string()),
            },
        }),
    }
}

fn print_status(report: &StatusReport, connector: &ConnectorConfig, target: &Target) {
    println!(
        "Connector {}: TeleMessage user {} at {}, target {target}",
        report.connector, connector.username, connector.endpoint
    );
    match &report.keyring.problem {
        None => println!("OS keyring ({}): reachable", report.keyring.backend),
        Some(problem) => println!(
            "OS keyring ({}): {}",
            report.keyring.backend,
            escape_lines(problem)
        ),
    }
    for secret in &report.secrets {
        match &secret.location {
            Some(location) => println!("{}: from {location}", secret.secret),
            None => {
                println!("{}: not found; tried:", secret.secret);
                for tried in &secret.tried {
                    println!("  - {tried}");
                }
            }
        }
    }
    match &report.telemessage {
        Some(CheckStatus {
            accepted: true,
            account_name,
            ..
        }) => {
            let account = account_name
                .as_deref()
                .map(|n| format!(" (account {})", Clean(n)))
                .unwrap_or_default();
            println!("TeleMessage accepts the password{account}.");
        }
        Some(CheckStatus {
            problem: Some(problem),
            ..
        }) => println!("TeleMessage check: {}", escape_lines(problem)),
        _ => {}
    }
}

/// Exit status 0 only when every secret is found and TeleMessage accepts
/// the password; otherwise the first problem, with what to do about it.
fn status_outcome(
    name: &str,
    connector: &ConnectorConfig,
    telemessage: Result<Source, NoSecret>,
    target_secret: Option<Result<Source, NoSecret>>,
    check: Option<Result<Accepted, CredentialCheckError>>,
) -> CommandResult {
    let missing = |e: NoSecret| {
        let hint = e.hint();
        CliError::failure(e).hint(hint)
    };
    telemessage.map_err(missing)?;
    if let Some(found) = target_secret {
        found.map_err(missing)?;
    }
    match check {
        Some(Err(e)) if e.is_refusal() => Err(CliError::failure(format!(
            "the stored TeleMessage password of connector '{name}' no longer works: {e}"
        ))
        .hint(format!(
            "run `wechat-archiver login --connector {name}` again (user {})",
            connector.username
        ))),
        Some(Err(e)) => Err(check_error(e, name, connector, false)),
        _ => Ok(ExitStatus::Ok),
    }
}
