//! Human output that scales with the organisation: `sync` and `status`
//! show totals and the mailboxes worth reading first, say how many more
//! there are, and keep every row in `--json` and `status --mailboxes`.

use std::collections::BTreeMap;

use crate::support::TestEnv;
use crate::sync::{SINCE, UNTIL, connector, simulator, sync};

/// Mailbox rows of the human tables: lines starting with `│ ` whose first
/// cell is an address.
fn mailbox_rows(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("│ "))
        .filter_map(|l| l.split('┆').next())
        .map(|cell| cell.trim().to_owned())
        .filter(|cell| cell.contains('@'))
        .collect()
}

fn more_line(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("... and "))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
}

/// Copies per mailbox, from `status --json`.
fn copies_per_mailbox(env: &TestEnv) -> BTreeMap<String, u64> {
    let status = env.run(["status", "--json"]);
    status.assert_code(0);
    status.json()["connectors"][0]["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_owned(),
                m["copies"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn sync_and_status_show_the_top_twenty_mailboxes_and_count_the_rest() {
    let sim = simulator(200, |_| {});
    let env = TestEnv::new();
    connector(&env, &sim, &[]);
    let run = sync(&env, &["--since", SINCE, "--until", UNTIL]);
    run.assert_code(0);
    let copies = copies_per_mailbox(&env);
    assert!(
        copies.len() > 20,
        "the test needs over 20 mailboxes: {copies:?}"
    );
    let hidden = copies.len() as u64 - 20;

    let shown = mailbox_rows(&run.stdout);
    assert_eq!(shown.len(), 20, "{}", run.stdout);
    assert_eq!(more_line(&run.stdout), Some(hidden), "{}", run.stdout);
    let least_shown = shown.iter().map(|m| copies[m]).min().unwrap();
    let most_hidden = copies
        .iter()
        .filter(|(m, _)| !shown.contains(m))
        .map(|(_, n)| *n)
        .max()
        .unwrap();
    assert!(least_shown >= most_hidden, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("[2026-11-21 06:00:00 UTC .. 2026-11-22 18:00:00 UTC)"),
        "{}",
        run.stdout
    );

    let status = env.run(["status", "--connector", "c"]);
    status.assert_code(0);
    assert_eq!(mailbox_rows(&status.stdout).len(), 20, "{}", status.stdout);
    assert_eq!(more_line(&status.stdout), Some(hidden), "{}", status.stdout);
    assert!(no_rfc3339(&status.stdout), "{}", status.stdout);

    let every = env.run(["status", "--connector", "c", "--mailboxes"]);
    every.assert_code(0);
    let listed = mailbox_rows(&every.stdout);
    assert_eq!(
        listed,
        copies.keys().cloned().collect::<Vec<_>>(),
        "{}",
        every.stdout
    );
    assert_eq!(more_line(&every.stdout), None, "{}", every.stdout);

    let json = sync(&env, &["--since", SINCE, "--until", UNTIL, "--json"]);
    json.assert_code(0);
    let rows = json.json()["mailboxes"].as_object().unwrap().len();
    assert_eq!(rows, copies.len());
}

/// No time in the human status carries a `T` separator or fractions of a
/// second: they read `2026-11-26 16:59:14 UTC`.
fn no_rfc3339(text: &str) -> bool {
    !text.split_whitespace().any(|w| {
        w.len() >= 19
            && w.as_bytes()[10] == b'T'
            && w.get(..4).is_some_and(|y| y.parse::<u32>().is_ok())
    })
}

#[test]
fn a_mailbox_with_failures_comes_first_however_few_its_copies() {
    let sim = simulator(200, |_| {});
    let env = TestEnv::new();
    let archive = connector(&env, &sim, &[]);
    let plan = sync(
        &env,
        &["--since", SINCE, "--until", UNTIL, "--dry-run", "--json"],
    );
    plan.assert_code(0);
    let mut planned = BTreeMap::<String, u64>::new();
    for copy in plan.json()["would_write"].as_array().unwrap() {
        *planned
            .entry(copy["mailbox"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(planned.len() > 20, "{planned:?}");
    let (smallest, _) = planned.iter().min_by_key(|(_, n)| **n).unwrap();
    // A file where the mailbox's directory belongs: every write into it fails.
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::write(archive.join(smallest), b"not a directory").unwrap();

    let run = sync(&env, &["--since", SINCE, "--until", UNTIL]);
    run.assert_code(3);
    let shown = mailbox_rows(&run.stdout);
    assert_eq!(shown.len(), 20, "{}", run.stdout);
    assert_eq!(&shown[0], smallest, "{}", run.stdout);
    assert!(run.stderr.contains(smallest.as_str()), "{}", run.stderr);
}

#[test]
fn a_dry_run_lists_twenty_copies_and_counts_the_rest() {
    let sim = simulator(200, |_| {});
    let env = TestEnv::new();
    connector(&env, &sim, &[]);
    let json = sync(
        &env,
        &["--since", SINCE, "--until", UNTIL, "--dry-run", "--json"],
    );
    let total = json.json()["would_write"].as_array().unwrap().len() as u64;
    let run = sync(&env, &["--since", SINCE, "--until", UNTIL, "--dry-run"]);
    run.assert_code(0);
    let listed = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("would write "))
        .count();
    assert_eq!(listed, 20, "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("... and {} more copies", total - 20)),
        "{}",
        run.stdout
    );
}
