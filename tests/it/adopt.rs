//! A ledger that does not know what the archive holds (deleted, restored
//! from an older backup, a new home, a second connector) adopts the copies
//! already there instead of writing them again: Maildir.

use std::path::Path;

use crate::support::TestEnv;
use crate::sync::{
    PASSWORD, SINCE, UNTIL, assert_archive_exact, connector, expected_copies, read_archive,
    simulator, sync, t,
};

const MIDDLE: &str = "2026-11-22T00:00:00Z";

/// The ledger's files (the database and its write-ahead log).
fn ledger_files(home: &Path) -> Vec<std::path::PathBuf> {
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

fn save_ledger(home: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ledger_files(home) {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

fn restore_ledger(from: &Path, home: &Path) {
    remove_ledger(home);
    for f in ledger_files(from) {
        std::fs::copy(&f, home.join(f.file_name().unwrap())).unwrap();
    }
}

/// `verify` of the window finds nothing: the ledger, the manifests (whose
/// run ids a new ledger must not reuse), the listing and the copies agree.
#[track_caller]
fn assert_verified(env: &TestEnv) {
    let mut verify = env.command(["verify", "--since", SINCE, "--until", UNTIL, "--json"]);
    verify.env("WECHAT_ARCHIVER_PASSWORD", PASSWORD);
    let verify: crate::support::Run = verify.output().unwrap().into();
    verify.assert_code(0);
}

/// `ledger ...` with the TeleMessage password.
fn ledger(env: &TestEnv, args: &[&str]) -> crate::support::Run {
    let mut command = env.command(["ledger"]);
    command.args(args).env("WECHAT_ARCHIVER_PASSWORD", PASSWORD);
    command.output().unwrap().into()
}

fn window(since: &'static str, until: &'static str) -> Vec<&'static str> {
    vec!["--since", since, "--until", until, "--json"]
}

#[test]
fn a_deleted_ledger_adopts_the_whole_archive_and_writes_nothing() {
    let sim = simulator(120, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let first = sync(&env, &window(SINCE, UNTIL));
    first.assert_code(0);
    let written = first.json()["written"].as_u64().unwrap();
    assert!(written > 50, "{written}");
    let before = read_archive(&root);

    remove_ledger(&env.home);
    let again = sync(&env, &window(SINCE, UNTIL));
    again.assert_code(0);
    let again = again.json();
    assert_eq!(again["written"], 0, "{again}");
    assert_eq!(again["already_archived"], written);
    assert_eq!(read_archive(&root), before);
    let items = sim.dataset().items_in_window(t(SINCE), t(UNTIL));
    assert_archive_exact(&sim, &before, &expected_copies(&sim, &items));

    let third = sync(&env, &window(SINCE, UNTIL));
    third.assert_code(0);
    assert_eq!(third.json()["written"], 0);
    assert_eq!(read_archive(&root), before);
    assert_verified(&env);
}

#[test]
fn an_older_ledger_restored_adopts_the_newer_copies() {
    let sim = simulator(120, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    sync(&env, &window(SINCE, MIDDLE)).assert_code(0);
    let backup = env.path("backup");
    save_ledger(&env.home, &backup);
    let newer = sync(&env, &window(MIDDLE, UNTIL));
    newer.assert_code(0);
    let newer_written = newer.json()["written"].as_u64().unwrap();
    assert!(newer_written > 0);
    let before = read_archive(&root);

    restore_ledger(&backup, &env.home);
    let again = sync(&env, &window(SINCE, UNTIL));
    again.assert_code(0);
    let again = again.json();
    assert_eq!(again["written"], 0, "{again}");
    assert_eq!(read_archive(&root), before);
    let items = sim.dataset().items_in_window(t(SINCE), t(UNTIL));
    assert_archive_exact(&sim, &before, &expected_copies(&sim, &items));
    // The audit trail tells the truth: the run the backup predates is gone
    // from the ledger (its copies were adopted again), and nothing else.
    let mut verify = env.command(["verify", "--since", SINCE, "--until", UNTIL, "--json"]);
    verify.env("WECHAT_ARCHIVER_PASSWORD", PASSWORD);
    let verify: crate::support::Run = verify.output().unwrap().into();
    verify.assert_code(3);
    let findings = verify.json()["findings"].clone();
    let findings = findings.as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["kind"], "ledger_row_deleted", "{findings:?}");
}

/// A new home on an existing archive whose first run covers only part of
/// what the archive holds: later runs keep looking until the ledger knows
/// every copy, and never write one twice.
#[test]
fn a_new_home_adopts_window_after_window() {
    let sim = simulator(120, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    sync(&env, &window(SINCE, UNTIL)).assert_code(0);
    let before = read_archive(&root);

    std::fs::rename(&env.home, env.path("old-home")).unwrap();
    connector(&env, &sim, &[]);
    for (since, until) in [(SINCE, MIDDLE), (MIDDLE, UNTIL), (SINCE, UNTIL)] {
        let run = sync(&env, &window(since, until));
        run.assert_code(0);
        assert_eq!(run.json()["written"], 0, "{since}..{until}");
    }
    assert_eq!(read_archive(&root), before);
}

#[test]
fn a_second_connector_on_the_same_archive_adopts_and_status_warns() {
    let sim = simulator(80, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let first = sync(&env, &window(SINCE, UNTIL));
    first.assert_code(0);
    let before = read_archive(&root);

    let csv = env.path("mapping.csv").display().to_string();
    env.create_maildir_connector("c2", &sim.url(), &["--mapping", &csv]);
    let mut args = window(SINCE, UNTIL);
    args.extend(["--connector", "c2"]);
    let second = sync(&env, &args);
    second.assert_code(0);
    let second = second.json();
    assert_eq!(second["written"], 0, "{second}");
    assert_eq!(second["already_archived"], first.json()["written"]);
    assert_eq!(read_archive(&root), before);

    let status = env.run(["status", "--connector", "c2", "--json"]);
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
    assert_eq!(adopted, first.json()["written"].as_u64().unwrap());
    let human = env.run(["status", "--connector", "c2"]);
    assert!(
        human.stdout.contains("were written by connector \"c\""),
        "{}",
        human.stdout
    );
}

/// A lost home: `ledger rebuild` records every copy the archive holds
/// without writing one, `ledger check` then finds both sides agree, and a
/// copy removed from the archive afterwards is named by `ledger check`.
#[test]
fn ledger_rebuild_records_the_archive_and_ledger_check_names_what_differs() {
    let sim = simulator(100, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let first = sync(&env, &window(SINCE, UNTIL));
    first.assert_code(0);
    let written = first.json()["written"].as_u64().unwrap();
    let before = read_archive(&root);

    remove_ledger(&env.home);
    let rebuilt = ledger(&env, &["rebuild", "--since", SINCE, "--json"]);
    rebuilt.assert_code(0);
    let rebuilt = rebuilt.json();
    assert_eq!(rebuilt["written"], 0, "{rebuilt}");
    assert_eq!(rebuilt["adopted"], written, "{rebuilt}");
    assert_eq!(read_archive(&root), before);

    assert_verified(&env);

    let check = ledger(&env, &["check", "--json"]);
    check.assert_code(0);
    let check = check.json();
    assert_eq!(check["ledger_copies"], written, "{check}");
    assert_eq!(check["target_copies"], written, "{check}");
    let human = ledger(&env, &["check"]);
    human.assert_code(0);
    assert!(
        human.stdout.contains("the ledger and the target agree"),
        "{}",
        human.stdout
    );

    // The rebuild ran to now: the copies of later items it did not find
    // are written by the next sync, and only those.
    let missing = rebuilt["would_write"].as_array().map_or(0, Vec::len);
    let again = sync(&env, &window(SINCE, UNTIL));
    again.assert_code(0);
    assert_eq!(again.json()["written"], missing as u64);
    let after = read_archive(&root);
    assert!(before.iter().all(|(k, v)| after.get(k) == Some(v)));
    assert_eq!(after.len(), before.len() + missing);

    let gone = a_copy_file(&root);
    std::fs::remove_file(&gone).unwrap();
    let differs = ledger(&env, &["check", "--json"]);
    differs.assert_code(3);
    let differs = differs.json();
    let only = differs["ledger_only"].as_array().unwrap();
    assert_eq!(only.len(), 1, "{differs}");
    let name = gone.file_name().unwrap().to_str().unwrap();
    assert!(
        only[0]["location"].as_str().unwrap().ends_with(name),
        "{differs}"
    );
    assert!(differs["target_only"].as_array().unwrap().is_empty());
}

/// Some message file in a `cur/` directory of the tree.
fn a_copy_file(root: &Path) -> std::path::PathBuf {
    find_in_cur(root).unwrap_or_else(|| panic!("no message file under {}", root.display()))
}

fn find_in_cur(dir: &Path) -> Option<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries.into_iter().find_map(|path| {
        if path.file_name()? == "cur" {
            Some(std::fs::read_dir(&path).ok()?.next()?.ok()?.path())
        } else {
            find_in_cur(&path)
        }
    })
}
