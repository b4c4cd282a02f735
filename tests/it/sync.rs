//! `sync` end to end: the real binary against the simulator on loopback,
//! into a real Maildir tree, checked copy by copy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use wechat_archiver::simulator::{SimConfig, Simulator};
use wechat_archiver::telemessage::Item;
use wechat_archiver::types::Mailbox;

use crate::support::{Run, TestEnv, files_under};

pub const PASSWORD: &str = "simulator-password";

/// The archive as found on disk: (mailbox directory, item id) to the
/// files holding that copy.
pub type Archive = BTreeMap<(String, String), Vec<Vec<u8>>>;

/// Reads every message file of a Maildir tree, keyed by mailbox directory
/// and the item id in its trace header.
pub fn read_archive(root: &Path) -> Archive {
    read_messages(root, |_| true)
}

/// Reads every message file of a Maildir tree whose trace header names
/// `connector`. A file in `cur/` or `new/` without the trace headers is a
/// partial or foreign message and fails the test.
pub fn read_copies(root: &Path, connector: &str) -> Archive {
    read_messages(root, |owner| owner == connector)
}

fn read_messages(root: &Path, keep: impl Fn(&str) -> bool) -> Archive {
    let mut archive = Archive::new();
    for file in files_under(root) {
        let rel = file.strip_prefix(root).unwrap();
        let parts: Vec<_> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.len() != 4 || !["cur", "new"].contains(&parts[2].as_str()) {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        let (id, owner) = trace_headers(&bytes)
            .unwrap_or_else(|| panic!("{} has no trace headers", file.display()));
        if keep(&owner) {
            archive
                .entry((parts[0].clone(), id))
                .or_default()
                .push(bytes);
        }
    }
    archive
}

/// The item id and connector named by a copy's first two lines.
pub fn trace_headers(bytes: &[u8]) -> Option<(String, String)> {
    let mut lines = bytes.split(|b| *b == b'\n');
    let mut field = |name: &str| {
        let line = String::from_utf8_lossy(lines.next()?).trim_end().to_owned();
        line.strip_prefix(name).map(str::to_owned)
    };
    let id = field("X-WeChat-Archiver-Item-Id: ")?;
    let connector = field("X-WeChat-Archiver-Connector: ")?;
    Some((id, connector))
}

/// The distinct files (inodes) holding messages in `cur/` or `new/`.
pub fn message_inodes(root: &Path) -> BTreeSet<u64> {
    use std::os::unix::fs::MetadataExt;
    files_under(root)
        .into_iter()
        .filter(|f| {
            f.parent()
                .is_some_and(|p| p.ends_with("cur") || p.ends_with("new"))
        })
        .map(|f| std::fs::metadata(f).unwrap().ino())
        .collect()
}

/// Files left in any `tmp/` directory (there must be none after a run).
pub fn tmp_files(root: &Path) -> Vec<std::path::PathBuf> {
    files_under(root)
        .into_iter()
        .filter(|f| f.parent().is_some_and(|p| p.ends_with("tmp")))
        .collect()
}

/// The copies the mapping rules call for: (mailbox directory, item id).
pub fn expected_copies(sim: &Simulator, items: &[Item]) -> BTreeSet<(String, String)> {
    let dataset = sim.dataset();
    let mut out = BTreeSet::new();
    for item in items {
        for mailbox in dataset.expected_mailboxes(item, true, true) {
            let dir = Mailbox::parse(&mailbox).unwrap().dir_name();
            out.insert((dir, item.id.to_string()));
        }
    }
    out
}

/// Checks every copy is there exactly once and byte-identical to the
/// simulator's content after the two trace headers.
#[track_caller]
pub fn assert_archive_exact(
    sim: &Simulator,
    archive: &Archive,
    expected: &BTreeSet<(String, String)>,
) {
    let found: BTreeSet<_> = archive.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&found).take(5).collect();
    let extra: Vec<_> = found.difference(expected).take(5).collect();
    assert!(missing.is_empty(), "missing copies (first 5): {missing:?}");
    assert!(extra.is_empty(), "unexpected copies (first 5): {extra:?}");
    let dataset = sim.dataset();
    for ((mailbox, id), copies) in archive {
        assert_eq!(
            copies.len(),
            1,
            "{id} is in {mailbox} {} times",
            copies.len()
        );
        let original = dataset.content(id).expect("content");
        let copy = &copies[0];
        let body_at = copy.len() - original.len();
        assert_eq!(
            &copy[body_at..],
            original.as_slice(),
            "{id} in {mailbox} differs"
        );
        let headers = String::from_utf8_lossy(&copy[..body_at]);
        let mut wanted =
            format!("X-WeChat-Archiver-Item-Id: {id}\r\nX-WeChat-Archiver-Connector: c\r\n");
        if let Some(original) = recalled_original(sim, id) {
            wanted.push_str(&format!(
                "In-Reply-To: {original}\r\nReferences: {original}\r\n"
            ));
        }
        assert_eq!(headers, wanted);
    }
}

