//! Adoption against a real Dovecot: a ledger that does not know what the
//! archive folders hold (deleted, an older backup restored, a new home
//! under another connector name) finds the copies with one FETCH per
//! folder and never writes one twice; `ledger rebuild` and `ledger check`
//! over IMAP.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use wechat_archiver::simulator::Simulator;

use crate::support::dovecot::{self, Dovecot};
use crate::support::{Run, TestEnv};
use crate::sync::{PASSWORD, SINCE, UNTIL, simulator, t};

const MIDDLE: &str = "2026-11-22T00:00:00Z";
const FOLDER: &str = "WeChat Archiver";

struct Case {
    source: Simulator,
    server: Dovecot,
    env: TestEnv,
    secrets: PathBuf,
    users: Vec<String>,
}

impl Case {
    fn new(items: usize) -> Case {
        let source = simulator(items, |_| {});
        let users = crate::imap_sync::registered(&source);
        let refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let server = Dovecot::start(&refs);
        let env = TestEnv::new();
        let secrets = env.password_file(PASSWORD, dovecot::ADMIN_PASSWORD);
        let case = Case {
            source,
            server,
            env,
            secrets,
            users,
        };
        case.create("c");
        case
    }

    /// Connector `name` in the case's home, into the same Dovecot.
    fn create(&self, name: &str) {
        let csv = self.env.path("mapping.csv");
        self.source.dataset().write_mapping_csv(&csv).unwrap();
        let target = format!("imap://127.0.0.1:{}", self.server.port);
        let url = self.source.url();
        let csv = csv.display().to_string();
        self.run(&[
            "create",
            name,
            "--endpoint",
            &url,
            "--username",
            "admin@contoso.com",
            "--target",
            &target,
            "--target-user",
            dovecot::ADMIN,
            "--mapping",
            &csv,
            "--accept-terms",
        ])
        .assert_code(0);
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut command = self.env.command(args);
        command.env("WECHAT_ARCHIVER_PASSWORD_FILE", &self.secrets);
        command.output().unwrap().into()
    }

    fn sync(&self, connector: &str, since: &str, until: &str) -> serde_json::Value {
        let run = self.run(&[
            "sync",
            "--connector",
            connector,
            "--since",
            since,
            "--until",
            until,
            "--json",
        ]);
        run.assert_code(0);
        run.json()
    }

    /// Every copy in every user's archive folder, by user and item id,
    /// with how many times it is there.
    fn archive(&self) -> BTreeMap<(String, String), usize> {
        let mut copies = BTreeMap::new();
        for user in &self.users {
            for m in self.server.fetch_all(user, FOLDER).unwrap_or_default() {
                let id = m.item_id().expect("a copy with its trace header");
                *copies.entry((user.to_lowercase(), id)).or_insert(0) += 1;
            }
        }
        copies
    }

    /// The (mailbox, item) copies the window should have put in the archive.
    fn expected(&self) -> BTreeSet<(String, String)> {
        let dataset = self.source.dataset();
        dataset
            .items_in_window(t(SINCE), t(UNTIL))
            .iter()
            .flat_map(|item| {
                dataset
                    .expected_mailboxes(item, true, true)
                    .into_iter()
                    .map(|m| (m, item.id.to_string()))
            })
            .collect()
    }

    /// Each expected copy is in the archive exactly once, and nothing else.
    fn assert_exact(&self) {
        let archive = self.archive();
        let twice: Vec<_> = archive.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "duplicates: {twice:?}");
        let found: BTreeSet<_> = archive.into_keys().collect();
        assert_eq!(found, self.expected());
    }
}

fn ledger_files(home: &Path) -> Vec<PathBuf> {
    ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"]
        .iter()
        .map(|f| home.join(f))
        .filter(|p| p.exists())
        .collect()
}

fn remove_ledger(home: &Path) {
    for f in ledger_files(home) {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn imap_an_older_or_deleted_ledger_adopts_the_archive_and_never_duplicates() {
    let case = Case::new(100);
    let home = &case.env.home;
    case.sync("c", SINCE, MIDDLE);
    let backup = case.env.path("backup");
    std::fs::create_dir_all(&backup).unwrap();
    for f in ledger_files(home) {
        std::fs::copy(&f, backup.join(f.file_name().unwrap())).unwrap();
    }
    let newer = case.sync("c", MIDDLE, UNTIL);
    assert!(newer["written"].as_u64().unwrap() > 0, "{newer}");
    case.assert_exact();
    let total = case.expected().len() as u64;

    remove_ledger(home);
    for f in ledger_files(&backup) {
        std::fs::copy(&f, home.join(f.file_name().unwrap())).unwrap();
    }
    let restored = case.sync("c", SINCE, UNTIL);
    assert_eq!(restored["written"], 0, "{restored}");
    assert_eq!(restored["adopted"], newer["written"], "{restored}");
    case.assert_exact();

    remove_ledger(home);
    let lost = case.sync("c", SINCE, UNTIL);
    assert_eq!(lost["written"], 0, "{lost}");
    assert_eq!(lost["adopted"], total, "{lost}");
    case.assert_exact();

    let check = case.run(&["ledger", "check", "--json"]);
    check.assert_code(0);
    let check = check.json();
    assert_eq!(check["target_copies"], total, "{check}");
    assert_eq!(check["ledger_copies"], total, "{check}");
}

/// A new home under another connector name: `ledger rebuild` records the
/// archive over IMAP without writing, `ledger check` agrees, the next sync
/// writes nothing in the window, and status warns that the copies were
/// written by connector `c`.
#[test]
fn imap_a_new_home_rebuilds_its_ledger_and_status_warns_of_the_other_connector() {
    let case = Case::new(80);
    let first = case.sync("c", SINCE, UNTIL);
    let written = first["written"].as_u64().unwrap();
    case.assert_exact();

    std::fs::rename(&case.env.home, case.env.path("old-home")).unwrap();
    case.create("c2");
    let rebuilt = case.run(&["ledger", "rebuild", "--since", SINCE, "--json"]);
    rebuilt.assert_code(0);
    let rebuilt = rebuilt.json();
    assert_eq!(rebuilt["written"], 0, "{rebuilt}");
    assert_eq!(rebuilt["adopted"], written, "{rebuilt}");
    case.assert_exact();

    let check = case.run(&["ledger", "check"]);
    check.assert_code(0);
    assert!(
        check.stdout.contains("the ledger and the target agree"),
        "{}",
        check.stdout
    );
    // The rebuild ran to now: the next sync writes the copies of later
    // items it did not find, and only those.
    let missing = rebuilt["would_write"].as_array().map_or(0, Vec::len);
    let again = case.sync("c2", SINCE, UNTIL);
    assert_eq!(again["written"], missing as u64, "{again}");
    let archive = case.archive();
    assert!(archive.values().all(|n| *n == 1), "duplicates: {archive:?}");
    assert_eq!(archive.len(), case.expected().len() + missing);

    let status = case.run(&["status", "--json"]);
    status.assert_code(0);
    let foreign = &status.json()["connectors"][0]["foreign_copies"];
    let adopted: u64 = foreign
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["written_by"], "c");
            f["copies"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(adopted, written);
}
