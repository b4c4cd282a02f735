//! Operations an admin relies on under cron: the log file, the stale-run
//! flag in `status`.

use rusqlite::Connection;

use crate::bad_input::assert_clear_error;
use crate::support::TestEnv;
use crate::sync::{PASSWORD, SINCE, UNTIL, connector, simulator, sync};

#[test]
fn the_log_has_one_line_per_run_and_per_failure_and_no_secret() {
    let sim = simulator(40, |_| {});
    let purged = sim
        .dataset()
        .items_in_window(crate::sync::t(SINCE), crate::sync::t(UNTIL))
        .into_iter()
        .find(|i| !sim.dataset().expected_mailboxes(i, true, true).is_empty())
        .unwrap();
    sim.faults()
        .arm_spec(&format!("purge:{}", purged.id))
        .unwrap();
    let env = TestEnv::new();
    connector(&env, &sim, &[]);
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(3);
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    let log = std::fs::read_to_string(env.home.join("logs").join("sync.log")).unwrap();
    let runs: Vec<_> = log
        .lines()
        .filter(|l| l.contains(" run connector=c "))
        .collect();
    assert_eq!(runs.len(), 2, "{log}");
    assert!(runs[0].contains("failed=1"), "{log}");
    assert!(runs[1].contains("failed=0"), "{log}");
    let failures: Vec<_> = log.lines().filter(|l| l.contains(" failure ")).collect();
    assert_eq!(failures.len(), 1, "{log}");
    assert!(
        failures[0].contains(&format!("item={}", purged.id)),
        "{log}"
    );
    assert!(failures[0].contains("purged"), "{log}");
    assert!(!log.contains(PASSWORD));
}

#[test]
fn status_flags_a_connector_with_no_successful_run_in_26_hours() {
    let sim = simulator(10, |_| {});
    let env = TestEnv::new();
    connector(&env, &sim, &[]);
    let stale = |env: &TestEnv| {
        let status = env.run(["status", "--json"]);
        status.assert_code(0);
        status.json()["connectors"][0]["stale"].as_bool().unwrap()
    };
    assert!(stale(&env), "never synced");
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    assert!(!stale(&env), "just synced");
    let ledger = Connection::open(env.home.join("ledger.sqlite")).unwrap();
    let long_ago = (chrono::Utc::now() - chrono::Duration::hours(27)).to_rfc3339();
    ledger
        .execute("UPDATE runs SET finished_at = ?1", [&long_ago])
        .unwrap();
    assert!(stale(&env), "last success 27 hours ago");
    let human = env.run(["status"]);
    assert!(
        human
            .stdout
            .contains("no successful sync in the last 26 hours"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_ledger_from_a_newer_version_stops_sync_and_status_with_a_hint_and_is_not_touched() {
    let sim = simulator(10, |_| {});
    let env = TestEnv::new();
    connector(&env, &sim, &[]);
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    let file = env.home.join("ledger.sqlite");
    let ledger = Connection::open(&file).unwrap();
    ledger.pragma_update(None, "user_version", 99).unwrap();
    let copies = || -> i64 {
        ledger
            .query_row("SELECT count(*) FROM copies", [], |r| r.get(0))
            .unwrap()
    };
    let before = copies();

    for run in [
        sync(&env, &["--since", SINCE, "--until", UNTIL]),
        env.run(["status"]),
    ] {
        let path = file.display().to_string();
        let mentions = [
            path.as_str(),
            "newer wechat-archiver",
            "Hint: run the newer wechat-archiver",
        ];
        assert_clear_error(&run, 1, &mentions);
    }
    let version: i64 = ledger
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
    assert_eq!(copies(), before);
}
