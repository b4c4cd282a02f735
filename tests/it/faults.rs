//! Source-side faults: the real binary against the simulator with faults
//! armed. Each run either ends with every expected copy exactly once and
//! intact, or fails clearly (exit 1 or 3) and the next run repairs it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wechat_archiver::simulator::{SimConfig, Simulator, Stats};
use wechat_archiver::telemessage::Item;

use crate::support::{Run, TestEnv};
use crate::sync::{
    SINCE, UNTIL, assert_archive_exact, connector, expected_copies, read_archive, simulator,
    sync_with, t, tmp_files,
};

/// A simulator, a connector `c` on it, and its archive root.
struct Case {
    sim: Simulator,
    env: TestEnv,
    root: PathBuf,
}

impl Case {
    fn new(items: usize, tweak: impl FnOnce(&mut SimConfig)) -> Case {
        let sim = simulator(items, tweak);
        let env = TestEnv::new();
        let root = connector(&env, &sim, &[]);
        Case { sim, env, root }
    }

    fn arm(&self, spec: &str) {
        self.sim.faults().arm_spec(spec).unwrap();
    }

    /// `sync --json` over the test window with small pages and extra variables.
    fn sync(&self, vars: &[(&str, &str)]) -> Run {
        let mut all = vec![("WECHAT_ARCHIVER_PAGE_SIZE", "7")];
        all.extend_from_slice(vars);
        sync_with(
            &self.env,
            &["--since", SINCE, "--until", UNTIL, "--json"],
            &all,
        )
    }

    fn items(&self) -> Vec<Item> {
        self.sim.dataset().items_in_window(t(SINCE), t(UNTIL))
    }

    fn expected(&self) -> BTreeSet<(String, String)> {
        expected_copies(&self.sim, &self.items())
    }

    /// Every expected copy exactly once and intact, nothing in `tmp/`.
    #[track_caller]
    fn assert_exact(&self) {
        assert_archive_exact(&self.sim, &read_archive(&self.root), &self.expected());
        assert_eq!(
            tmp_files(&self.root),
            Vec::<PathBuf>::new(),
            "tmp/ leftovers"
        );
    }

    #[track_caller]
    fn assert_all_fired(&self) {
        let pending = self.sim.faults().pending();
        assert!(pending.is_empty(), "faults left unfired: {pending:?}");
    }

    fn status(&self) -> serde_json::Value {
        let run = self.env.run(["status", "--json"]);
        run.assert_code(0);
        run.json()["connectors"][0].clone()
    }
}

/// Runs a sync that must recover from the armed faults on its own: exit 0,
/// exact archive, every fault fired, nothing failed.
#[track_caller]
fn assert_recovers(case: &Case, vars: &[(&str, &str)]) -> Stats {
    let run = case.sync(vars);
    run.assert_code(0);
    case.assert_all_fired();
    case.assert_exact();
    let json = run.json();
    assert_eq!(json["failed"], 0, "{json}");
    assert_eq!(json["written"], case.expected().len(), "{json}");
    assert_eq!(json["listed"], case.items().len(), "{json}");
    case.sim.stats()
}

#[test]
fn a_429_storm_with_retry_after_in_seconds_is_waited_out_without_hammering() {
    // Stalled bodies keep downloads busy for a while, so a client that let
    // the other tasks go on during a Retry-After would be seen doing so.
    let case = Case::new(60, |_| {});
    case.arm("429x1@1s/token,429x2@1s/list,429x3@2s/content,slow-body:30@300ms");
    let started = Instant::now();
    let stats = assert_recovers(&case, &[]);
    assert_eq!(stats.fired("429"), 6);
    assert_eq!(
        stats.hammering_requests, 0,
        "requests arrived while a Retry-After was running: {stats:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "the 429s on the token and the listing alone announce 3 s of waiting"
    );
}

