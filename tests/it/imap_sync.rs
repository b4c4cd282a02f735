//! `sync` end to end into a real Dovecot: every copy read back over IMAP.

use std::collections::BTreeSet;
use std::path::PathBuf;

use wechat_archiver::faultpoint::CRASH_AT_ENV;
use wechat_archiver::simulator::{SimConfig, Simulator};

use crate::support::dovecot::{ADMIN, ADMIN_PASSWORD, Dovecot};
use crate::support::{Run, TestEnv};
use crate::sync::{PASSWORD, SINCE, UNTIL, simulator, t};

/// The simulator, a Dovecot with the given users, and connector `c`
/// between them (secrets in a password file).
struct Case {
    source: Simulator,
    dovecot: Dovecot,
    env: TestEnv,
    secrets: PathBuf,
    users: Vec<String>,
}

impl Case {
    fn new(source: Simulator, users: Vec<String>, with_mapping: bool) -> Case {
        let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let dovecot = Dovecot::start(&user_refs);
        let env = TestEnv::new();
        let secrets = env.password_file(PASSWORD, ADMIN_PASSWORD);
        let target = format!("imap://127.0.0.1:{}", dovecot.port);
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
            ADMIN,
            "--accept-terms",
        ];
        let csv = env.path("mapping.csv");
        let csv_arg = csv.display().to_string();
        if with_mapping {
            source.dataset().write_mapping_csv(&csv).unwrap();
            args.extend(["--mapping", &csv_arg]);
        }
        env.run(&args).assert_code(0);
        Case {
            source,
            dovecot,
            env,
            secrets,
            users,
        }
    }

    /// Every registered user of the simulated account, with the CSV.
    fn all_users(items: usize, tweak: impl FnOnce(&mut SimConfig)) -> Case {
        let source = simulator(items, tweak);
        let users = source
            .dataset()
            .users()
            .iter()
            .filter_map(|u| u.email.clone())
            .collect();
        Case::new(source, users, true)
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
                .dovecot
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

    let second = case.sync(None);
    second.assert_code(0);
    assert_eq!(second.json()["written"], 0);
    assert_eq!(second.json()["already_archived"], expected);
}

/// A sync into Dovecot killed just after copies were appended but before
/// they were recorded: the next run finds them by their trace header and
/// writes each missing copy once.
#[test]
fn a_crash_mid_run_into_dovecot_is_repaired_without_duplicates() {
    let case = Case::all_users(40, |_| {});
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
