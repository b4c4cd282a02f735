//! `sync` end to end into a real Dovecot and a real Cyrus (in both of its
//! namespace modes): every copy read back over IMAP.

use std::collections::BTreeSet;
use std::path::PathBuf;

use wechat_archiver::faultpoint::CRASH_AT_ENV;
use wechat_archiver::simulator::{SimConfig, Simulator};

use crate::support::cyrus::{self, Cyrus};
use crate::support::dovecot::{self, Dovecot, Fetched};
use crate::support::{Run, TestEnv};
use crate::sync::{PASSWORD, SINCE, UNTIL, simulator, t};

/// Which IMAP server a case runs against.
#[derive(Clone, Copy)]
enum Kind {
    Dovecot,
    Cyrus { altnamespace: bool },
}

enum Server {
    Dovecot(Dovecot),
    Cyrus(Cyrus),
}

impl Server {
    fn start(kind: Kind, users: &[&str]) -> Server {
        match kind {
            Kind::Dovecot => Server::Dovecot(Dovecot::start(users)),
            Kind::Cyrus { altnamespace } => Server::Cyrus(Cyrus::start(users, altnamespace)),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Server::Dovecot(d) => d.port,
            Server::Cyrus(c) => c.port,
        }
    }

    fn admin(&self) -> (&'static str, &'static str) {
        match self {
            Server::Dovecot(_) => (dovecot::ADMIN, dovecot::ADMIN_PASSWORD),
            Server::Cyrus(_) => (cyrus::ADMIN, cyrus::ADMIN_PASSWORD),
        }
    }

    fn fetch_all(&self, user: &str, folder: &str) -> Option<Vec<Fetched>> {
        match self {
            Server::Dovecot(d) => d.fetch_all(user, folder),
            Server::Cyrus(c) => c.fetch_all(user, folder),
        }
    }
}

/// The simulator, an IMAP server with the given users, and connector `c`
/// between them (secrets in a password file).
struct Case {
    source: Simulator,
    server: Server,
    env: TestEnv,
    secrets: PathBuf,
    users: Vec<String>,
}

impl Case {
    fn new(source: Simulator, users: Vec<String>, with_mapping: bool) -> Case {
        Case::on(Kind::Dovecot, source, users, with_mapping, &[])
    }

    /// A case against `kind`, with more `create` options.
    fn on(
        kind: Kind,
        source: Simulator,
        users: Vec<String>,
        with_mapping: bool,
        extra: &[&str],
    ) -> Case {
        let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let server = Server::start(kind, &user_refs);
        let (admin, admin_password) = server.admin();
        let env = TestEnv::new();
        let secrets = env.password_file(PASSWORD, admin_password);
        let target = format!("imap://127.0.0.1:{}", server.port());
        let url = source.url();
        let mut args = vec![
            "create",
            "c",
            "--endpoint",
            &url,
            "--username",
            "admin@contoso.com",
            "--target",
            &target,
            "--target-user",
            admin,
            "--accept-terms",
        ];
        args.extend(extra);
        let csv = env.path("mapping.csv");
        let csv_arg = csv.display().to_string();
        if with_mapping {
            source.dataset().write_mapping_csv(&csv).unwrap();
            args.extend(["--mapping", &csv_arg]);
        }
        env.run(&args).assert_code(0);
        Case {
            source,
            server,
            env,
            secrets,
            users,
        }
    }

    /// Every registered user of the simulated account, with the CSV.
    fn all_users(items: usize, tweak: impl FnOnce(&mut SimConfig)) -> Case {
        Case::all_users_on(Kind::Dovecot, items, tweak)
    }

    fn all_users_on(kind: Kind, items: usize, tweak: impl FnOnce(&mut SimConfig)) -> Case {
        let source = simulator(items, tweak);
        let users = registered(&source);
        Case::on(kind, source, users, true, &[])
    }

    fn run(&self, args: &[&str], crash: Option<&str>) -> Run {
        let mut command = self.env.command(args);
        command.env("WECHAT_ARCHIVER_PASSWORD_FILE", &self.secrets);
        if let Some(point) = crash {
            command.env(CRASH_AT_ENV, point);
        }
        command.output().unwrap().into()
    }

    fn sync(&self, crash: Option<&str>) -> Run {
        self.run(
            &["sync", "--since", SINCE, "--until", UNTIL, "--json"],
            crash,
        )
    }