#[test]
fn a_429_storm_with_retry_after_as_an_http_date_is_waited_out_without_hammering() {
    let case = Case::new(60, |_| {});
    case.arm("retry-after-date,429x2@1s/list,429x3@2s/content,slow-body:30@300ms");
    let started = Instant::now();
    let stats = assert_recovers(&case, &[]);
    assert_eq!(stats.fired("429"), 5);
    assert_eq!(stats.hammering_requests, 0, "{stats:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[test]
fn a_retry_after_longer_than_ten_minutes_stops_the_run_at_once_and_the_next_run_repairs() {
    let case = Case::new(30, |_| {});
    case.arm("429x1@11m/content");
    let started = Instant::now();
    let run = case.sync(&[]);
    run.assert_code(1);
    // 11 minutes announced; anything near that is waiting.
    assert!(started.elapsed() < Duration::from_secs(120), "it waited");
    assert!(
        run.stderr.contains("Retry-After") && run.stderr.contains("Hint:"),
        "{}",
        run.stderr
    );
    assert!(case.status()["checkpoint"].is_null());
    assert_partial_archive_intact(&case);

    case.sim.faults().clear();
    case.sync(&[]).assert_code(0);
    case.assert_exact();
}

#[test]
fn bursts_of_5xx_on_every_endpoint_are_retried() {
    let case = Case::new(40, |_| {});
    case.arm("503x2/token,500x2/list,502x1/list,503x3/content,504x2/content,500x2/content");
    let stats = assert_recovers(&case, &[]);
    for code in ["500", "502", "503", "504"] {
        assert!(stats.fired(code) > 0, "{code} never fired: {stats:?}");
    }
}

#[test]
fn bodies_cut_off_mid_stream_resume_with_range_in_memory_and_spooled() {
    // Every third item is over 1 MiB, so it is spooled to a file.
    let case = Case::new(30, |c| {
        c.large_fraction = 0.3;
        c.large_size = (1_500_000, 2_500_000);
    });
    case.arm("drop-body:6@3000,drop-body:4@1200000");
    let stats = assert_recovers(&case, &[]);
    assert_eq!(stats.fired("drop-body"), 10);
    assert!(stats.range_requests >= 10, "no Range resume: {stats:?}");
    let spool = case.env.home.join("spool");
    let left: Vec<_> = crate::support::files_under(&spool);
    assert!(left.is_empty(), "spool files left behind: {left:?}");
}

#[test]
fn a_body_that_stalls_past_the_read_timeout_is_abandoned_and_resumed() {
    let case = Case::new(20, |_| {});
    case.arm("slow-body:2@300s");
    let started = Instant::now();
    let stats = assert_recovers(&case, &[("WECHAT_ARCHIVER_READ_TIMEOUT_SECONDS", "1")]);
    assert_eq!(stats.fired("slow-body"), 2);
    assert!(
        stats.range_requests >= 2,
        "a stalled body must be resumed where it stopped: {stats:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the client waited out a 300 s stall instead of timing out"
    );
}

#[test]
fn corrupt_content_is_retried_and_never_written() {
    let case = Case::new(40, |_| {});
    case.arm("corrupt:5");
    let stats = assert_recovers(&case, &[]);
    assert_eq!(stats.fired("corrupt"), 5);
}

#[test]
fn content_corrupt_on_every_attempt_fails_the_item_with_exit_3_and_the_next_run_repairs() {
    let case = Case::new(40, |_| {});
    let items = case.items();
    // Corrupt every body for a while: the retry budget runs out first.
    case.arm("corrupt:100000");
    let run = case.sync(&[("WECHAT_ARCHIVER_MAX_RETRY_SECONDS", "1")]);
    run.assert_code(3);
    let json = run.json();
    let mapped = items
        .iter()
        .filter(|i| {
            !case
                .sim
                .dataset()
                .expected_mailboxes(i, true, true)
                .is_empty()
        })
        .count();
    assert_eq!(json["failed"], mapped, "{json}");
    assert_eq!(json["written"], 0, "{json}");
    let reasons: Vec<&str> = json["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().all(|r| r.contains("SHA-256")), "{reasons:?}");
    assert!(
        read_archive(&case.root).is_empty(),
        "corrupt content was written"
    );
    assert!(tmp_files(&case.root).is_empty());
    let problems = case.status()["problems"].clone();
    assert!(problems.to_string().contains("SHA-256"), "{problems}");

    case.sim.faults().clear();
    let next = case.sync(&[]);
    next.assert_code(0);
    case.assert_exact();
    assert_eq!(next.json()["written"], case.expected().len());
}

#[test]
fn expired_tokens_are_renewed_and_the_call_repeated() {
    let case = Case::new(40, |_| {});
    case.arm("expire-token:4");
    let stats = assert_recovers(&case, &[]);
    assert_eq!(stats.fired("expire-token"), 4);
    assert!(stats.tokens_issued >= 5, "{stats:?}");
}

#[test]
fn expired_cursors_restart_the_listing_without_losing_or_doubling_items() {
    let case = Case::new(60, |_| {});
    case.arm("expire-cursor:3");
    let stats = assert_recovers(&case, &[]);
    assert_eq!(stats.fired("expire-cursor"), 3);
}

#[test]
fn duplicated_and_out_of_order_pages_are_deduplicated() {
    let case = Case::new(60, |_| {});
    case.arm("duplicate-pages:4,out-of-order-pages:4");
    let stats = assert_recovers(&case, &[]);
    assert_eq!(stats.fired("duplicate-pages"), 4);
    assert_eq!(stats.fired("out-of-order-pages"), 4);
}

#[test]
fn a_listing_that_is_not_json_is_retried() {
    let case = Case::new(40, |_| {});
    case.arm("bad-json:3");
    let stats = assert_recovers(&case, &[]);
    assert_eq!(stats.fired("bad-json"), 3);
}

#[test]
fn an_item_purged_after_listing_is_recorded_gone_once_and_not_failed_again() {
    let case = Case::new(40, |_| {});
    let purged = case
        .items()
        .into_iter()
        .find(|i| {
            !case
                .sim
                .dataset()
                .expected_mailboxes(i, true, true)
                .is_empty()
        })
        .unwrap();
    case.arm(&format!("purge:{}", purged.id));
    let run = case.sync(&[]);
    run.assert_code(3);
    let json = run.json();
    assert_eq!(json["failed"], 1, "{json}");
    assert_eq!(json["failures"][0]["item_id"], purged.id.as_str());
    assert!(
        json["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("purged"),
        "{json}"
    );
    let others: BTreeSet<_> = case
        .expected()
        .into_iter()
        .filter(|(_, id)| id != purged.id.as_str())
        .collect();
    assert_archive_exact(&case.sim, &read_archive(&case.root), &others);
    let problems = case.status()["problems"].clone();
    assert_eq!(problems[0]["item_id"], purged.id.as_str(), "{problems}");
    assert_eq!(problems[0]["state"], "gone", "{problems}");

    // The item stays purged; the same window again must not fail on it.
    let again = case.sync(&[]);
    again.assert_code(0);
    let again = again.json();
    assert_eq!(again["failed"], 0, "{again}");
    assert_eq!(again["written"], 0, "{again}");
    assert_eq!(
        case.sim.stats().fired("purge"),
        1,
        "the gone item was fetched again"
    );
    assert_archive_exact(&case.sim, &read_archive(&case.root), &others);
}

#[test]
fn a_source_that_stays_down_exits_1_records_nothing_and_the_next_run_repairs() {
    let case = Case::new(40, |_| {});
    case.arm("503x1000000/any");
    let started = Instant::now();
    let run = case.sync(&[("WECHAT_ARCHIVER_MAX_RETRY_SECONDS", "2")]);
    run.assert_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "retries were not bounded to the 2 s asked (the default is 300 s)"
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("503"), "{}", run.stderr);
    assert!(run.stderr.contains("Hint:"), "{}", run.stderr);
    assert!(read_archive(&case.root).is_empty());
    let status = case.status();
    assert!(status["checkpoint"].is_null(), "{status}");
    assert_eq!(status["last_run"]["outcome"], "failed", "{status}");
    assert_eq!(status["items"], serde_json::json!([]), "{status}");

    case.sim.faults().clear();
    let next = case.sync(&[]);
    next.assert_code(0);
    case.assert_exact();
    assert!(!case.status()["checkpoint"].is_null());
}

#[test]
fn content_that_stays_unavailable_fails_items_with_exit_3_and_the_next_run_retries_them() {
    let case = Case::new(40, |_| {});
    case.arm("503x1000000/content");
    let run = case.sync(&[("WECHAT_ARCHIVER_MAX_RETRY_SECONDS", "1")]);
    run.assert_code(3);
    let json = run.json();
    assert_eq!(json["written"], 0, "{json}");
    assert!(json["failed"].as_u64().unwrap() > 0, "{json}");
    let reasons = failure_reasons(&json);
    assert!(reasons.iter().all(|r| r.contains("503")), "{reasons:?}");
    assert!(read_archive(&case.root).is_empty());
    assert_eq!(failed_in_ledger(&case), json["failed"].as_u64().unwrap());

    case.sim.faults().clear();
    let next = case.sync(&[]);
    next.assert_code(0);
    case.assert_exact();
}

// Target side: the Maildir tree runs out of space or turns read-only.

/// A mount made for one test, undone when dropped (even on panic).
struct Mount {
    path: PathBuf,
}

impl Mount {
    fn run(args: &[&str], path: &Path) {
        let out = std::process::Command::new("mount")
            .args(args)
            .arg(path)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "`mount {} {}` failed: the target-side fault tests need root and mount(8) \
             (they run as root in CI): {}",
            args.join(" "),
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A tmpfs of `kib` KiB at `path` (created if missing).
    fn tmpfs(path: &Path, kib: u64) -> Mount {
        std::fs::create_dir_all(path).unwrap();
        Mount::run(
            &["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"],
            path,
        );
        Mount {
            path: path.to_owned(),
        }
    }

    /// `path` bound onto itself, read-only.
    fn read_only(path: &Path) -> Mount {
        Mount::run(&["--bind", path.to_str().unwrap()], path);
        let mount = Mount {
            path: path.to_owned(),
        };
        Mount::run(&["-o", "remount,bind,ro"], path);
        mount
    }

    fn remount(&self, options: &str) {
        Mount::run(&["-o", options], &self.path);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Every copy on disk is an expected one, there once and intact.
#[track_caller]
fn assert_partial_archive_intact(case: &Case) -> BTreeSet<(String, String)> {
    let archive = read_archive(&case.root);
    let found: BTreeSet<_> = archive.keys().cloned().collect();
    let expected = case.expected();
    let unexpected: Vec<_> = found.difference(&expected).collect();
    assert!(unexpected.is_empty(), "unexpected copies: {unexpected:?}");
    assert_archive_exact(&case.sim, &archive, &found);
    assert_eq!(
        tmp_files(&case.root),
        Vec::<PathBuf>::new(),
        "tmp/ leftovers"
    );
    found
}

fn failure_reasons(json: &serde_json::Value) -> Vec<String> {
    json["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap().to_owned())
        .collect()
}

fn failed_in_ledger(case: &Case) -> u64 {
    case.status()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0] == "failed")
        .map(|pair| pair[1].as_u64().unwrap())
        .sum()
}

#[test]
fn a_full_disk_fails_the_copies_that_do_not_fit_and_the_next_run_writes_them_once() {
    let sim = simulator(40, |_| {});
    let env = TestEnv::new();
    let items = sim.dataset().items_in_window(t(SINCE), t(UNTIL));
    // An item's further copies are hard links: each item is stored once.
    let stored: BTreeSet<String> = expected_copies(&sim, &items)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let need: u64 = stored
        .iter()
        .map(|id| sim.dataset().item(id).unwrap().size + 4096)
        .sum();
    // Room for about half of the copies.
    let disk = Mount::tmpfs(&env.path("archive"), need / 2 / 1024);
    let root = connector(&env, &sim, &[]);
    let case = Case { sim, env, root };
    // Unmounted before the test directory goes, even when an assertion fails.
    let disk = disk;

    let run = case.sync(&[]);
    run.assert_code(3);
    let json = run.json();
    let written = json["written"].as_u64().unwrap();
    assert!(written > 0, "nothing fitted: {json}");
    assert!(json["failed"].as_u64().unwrap() > 0, "{json}");
    let reasons = failure_reasons(&json);
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("No space left on device")),
        "{reasons:?}"
    );
    let on_disk = assert_partial_archive_intact(&case);
    assert_eq!(on_disk.len() as u64, written);
    assert_eq!(failed_in_ledger(&case), json["failed"].as_u64().unwrap());
    let problems = case.status()["problems"].to_string();
    assert!(problems.contains("No space left on device"), "{problems}");

    disk.remount("remount,size=65536k");
    let next = case.sync(&[]);
    next.assert_code(0);
    case.assert_exact();
    let next = next.json();
    assert_eq!(
        next["written"].as_u64().unwrap(),
        case.expected().len() as u64 - written,
        "{next}"
    );
    assert_eq!(failed_in_ledger(&case), 0);
}

#[test]
fn a_read_only_mailbox_fails_its_copies_with_exit_3_and_the_next_run_writes_them_once() {
    let case = Case::new(40, |_| {});
    let expected = case.expected();
    // The mailbox with the most copies turns read-only after its folder exists.
    let mut per_mailbox = std::collections::BTreeMap::<&str, usize>::new();
    for (mailbox, _) in &expected {
        *per_mailbox.entry(mailbox).or_default() += 1;
    }
    let (mailbox, copies) = per_mailbox.into_iter().max_by_key(|(_, n)| *n).unwrap();
    let folder = case.root.join(mailbox).join(".WeChat Archiver");
    for dir in [case.root.join(mailbox), folder.clone()] {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
    }
    std::fs::write(folder.join("maildirfolder"), b"").unwrap();
    let ro = Mount::read_only(&case.root.join(mailbox));

    let run = case.sync(&[]);
    run.assert_code(3);
    let json = run.json();
    assert_eq!(json["mailboxes"][mailbox]["failed"], copies, "{json}");
    assert_eq!(json["mailboxes"][mailbox]["written"], 0, "{json}");
    let reasons = failure_reasons(&json);
    assert!(
        reasons.iter().all(|r| r.contains("Read-only file system")),
        "{reasons:?}"
    );
    let on_disk = assert_partial_archive_intact(&case);
    assert_eq!(on_disk.len(), expected.len() - copies);
    assert!(on_disk.iter().all(|(m, _)| m != mailbox));
    assert_eq!(failed_in_ledger(&case), json["failed"].as_u64().unwrap());

    ro.remount("remount,bind,rw");
    let next = case.sync(&[]);
    next.assert_code(0);
    case.assert_exact();
    assert_eq!(next.json()["written"], copies);
    assert_eq!(failed_in_ledger(&case), 0);
}

#[test]
fn a_read_only_archive_stops_the_run_with_exit_1_before_anything_is_recorded() {
    let case = Case::new(30, |_| {});
    std::fs::create_dir_all(&case.root).unwrap();
    let ro = Mount::read_only(&case.root);
    let run = case.sync(&[]);
    run.assert_code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("Read-only file system") && run.stderr.contains("Hint:"),
        "{}",
        run.stderr
    );
    assert!(read_archive(&case.root).is_empty());
    let status = case.status();
    assert!(status["checkpoint"].is_null(), "{status}");
    assert_eq!(status["items"], serde_json::json!([]), "{status}");

    ro.remount("remount,bind,rw");
    case.sync(&[]).assert_code(0);
    case.assert_exact();
}

#[test]
fn a_full_home_stops_the_run_and_the_next_run_writes_no_copy_twice() {
    let sim = simulator(200, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    // The ledger lives in the home: give it room for a few dozen items
    // (its rows are small since only items to retry keep their metadata).
    let config = std::fs::read(env.home.join("config.toml")).unwrap();
    let full = Mount::tmpfs(&env.home, 200);
    std::fs::write(env.home.join("config.toml"), config).unwrap();
    let case = Case { sim, env, root };
    let full = full;

    let run = case.sync(&[]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("disk is full") && run.stderr.contains("Hint:"),
        "{}",
        run.stderr
    );
    let on_disk = assert_partial_archive_intact(&case).len() as u64;
    let recorded: u64 = case.status()["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["copies"].as_u64().unwrap())
        .sum();
    assert!(
        recorded < on_disk,
        "no copy was written without being recorded ({recorded} recorded, {on_disk} on disk)"
    );

    full.remount("remount,size=65536k");
    let next = case.sync(&[]);
    next.assert_code(0);
    case.assert_exact();
    let next = next.json();
    assert_eq!(
        next["written"].as_u64().unwrap() + next["already_archived"].as_u64().unwrap(),
        case.expected().len() as u64,
        "{next}"
    );
}
