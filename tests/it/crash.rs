//! Crash safety: `sync` dies at the debug build's crash points and at
//! random moments (SIGKILL), then runs again. Every expected copy must end
//! up in the Maildir exactly once and intact, no `tmp/` file may be left,
//! and the ledger must agree with what is on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wechat_archiver::faultpoint::{
    AFTER_DOWNLOAD, AFTER_RENAME, AFTER_TMP_WRITE, BEFORE_LEDGER_COMMIT, CRASH_AT_ENV,
    MID_TMP_WRITE,
};
use wechat_archiver::ledger::Ledger;
use wechat_archiver::simulator::Simulator;
use wechat_archiver::telemessage::Item;
use wechat_archiver::types::{ItemId, Mailbox};

use crate::support::{Run, TestEnv, files_under};
use crate::sync::{
    PASSWORD, SINCE, UNTIL, connector, expected_copies, read_copies, simulator, t, tmp_files,
    trace_headers,
};

/// The copies on disk written by one connector: (mailbox directory, item
/// id) to the bytes of every file holding that copy.
pub type Copies = crate::sync::Archive;

/// Checks that every copy on disk is an expected one, held by exactly one
/// file, byte-identical to the simulator's content after the trace
/// headers. With `complete`, also that none is missing.
#[track_caller]
pub fn assert_copies(
    sim: &Simulator,
    copies: &Copies,
    expected: &BTreeSet<(String, String)>,
    connector: &str,
    complete: bool,
) {
    let found: BTreeSet<_> = copies.keys().cloned().collect();
    let extra: Vec<_> = found.difference(expected).take(5).collect();
    assert!(extra.is_empty(), "unexpected copies (first 5): {extra:?}");
    if complete {
        let missing: Vec<_> = expected.difference(&found).take(5).collect();
        assert!(missing.is_empty(), "missing copies (first 5): {missing:?}");
    }
    let dataset = sim.dataset();
    for ((mailbox, id), files) in copies {
        assert_eq!(files.len(), 1, "{id} is in {mailbox} {} times", files.len());
        let original = dataset.content(id).expect("content");
        let mut header = format!(
            "X-WeChat-Archiver-Item-Id: {id}\r\nX-WeChat-Archiver-Connector: {connector}\r\n"
        );
        if let Some(original) = crate::sync::recalled_original(sim, id) {
            header.push_str(&format!(
                "In-Reply-To: {original}\r\nReferences: {original}\r\n"
            ));
        }
        let copy = &files[0];
        assert_eq!(
            copy.len(),
            header.len() + original.len(),
            "{id} in {mailbox} has the wrong length"
        );
        assert!(
            copy.starts_with(header.as_bytes()),
            "{id} in {mailbox}: bad headers"
        );
        assert!(
            copy[header.len()..] == original[..],
            "{id} in {mailbox} differs from the source"
        );
    }
}

/// Checks that the ledger records exactly the copies on disk: `copies_of`
/// of every item names the mailboxes that hold it, the per-mailbox totals
/// match, and each recorded location is that very file with its size.
#[track_caller]
pub fn assert_ledger_agrees(home: &Path, root: &Path, connector: &str, copies: &Copies) {
    let ledger = Ledger::open(&home.join("ledger.sqlite")).unwrap();
    let mut on_disk: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (mailbox, id) in copies.keys() {
        on_disk.entry(id).or_default().insert(mailbox.clone());
    }
    for (id, mailboxes) in &on_disk {
        let recorded: BTreeSet<String> = ledger
            .copies_of(connector, &ItemId::parse(id).unwrap())
            .unwrap()
            .iter()
            .map(|key| Mailbox::parse(key).unwrap().dir_name())
            .collect();
        assert_eq!(&recorded, mailboxes, "the ledger disagrees about {id}");
    }
    let mut per_mailbox: BTreeMap<String, u64> = BTreeMap::new();
    for (mailbox, _) in copies.keys() {
        *per_mailbox.entry(mailbox.clone()).or_default() += 1;
    }
    let totals: BTreeMap<String, u64> = ledger
        .mailbox_totals(connector)
        .unwrap()
        .into_iter()
        .map(|t| (Mailbox::parse(&t.key).unwrap().dir_name(), t.copies))
        .collect();
    assert_eq!(totals, per_mailbox, "ledger totals per mailbox");
    assert_recorded_copies_exist(home, root, connector);
}