    /// Reads every user's archive folder back and checks each expected
    /// copy is there once and intact; returns how many there are.
    fn assert_every_copy_once(&self) -> u64 {
        let dataset = self.source.dataset();
        let items = dataset.items_in_window(t(SINCE), t(UNTIL));
        let mut expected = 0;
        for user in &self.users {
            let wanted: BTreeSet<String> = items
                .iter()
                .filter(|i| {
                    dataset
                        .expected_mailboxes(i, true, true)
                        .contains(&user.to_lowercase())
                })
                .map(|i| i.id.to_string())
                .collect();
            expected += wanted.len() as u64;
            let fetched = self
                .server
                .fetch_all(user, "WeChat Archiver")
                .unwrap_or_default();
            let found: Vec<String> = fetched.iter().filter_map(|m| m.item_id()).collect();
            assert_eq!(
                found.len(),
                wanted.len(),
                "{user}: duplicates or losses in {found:?}"
            );
            assert_eq!(found.into_iter().collect::<BTreeSet<_>>(), wanted, "{user}");
            for message in &fetched {
                let id = message.item_id().unwrap();
                let original = dataset.content(&id).unwrap();
                assert!(
                    message.body.ends_with(&original),
                    "{id} in {user} is not intact"
                );
                assert!(
                    message.flags.iter().any(|f| f == "\\Seen"),
                    "{id} not \\Seen"
                );
            }
        }
        expected
    }
}

/// The registered users' addresses.
pub(crate) fn registered(source: &Simulator) -> Vec<String> {
    source
        .dataset()
        .users()
        .iter()
        .filter_map(|u| u.email.clone())
        .collect()
}

#[test]
fn sync_into_dovecot_lands_every_copy_once_intact_and_a_rerun_writes_nothing() {
    let case = Case::all_users(60, |c| c.large_fraction = 0.03);
    let items = case.source.dataset().items_in_window(t(SINCE), t(UNTIL));
    assert!(
        items.iter().any(|i| i.size > 10_000_000),
        "no item over 10 MB"
    );
    let first = case.sync(None);
    first.assert_code(0);
    let expected = case.assert_every_copy_once();
    assert_eq!(first.json()["written"], expected);
    // Many items wait to be appended at once; downloads stay bounded.
    let downloads = case.source.stats().max_concurrent_downloads;
    assert!(
        (1..=16).contains(&downloads),
        "{downloads} downloads at once"
    );

    let Server::Dovecot(dovecot) = &case.server else {
        unreachable!("all_users starts Dovecot")
    };
    let logins = || dovecot.logs().matches("Login: user=").count();
    let logins_before = logins();
    assert!(
        logins_before > 0,
        "Dovecot logs its logins: {}",
        dovecot.logs()
    );
    let second = case.sync(None);
    second.assert_code(0);
    assert_eq!(second.json()["written"], 0);
    assert_eq!(second.json()["already_archived"], expected);
    // Nothing to write to any mailbox: none is logged in to.
    assert_eq!(logins(), logins_before, "{}", dovecot.logs());
}

/// A sync into Dovecot killed just after copies were appended but before
/// they were recorded: the next run finds them by their trace header and
/// writes each missing copy once.
#[test]
fn a_crash_mid_run_into_dovecot_is_repaired_without_duplicates() {
    crash_is_repaired_without_duplicates(Kind::Dovecot);
}

#[test]
fn a_crash_mid_run_into_cyrus_is_repaired_without_duplicates() {
    crash_is_repaired_without_duplicates(Kind::Cyrus {
        altnamespace: false,
    });
}

fn crash_is_repaired_without_duplicates(kind: Kind) {
    let case = Case::all_users_on(kind, 40, |_| {});
    let crashed = case.sync(Some("before-ledger-commit:12"));
    assert!(
        crashed
            .stderr
            .contains("crash point before-ledger-commit reached"),
        "{}",
        crashed.stderr
    );
    let repaired = case.sync(None);
    repaired.assert_code(0);
    let expected = case.assert_every_copy_once();
    let json = repaired.json();
    let written = json["written"].as_u64().unwrap();
    assert_eq!(
        written + json["already_archived"].as_u64().unwrap(),
        expected
    );
    assert!(written < expected, "the crashed run wrote nothing");
}