/// The Message-ID of the original a recalled item names, when the
/// simulator has it: its copies link to it.
pub fn recalled_original(sim: &Simulator, id: &str) -> Option<String> {
    let item = sim.dataset().item(id)?;
    let original = item.recall?.original_item_id?;
    let content = sim.dataset().content(&original)?;
    wechat_archiver::telemessage::client::message_id_of(&content)
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A simulator whose items lie in the 48 hours before 2026-11-23.
pub fn simulator(items: usize, tweak: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut config = SimConfig {
        items,
        ..SimConfig::default()
    };
    tweak(&mut config);
    Simulator::start(config).expect("start the simulator")
}

/// A connector `c` on the simulator with the dataset's mapping CSV.
pub fn connector(env: &TestEnv, sim: &Simulator, extra: &[&str]) -> std::path::PathBuf {
    let csv = env.path("mapping.csv");
    sim.dataset().write_mapping_csv(&csv).unwrap();
    let csv = csv.display().to_string();
    let mut args = vec!["--mapping", csv.as_str()];
    args.extend_from_slice(extra);
    env.create_maildir_connector("c", &sim.url(), &args)
}

pub fn sync(env: &TestEnv, args: &[&str]) -> Run {
    sync_with(env, args, &[])
}

/// `sync` with extra environment variables.
pub fn sync_with(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut command = env.command(["sync"]);
    command.args(args).env("WECHAT_ARCHIVER_PASSWORD", PASSWORD);
    command.envs(vars.iter().copied());
    command.output().unwrap().into()
}

pub const SINCE: &str = "2026-11-21T06:00:00Z";
pub const UNTIL: &str = "2026-11-22T18:00:00Z";

fn in_window(sim: &Simulator) -> Vec<Item> {
    sim.dataset().items_in_window(t(SINCE), t(UNTIL))
}

#[test]
fn a_window_lands_every_expected_copy_exactly_once_and_intact() {
    let sim = simulator(160, |c| c.large_fraction = 0.02);
    let env = TestEnv::new();
    let archive_root = connector(&env, &sim, &[]);
    let run = sync(&env, &["--since", SINCE, "--until", UNTIL, "--json"]);
    run.assert_code(0);
    let json = run.json();

    let items = in_window(&sim);
    assert!(items.len() < 160, "the window must leave items out");
    assert!(
        items.iter().any(|i| i.size > 10_000_000),
        "no item over 10 MB in the window"
    );
    let expected = expected_copies(&sim, &items);
    let archive = read_archive(&archive_root);
    assert_archive_exact(&sim, &archive, &expected);
    assert!(tmp_files(&archive_root).is_empty());
    let items_stored = expected.iter().map(|(_, id)| id).collect::<BTreeSet<_>>();
    assert_eq!(
        message_inodes(&archive_root).len(),
        items_stored.len(),
        "an item's further copies must be hard links to its first"
    );

    let unmapped = items
        .iter()
        .filter(|i| sim.dataset().expected_mailboxes(i, true, true).is_empty())
        .count();
    assert_eq!(json["listed"], items.len());
    assert_eq!(json["written"], expected.len());
    assert_eq!(json["already_archived"], 0);
    assert_eq!(json["unmapped"], unmapped);
    assert_eq!(json["failed"], 0);
    let bytes: u64 = archive.values().map(|c| c[0].len() as u64).sum();
    assert_eq!(json["bytes_written"], bytes);
    assert_eq!(json["connector"], "c");
    let mailboxes = json["mailboxes"].as_object().unwrap();
    let written: u64 = mailboxes
        .values()
        .map(|m| m["written"].as_u64().unwrap())
        .sum();
    assert_eq!(written, expected.len() as u64);
}

#[test]
fn a_rerun_writes_nothing_and_status_reports_both_runs() {
    let sim = simulator(80, |_| {});
    let env = TestEnv::new();
    let archive_root = connector(&env, &sim, &[]);
    let first = sync(&env, &["--since", SINCE, "--until", UNTIL, "--json"]);
    first.assert_code(0);
    let before = read_archive(&archive_root);
    let second = sync(&env, &["--since", SINCE, "--until", UNTIL, "--json"]);
    second.assert_code(0);
    let (first, second) = (first.json(), second.json());
    assert_eq!(second["written"], 0);
    assert_eq!(second["already_archived"], first["written"]);
    assert_eq!(read_archive(&archive_root), before);

    let status = env.run(["status", "--json"]);
    status.assert_code(0);
    let status = status.json();
    let c = &status["connectors"][0];
    assert_eq!(c["name"], "c");
    assert_eq!(c["runs"].as_array().unwrap().len(), 2);
    assert_eq!(c["last_run"]["written"], 0);
    assert_eq!(c["runs"][1]["written"], first["written"]);
    let total: u64 = c["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["copies"].as_u64().unwrap())
        .sum();
    assert_eq!(total, first["written"].as_u64().unwrap());
    let human = env.run(["status"]);
    human.assert_code(0);
    assert!(human.stdout.contains("Mailboxes"), "{}", human.stdout);
    assert!(human.stdout.contains("Item types"), "{}", human.stdout);
}

#[test]
fn faults_on_the_source_side_still_end_exact_with_exit_0() {
    let sim = simulator(120, |c| c.large_fraction = 0.02);
    sim.faults()
        .arm_spec(
            "429x3@1s,503x2,500x1,drop-body:2@4096,corrupt:1,expire-token:1,expire-cursor:1,\
             duplicate-pages:2,out-of-order-pages:1,bad-json:1",
        )
        .unwrap();
    let env = TestEnv::new();
    let archive_root = connector(&env, &sim, &[]);
    let run = sync_with(
        &env,
        &["--since", SINCE, "--until", UNTIL, "--json"],
        &[("WECHAT_ARCHIVER_PAGE_SIZE", "15")],
    );
    run.assert_code(0);
    let expected = expected_copies(&sim, &in_window(&sim));
    assert_archive_exact(&sim, &read_archive(&archive_root), &expected);
    assert_eq!(run.json()["written"], expected.len());
    assert!(
        sim.faults().pending().is_empty(),
        "faults left unfired: {:?}",
        sim.faults().pending()
    );
}

#[test]
fn unmapped_items_go_to_the_fallback_mailbox_and_stay_unmapped_in_the_ledger() {
    let sim = simulator(150, |c| c.unmapped_fraction = 0.1);
    let env = TestEnv::new();
    let archive_root = connector(
        &env,
        &sim,
        &["--fallback-mailbox", "wechat-unmapped@contoso.com"],
    );
    let run = sync(&env, &["--since", SINCE, "--until", UNTIL, "--json"]);
    run.assert_code(0);
    let json = run.json();
    let items = in_window(&sim);
    let unmapped: BTreeSet<String> = items
        .iter()
        .filter(|i| sim.dataset().expected_mailboxes(i, true, true).is_empty())
        .map(|i| i.id.to_string())
        .collect();
    assert!(!unmapped.is_empty());
    assert_eq!(json["unmapped"], unmapped.len());
    let listed: BTreeSet<String> = json["unmapped_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, unmapped);
    let archive = read_archive(&archive_root);
    let in_fallback: BTreeSet<String> = archive
        .keys()
        .filter(|(m, _)| m == "wechat-unmapped@contoso.com")
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(in_fallback, unmapped);
    let status = env.run(["status", "--json"]).json();
    let items_by_state = &status["connectors"][0]["items"];
    assert!(
        items_by_state.to_string().contains("unmapped"),
        "{items_by_state}"
    );
    let second = sync(&env, &["--since", SINCE, "--until", UNTIL, "--json"]);
    second.assert_code(0);
    assert_eq!(
        second.json()["written"],
        0,
        "the fallback copy is not written twice"
    );
}

/// Unmapped items older than `UNMAPPED_RETRY_DAYS` wait in the ledger for
/// the mapping to change: retrying them on every run would make each run's
/// work grow with every unmapped item ever seen. A changed mapping file
/// delivers them; `--retry-unmapped` retries them at once.
#[test]
fn old_unmapped_items_are_retried_when_the_mapping_changes() {
    const OLD_SINCE: &str = "2026-10-01T00:00:00Z";
    const OLD_UNTIL: &str = "2026-10-03T00:00:00Z";
    let sim = simulator(150, |c| {
        c.unmapped_fraction = 0.1;
        (c.window_start, c.window_end) = (t(OLD_SINCE), t(OLD_UNTIL));
    });
    let env = TestEnv::new();
    let archive_root = connector(&env, &sim, &[]);
    let first = sync(
        &env,
        &["--since", OLD_SINCE, "--until", OLD_UNTIL, "--json"],
    );
    first.assert_code(0);
    let unmapped = first.json()["unmapped"].as_u64().unwrap();
    assert!(unmapped > 0);
    // A later window lists nothing: only retries are left to do.
    let later = [
        "--since",
        OLD_UNTIL,
        "--until",
        "2026-10-03T01:00:00Z",
        "--json",
    ];
    let unmapped_in = |run: &Run| {
        run.assert_code(0);
        run.json()["unmapped"].as_u64().unwrap()
    };

    let same_mapping = sync(&env, &[&later[..], &["-v"]].concat());
    assert_eq!(unmapped_in(&same_mapping), 0, "retried, same mapping");
    let hint = &same_mapping.stderr;
    assert!(hint.contains("--retry-unmapped"), "{hint}");
    let forced = sync(&env, &[&later[..], &["--retry-unmapped"]].concat());
    assert_eq!(unmapped_in(&forced), unmapped);

    let (item, mobile) = sim
        .dataset()
        .items_in_window(t(OLD_SINCE), t(OLD_UNTIL))
        .into_iter()
        .filter(|i| sim.dataset().expected_mailboxes(i, true, true).is_empty())
        .find_map(|i| {
            let mobile = i.parties().find_map(|p| p.mobile.clone())?;
            Some((i.id.to_string(), mobile))
        })
        .expect("an unmapped item with a mobile number");
    let csv = env.path("mapping.csv");
    let mut rows = std::fs::read_to_string(&csv).unwrap();
    rows.push_str(&format!("{mobile},compliance.review@contoso.com\n"));
    std::fs::write(&csv, rows).unwrap();
    let remapped = sync(&env, &later);
    assert!(unmapped_in(&remapped) < unmapped);
    assert!(remapped.json()["written"].as_u64().unwrap() >= 1);
    let archive = read_archive(&archive_root);
    let key = ("compliance.review@contoso.com".to_owned(), item.clone());
    assert!(archive.contains_key(&key), "{item} was not delivered");

    let after = sync(&env, &later);
    assert_eq!(unmapped_in(&after), 0, "retried again, same mapping");
}

/// Unmapped items of the last days are retried by every run: a new
/// user's mailbox often appears after their first messages.
#[test]
fn recent_unmapped_items_are_retried_by_every_run() {
    let end = Utc::now() - Duration::hours(1);
    let start = end - Duration::hours(24);
    let sim = simulator(80, |c| {
        c.unmapped_fraction = 0.1;
        (c.window_start, c.window_end) = (start, end);
    });
    let env = TestEnv::new();
    connector(&env, &sim, &[]);
    let (since, until) = (start.to_rfc3339(), end.to_rfc3339());
    let first = sync(&env, &["--since", &since, "--until", &until, "--json"]);
    first.assert_code(0);
    let unmapped = first.json()["unmapped"].as_u64().unwrap();
    assert!(unmapped > 0);

    let later = (end + Duration::minutes(30)).to_rfc3339();
    let again = sync(&env, &["--since", &until, "--until", &later, "--json"]);
    again.assert_code(0);
    assert_eq!(again.json()["unmapped"].as_u64().unwrap(), unmapped);
}

#[test]
fn dry_run_lists_what_it_would_write_and_writes_nothing() {
    let sim = simulator(60, |_| {});
    let env = TestEnv::new();
    let archive_root = connector(&env, &sim, &[]);
    let run = sync(
        &env,
        &["--since", SINCE, "--until", UNTIL, "--dry-run", "--json"],
    );
    run.assert_code(0);
    let json = run.json();
    let expected = expected_copies(&sim, &in_window(&sim));
    assert_eq!(
        json["would_write"].as_array().unwrap().len(),
        expected.len()
    );
    assert_eq!(json["written"], 0);
    assert!(read_archive(&archive_root).is_empty());
    let real = sync(&env, &["--since", SINCE, "--until", UNTIL, "--json"]);
    assert_eq!(real.json()["written"], expected.len());
}

#[test]
fn without_since_the_first_run_takes_a_day_and_the_next_continues_from_the_checkpoint() {
    let sim = simulator(60, |c| *c = c.clone().ending_now());
    let env = TestEnv::new();
    let archive_root = connector(&env, &sim, &[]);
    let first = sync(&env, &["--json"]);
    first.assert_code(0);
    let first = first.json();
    let (since, until) = (
        t(first["since"].as_str().unwrap()),
        t(first["until"].as_str().unwrap()),
    );
    assert_eq!(until - since, Duration::hours(24));
    assert!((Utc::now() - until).num_seconds().abs() < 120);
    let day = sim.dataset().items_in_window(since, until);
    assert_archive_exact(
        &sim,
        &read_archive(&archive_root),
        &expected_copies(&sim, &day),
    );
    let second = sync(&env, &["--json"]);
    second.assert_code(0);
    let second = second.json();
    assert_eq!(second["written"], 0);
    let next_since = t(second["since"].as_str().unwrap());
    assert_eq!(next_since, until - Duration::minutes(10));
}