/// The ledger is never ahead of the disk: each copy it records is there,
/// complete, at the location it names.
#[track_caller]
pub fn assert_recorded_copies_exist(home: &Path, root: &Path, connector: &str) {
    for (id, location, bytes) in recorded_locations(home, connector) {
        let file = root.join(&location);
        let content = std::fs::read(&file)
            .unwrap_or_else(|e| panic!("the ledger points {id} at {location}: {e}"));
        assert_eq!(content.len() as u64, bytes, "{location}: recorded size");
        assert_eq!(trace_headers(&content).map(|h| h.0), Some(id.clone()));
    }
}

/// (item id, location, bytes) of every copy the ledger holds.
fn recorded_locations(home: &Path, connector: &str) -> Vec<(String, String, u64)> {
    let db = rusqlite::Connection::open(home.join("ledger.sqlite")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT i.item_id, c.location, c.bytes FROM copies AS c \
             JOIN items AS i ON i.id = c.item_ref WHERE c.connector = ?1",
        )
        .unwrap();
    stmt.query_map([connector], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Every expected item the ledger does not hold as archived.
fn not_archived(
    home: &Path,
    connector: &str,
    expected: &BTreeSet<(String, String)>,
) -> Vec<String> {
    let ledger = Ledger::open(&home.join("ledger.sqlite")).unwrap();
    let ids: BTreeSet<&String> = expected.iter().map(|(_, id)| id).collect();
    ids.into_iter()
        .filter(|id| {
            let state = ledger
                .item_state(connector, &ItemId::parse(id).unwrap())
                .unwrap();
            state.is_none_or(|(s, _)| s != "archived")
        })
        .cloned()
        .collect()
}

/// The final verdict after a clean run: everything exact, nothing in
/// `tmp/`, the ledger in agreement and every item archived.
#[track_caller]
pub fn assert_all_settled(
    env: &TestEnv,
    sim: &Simulator,
    root: &Path,
    expected: &BTreeSet<(String, String)>,
) {
    let copies = read_copies(root, "c");
    assert_copies(sim, &copies, expected, "c", true);
    assert_eq!(
        tmp_files(root),
        Vec::<std::path::PathBuf>::new(),
        "tmp/ files left"
    );
    assert_ledger_agrees(&env.home, root, "c", &copies);
    assert_eq!(not_archived(&env.home, "c", expected), Vec::<String>::new());
}

fn window_args() -> Vec<&'static str> {
    vec!["--since", SINCE, "--until", UNTIL, "--json"]
}

/// `sync` with these arguments and extra environment variables.
fn sync_raw(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = env.command(["sync"]);
    cmd.args(args);
    cmd.env("WECHAT_ARCHIVER_PASSWORD", PASSWORD);
    cmd.envs(vars.iter().copied());
    cmd.output().unwrap()
}

/// `sync` of the test window with extra environment variables.
fn sync_env(env: &TestEnv, extra: &[&str], vars: &[(&str, &str)]) -> Output {
    sync_raw(env, &[window_args(), extra.to_vec()].concat(), vars)
}

/// `sync` of the test window with a crash point armed.
fn crash_at(env: &TestEnv, point: &str, n: usize) {
    crash_with(env, &window_args(), point, n);
}

/// `sync ARGS` with a crash point armed; checks it died there.
fn crash_with(env: &TestEnv, args: &[&str], point: &str, n: usize) {
    let armed = format!("{point}:{n}");
    let out = sync_raw(env, args, &[(CRASH_AT_ENV, &armed)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(6),
        "sync with {armed} did not abort ({:?})\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(&format!("crash point {point} reached")),
        "{stderr}"
    );
}

/// Copies on disk that the ledger does not know.
fn unrecorded(env: &TestEnv, root: &Path) -> usize {
    let recorded: BTreeSet<String> = recorded_locations(&env.home, "c")
        .into_iter()
        .map(|(_, location, _)| location)
        .collect();
    files_under(root)
        .iter()
        .filter(|f| {
            f.parent()
                .is_some_and(|p| p.ends_with("cur") || p.ends_with("new"))
        })
        .filter(|f| {
            let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            !recorded.contains(&rel)
        })
        .count()
}

fn in_window(sim: &Simulator) -> Vec<Item> {
    sim.dataset().items_in_window(t(SINCE), t(UNTIL))
}

/// One crash at `point` on its `n`-th pass, then a clean run.
fn crash_and_recover(sim: &Simulator, point: &str, n: usize) {
    let env = TestEnv::new();
    let root = connector(&env, sim, &[]);
    let expected = expected_copies(sim, &in_window(sim));
    crash_at(&env, point, n);

    let left = read_copies(&root, "c");
    assert_copies(sim, &left, &expected, "c", false);
    assert_recorded_copies_exist(&env.home, &root, "c");
    eprintln!(
        "{point}:{n}: {} of {} copies on disk, {} not in the ledger, {} tmp/ files",
        left.len(),
        expected.len(),
        unrecorded(&env, &root),
        tmp_files(&root).len()
    );
    match point {
        AFTER_TMP_WRITE => assert!(
            !tmp_files(&root).is_empty(),
            "{point}:{n} left no tmp/ file"
        ),
        AFTER_RENAME | BEFORE_LEDGER_COMMIT => assert!(
            unrecorded(&env, &root) > 0,
            "{point}:{n} left no copy the ledger does not know"
        ),
        _ => {}
    }

    let out = sync_env(&env, &[], &[]);
    let run = Run::from(out);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(
        json["written"],
        expected.len() - left.len(),
        "{point}:{n}: the crash left {} of {} copies on disk",
        left.len(),
        expected.len()
    );
    assert_eq!(json["already_archived"], left.len(), "{point}:{n}");
    assert_eq!(json["failed"], 0);
    eprintln!(
        "{point}:{n}: next run wrote {}, already archived {}",
        json["written"], json["already_archived"]
    );
    assert_all_settled(&env, sim, &root, &expected);
    assert_eq!(run_outcomes(&env), ["ok", "crashed"], "{point}:{n}");
}

/// The outcome of each run `status` shows, newest first.
fn run_outcomes(env: &TestEnv) -> Vec<String> {
    let status = env.run(["status", "--json"]);
    status.assert_code(0);
    status.json()["connectors"][0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect()
}

/// Crashes at `point` on the first pass, half-way, on the last pass, and
/// (with all items over 10 MB) on the second large copy.
fn crash_point_matrix(point: &str) {
    let sim = simulator(40, |_| {});
    let items = in_window(&sim);
    let expected = expected_copies(&sim, &items);
    // An item's further copies are hard links: one download and one tmp
    // write per item.
    let passes = if point == AFTER_DOWNLOAD || point == AFTER_TMP_WRITE {
        expected
            .iter()
            .map(|(_, id)| id)
            .collect::<BTreeSet<_>>()
            .len()
    } else {
        expected.len()
    };
    assert!(passes >= 10, "the window holds too few copies: {passes}");
    for n in [1, passes / 2, passes] {
        crash_and_recover(&sim, point, n);
    }
    let large = simulator(4, |c| c.large_fraction = 1.0);
    let big = in_window(&large);
    assert!(big.len() >= 2 && big.iter().all(|i| i.size > 10_000_000));
    crash_and_recover(&large, point, 2);
}

#[test]
fn a_crash_after_a_download_loses_and_duplicates_nothing() {
    crash_point_matrix(AFTER_DOWNLOAD);
}

#[test]
fn a_crash_after_the_tmp_write_leaves_no_tmp_file_after_the_next_run() {
    crash_point_matrix(AFTER_TMP_WRITE);
}

#[test]
fn a_copy_renamed_but_not_recorded_is_found_not_written_twice() {
    crash_point_matrix(AFTER_RENAME);
}

#[test]
fn a_crash_before_the_ledger_commit_is_repaired_without_duplicates() {
    crash_point_matrix(BEFORE_LEDGER_COMMIT);
}

/// A crash leaves copies the ledger does not know, then a run that does not
/// finish the window (`between`) comes and goes: the run after it must
/// still find those copies instead of writing them again.
fn unrecorded_copies_survive(between: impl FnOnce(&TestEnv, &Simulator)) {
    let sim = simulator(40, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let expected = expected_copies(&sim, &in_window(&sim));
    crash_at(&env, AFTER_RENAME, 5);
    let left = read_copies(&root, "c");
    assert!(unrecorded(&env, &root) > 0);
    between(&env, &sim);
    assert_eq!(read_copies(&root, "c"), left, "the run in between wrote");

    let run = Run::from(sync_env(&env, &[], &[]));
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["written"], expected.len() - left.len());
    assert_eq!(json["already_archived"], left.len());
    assert_all_settled(&env, &sim, &root, &expected);
}

#[test]
fn a_dry_run_after_a_crash_does_not_hide_unrecorded_copies() {
    unrecorded_copies_survive(|env, _| {
        Run::from(sync_env(env, &["--dry-run"], &[])).assert_code(0);
    });
}

#[test]
fn a_failed_run_after_a_crash_does_not_hide_unrecorded_copies() {
    unrecorded_copies_survive(|env, sim| {
        sim.faults().arm_spec("503x1000/list").unwrap();
        let run = Run::from(sync_env(
            env,
            &[],
            &[("WECHAT_ARCHIVER_MAX_RETRY_SECONDS", "0")],
        ));
        run.assert_code(1);
        sim.faults().clear();
    });
}

/// A window before any item: a run over it only retries the ledger's items.
const EMPTY_WINDOWS: [[&str; 5]; 2] = [
    [
        "--since",
        "2026-11-10T00:00:00Z",
        "--until",
        "2026-11-11T00:00:00Z",
        "--json",
    ],
    [
        "--since",
        "2026-11-12T00:00:00Z",
        "--until",
        "2026-11-13T00:00:00Z",
        "--json",
    ],
];

/// Items that failed are retried by later runs whatever their window; a
/// crash while retrying them leaves unrecorded copies that a run over
/// another window (which lists none of them) must still find.
#[test]
fn a_crash_while_retrying_failed_items_is_repaired_by_a_run_of_another_window() {
    let sim = simulator(40, |_| {});
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let expected = expected_copies(&sim, &in_window(&sim));
    let mut per_mailbox: BTreeMap<&str, usize> = BTreeMap::new();
    for (mailbox, _) in &expected {
        *per_mailbox.entry(mailbox).or_default() += 1;
    }
    let (blocked, copies) = per_mailbox.into_iter().max_by_key(|(_, n)| *n).unwrap();
    assert!(copies >= 3);
    let folder = root.join(blocked).join(".WeChat Archiver");
    std::fs::create_dir_all(folder.parent().unwrap()).unwrap();
    std::fs::write(&folder, "in the way").unwrap();
    let first = Run::from(sync_env(&env, &[], &[]));
    first.assert_code(3);
    assert_eq!(read_copies(&root, "c").len(), expected.len() - copies);
    std::fs::remove_file(&folder).unwrap();

    crash_with(&env, &EMPTY_WINDOWS[0], AFTER_RENAME, 1);
    let left = read_copies(&root, "c").len();
    assert!(unrecorded(&env, &root) > 0);
    let run = Run::from(sync_raw(&env, &EMPTY_WINDOWS[1], &[]));
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["listed"], 0);
    assert_eq!(
        json["written"],
        expected.len() - left,
        "retried copies already on disk were written again"
    );
    assert_all_settled(&env, &sim, &root, &expected);
}

/// The first run of a connector (the last 24 hours) is interrupted, as by
/// Ctrl-C; the next run's window starts a little later and must still find
/// what the first wrote without recording.
#[test]
fn a_first_run_killed_then_run_again_without_since_writes_nothing_twice() {
    let sim = simulator(80, |c| *c = c.clone().ending_now());
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    crash_with(&env, &["--json"], AFTER_RENAME, 8);
    let left: BTreeSet<_> = read_copies(&root, "c").into_keys().collect();
    assert!(unrecorded(&env, &root) > 0);

    let run = Run::from(sync_raw(&env, &["--json"], &[]));
    run.assert_code(0);
    let json = run.json();
    let (since, until) = (
        t(json["since"].as_str().unwrap()),
        t(json["until"].as_str().unwrap()),
    );
    let status = env.run(["status", "--json"]).json();
    let crashed = &status["connectors"][0]["runs"][1];
    assert_eq!(crashed["outcome"], "crashed");
    assert!(t(crashed["since"].as_str().unwrap()) < since);
    let expected = expected_copies(&sim, &sim.dataset().items_in_window(since, until));
    let already = expected.intersection(&left).count();
    assert_eq!(json["written"], expected.len() - already);
    assert_eq!(json["already_archived"], already);
    let copies = read_copies(&root, "c");
    let all: BTreeSet<_> = expected.union(&left).cloned().collect();
    assert_copies(&sim, &copies, &all, "c", true);
    assert!(tmp_files(&root).is_empty());
    assert_ledger_agrees(&env.home, &root, "c", &copies);
}

/// Seed of the random kill delays; `CRASH_TEST_SEED` replays a failure.
fn kill_seed() -> u64 {
    std::env::var("CRASH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de)
}

fn spawn_sync(env: &TestEnv) -> Child {
    let mut cmd = env.command(["sync"]);
    cmd.args(window_args());
    cmd.env("WECHAT_ARCHIVER_PASSWORD", PASSWORD);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd.spawn().unwrap()
}

/// Waits until `sync` has put a new copy on disk (a run past its start).
fn wait_for_a_new_copy(child: &mut Child, root: &Path, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while read_copies_count(root) <= before {
        assert!(child.try_wait().unwrap().is_none(), "sync ended early");
        assert!(Instant::now() < deadline, "sync wrote nothing in 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Files in `cur/` and `new/` (cheaper than reading them).
fn read_copies_count(root: &Path) -> usize {
    files_under(root)
        .iter()
        .filter(|f| {
            f.parent()
                .is_some_and(|p| p.ends_with("cur") || p.ends_with("new"))
        })
        .count()
}

/// A crash (the crash point between the two halves of a spooled body,
/// over 1 MiB) while the first large copy is half on disk: it must not be
/// visible in `cur/` or `new/`; what is on disk of it is a tmp file.
fn crash_while_a_large_copy_is_half_written(
    env: &TestEnv,
    sim: &Simulator,
    root: &Path,
    expected: &BTreeSet<(String, String)>,
) {
    crash_at(env, MID_TMP_WRITE, 1);
    assert_copies(sim, &read_copies(root, "c"), expected, "c", false);
    assert_recorded_copies_exist(&env.home, root, "c");
    let half_written = tmp_files(root).into_iter().any(|f| {
        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        len >= 500_000
    });
    assert!(half_written, "no half-written large copy in tmp/");
}

/// Crashes `sync` while a large copy is half written, then kills it with
/// SIGKILL eight times in a row, then lets a clean run finish. Odd rounds kill after a seeded random delay from the start
/// (often during start-up or the listing), even rounds a random moment
/// after the run's first new copy (mid-write). Slow bodies (300 ms each,
/// 16 in flight) bound the pace, so no round can finish the window; the
/// clean run goes at full speed.
#[test]
fn sigkill_at_random_moments_then_a_clean_run_ends_exact() {
    let seed = kill_seed();
    let sim = simulator(640, |c| c.large_fraction = 0.01);
    sim.faults().arm_spec("slow-body:100000@300ms").unwrap();
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let items = in_window(&sim);
    let expected = expected_copies(&sim, &items);
    assert!(items.iter().any(|i| i.size > 10_000_000));
    let mut rng = StdRng::seed_from_u64(seed);
    crash_while_a_large_copy_is_half_written(&env, &sim, &root, &expected);
    let mut cut_mid_run = 0;
    for round in 1..=8 {
        let before = read_copies_count(&root);
        let mut child = spawn_sync(&env);
        let started = Instant::now();
        let most = if round % 2 == 0 {
            wait_for_a_new_copy(&mut child, &root, before);
            500
        } else {
            1000
        };
        std::thread::sleep(Duration::from_millis(rng.random_range(0..most)));
        let alive = child.try_wait().unwrap().is_none();
        let at = started.elapsed();
        assert!(
            alive,
            "seed {seed}: round {round} ended before the kill at {at:?}"
        );
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(9));

        let left = read_copies(&root, "c");
        assert_copies(&sim, &left, &expected, "c", false);
        assert_recorded_copies_exist(&env.home, &root, "c");
        eprintln!(
            "seed {seed}: kill {round} at {at:?}: {} of {} copies on disk, {} not in the ledger, {} tmp/ files",
            left.len(),
            expected.len(),
            unrecorded(&env, &root),
            tmp_files(&root).len()
        );
        if left.len() > before && left.len() < expected.len() {
            cut_mid_run += 1;
        }
    }
    assert!(
        cut_mid_run >= 4,
        "seed {seed}: too few kills landed mid-run"
    );
    sim.faults().clear();

    let left = read_copies(&root, "c").len();
    let started = Instant::now();
    let run = Run::from(sync_env(&env, &[], &[]));
    run.assert_code(0);
    let json = run.json();
    eprintln!(
        "seed {seed}: the clean run wrote {}, found {} already archived, in {:?}",
        json["written"],
        json["already_archived"],
        started.elapsed()
    );
    assert_eq!(json["written"], expected.len() - left);
    assert_eq!(json["already_archived"], left);
    assert_all_settled(&env, &sim, &root, &expected);
    let outcomes = run_outcomes(&env);
    assert_eq!(outcomes[0], "ok");
    assert!(outcomes[1..].iter().all(|o| o == "crashed"), "{outcomes:?}");
}

/// A crash leaves spooled downloads (items over 1 MiB) behind; the next
/// run of the connector removes them, and a finished run leaves none.
#[test]
fn spooled_downloads_left_by_a_crash_are_removed_by_the_next_run() {
    let sim = simulator(40, |c| {
        c.large_fraction = 0.5;
        c.large_size = (1_500_000, 2_000_000);
    });
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    crash_at(&env, AFTER_DOWNLOAD, 3);
    let spool = env.home.join("spool").join("c");
    let left = files_under(&spool);
    assert!(
        !left.is_empty(),
        "the crash left no spooled download to clean"
    );
    let out = sync_env(&env, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files_under(&spool), Vec::<std::path::PathBuf>::new());
    let expected = expected_copies(&sim, &in_window(&sim));
    assert_eq!(read_copies_count(&root), expected.len());
}