#[test]
fn map_validate_check_target_asks_dovecot_which_mailboxes_exist() {
    let case = Case::new(
        simulator(5, |_| {}),
        vec!["li.wei@contoso.com".into()],
        false,
    );
    let csv = case.env.path("map.csv");
    std::fs::write(
        &csv,
        "mobile_number,mailbox\n+8613800138000,li.wei@contoso.com\n+8613800138001,nobody@contoso.com\n",
    )
    .unwrap();
    let run = case.run(
        &[
            "map",
            "validate",
            csv.to_str().unwrap(),
            "--check-target",
            "--json",
        ],
        None,
    );
    run.assert_code(3);
    let json = run.json();
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{json}");
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[0]["value"], "nobody@contoso.com");
}

/// Into Cyrus: every copy once, none failed (Cyrus lets the admin act as
/// the dataset's external addresses too; they are not users), and a rerun
/// writes nothing.
fn every_copy_once_into_cyrus(altnamespace: bool) {
    let case = Case::all_users_on(Kind::Cyrus { altnamespace }, 40, |_| {});
    let first = case.sync(None);
    first.assert_code(0);
    let expected = case.assert_every_copy_once();
    assert_eq!(first.json()["written"], expected);
    assert_eq!(first.json()["failed"], 0);
    let second = case.sync(None);
    second.assert_code(0);
    assert_eq!(second.json()["written"], 0);
    assert_eq!(second.json()["already_archived"], expected);
}

#[test]
fn sync_into_cyrus_without_altnamespace_lands_every_copy_once_and_a_rerun_writes_nothing() {
    every_copy_once_into_cyrus(false);
}

#[test]
fn sync_into_cyrus_with_altnamespace_lands_every_copy_once_and_a_rerun_writes_nothing() {
    every_copy_once_into_cyrus(true);
}

#[test]
fn map_validate_check_target_asks_cyrus_which_mailboxes_exist() {
    let case = Case::on(
        Kind::Cyrus {
            altnamespace: false,
        },
        simulator(5, |_| {}),
        vec!["li.wei@contoso.com".into()],
        false,
        &[],
    );
    let csv = case.env.path("map.csv");
    std::fs::write(
        &csv,
        "mobile_number,mailbox\n+8613800138000,li.wei@contoso.com\n+8613800138001,nobody.here@contoso.com\n",
    )
    .unwrap();
    let run = case.run(
        &[
            "map",
            "validate",
            csv.to_str().unwrap(),
            "--check-target",
            "--json",
        ],
        None,
    );
    run.assert_code(3);
    let json = run.json();
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{json}");
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[0]["value"], "nobody.here@contoso.com");
}

/// A registered user without a Cyrus mailbox is not a user of the target
/// (the same check as `map validate --check-target`): their items go to
/// the fallback mailbox when no one else is mapped, and nothing fails.
#[test]
fn sync_into_cyrus_sends_items_of_an_address_without_a_mailbox_to_the_fallback() {
    const FALLBACK: &str = "wechat-unmapped@contoso.com";
    let source = simulator(30, |_| {});
    let mut users = registered(&source);
    let missing = users.remove(0).to_lowercase();
    let existing: BTreeSet<String> = users.iter().map(|u| u.to_lowercase()).collect();
    users.push(FALLBACK.into());
    let case = Case::on(
        Kind::Cyrus {
            altnamespace: false,
        },
        source,
        users,
        true,
        &["--fallback-mailbox", FALLBACK],
    );
    let run = case.sync(None);
    run.assert_code(0);
    assert_eq!(run.json()["failed"], 0, "{}", run.stdout);
    let dataset = case.source.dataset();
    let items = dataset.items_in_window(t(SINCE), t(UNTIL));
    assert!(
        items
            .iter()
            .any(|i| dataset.expected_mailboxes(i, true, true).contains(&missing)),
        "{missing} takes part in no item"
    );
    let to_fallback: BTreeSet<String> = items
        .iter()
        .filter(|i| {
            dataset
                .expected_mailboxes(i, true, true)
                .is_disjoint(&existing)
        })
        .map(|i| i.id.to_string())
        .collect();
    let in_fallback: BTreeSet<String> = case
        .server
        .fetch_all(FALLBACK, "WeChat Archiver")
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.item_id())
        .collect();
    assert_eq!(in_fallback, to_fallback);
    assert_eq!(run.json()["unmapped"], to_fallback.len());
}
