//! Overlapping runs, as cron makes them: a second `sync` of a connector
//! that is still running exits 4 at once and names the holder; a killed
//! run's lock never blocks the next; different connectors run side by side.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use wechat_archiver::simulator::Simulator;

use crate::crash::{assert_copies, assert_ledger_agrees};
use crate::support::{Run, TestEnv};
use crate::sync::read_copies;
use crate::sync::{PASSWORD, SINCE, UNTIL, expected_copies, simulator, t, tmp_files};

/// A simulator whose content bodies each stall `stall` half-way, so a
/// run lasts long enough to be overlapped.
fn slow_simulator(items: usize, seed: u64, stall: &str) -> Simulator {
    let sim = simulator(items, |c| c.seed = seed);
    sim.faults()
        .arm_spec(&format!("slow-body:100000@{stall}"))
        .unwrap();
    sim
}

/// Creates connector `name` on `sim`, writing into the shared archive.
fn create(env: &TestEnv, name: &str, sim: &Simulator) -> std::path::PathBuf {
    let csv = env.path(&format!("{name}-mapping.csv"));
    sim.dataset().write_mapping_csv(&csv).unwrap();
    let csv = csv.display().to_string();
    env.create_maildir_connector(name, &sim.url(), &["--mapping", &csv])
}

fn sync_args(name: &str) -> Vec<&str> {
    vec![
        "sync",
        "--connector",
        name,
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--json",
    ]
}

fn spawn_sync(env: &TestEnv, name: &str) -> Child {
    env.command(sync_args(name))
        .env("WECHAT_ARCHIVER_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run_sync(env: &TestEnv, name: &str) -> Run {
    env.command(sync_args(name))
        .env("WECHAT_ARCHIVER_PASSWORD", PASSWORD)
        .output()
        .unwrap()
        .into()
}

fn lock_file(env: &TestEnv, name: &str) -> std::path::PathBuf {
    env.home.join("locks").join(format!("{name}.lock"))
}

/// Whether the connector's lock file names this process. The stamp is
/// written only once the lock is taken, so a live process named there
/// holds the lock.
fn lock_names(env: &TestEnv, name: &str, pid: u32) -> bool {
    std::fs::read_to_string(lock_file(env, name)).is_ok_and(|s| s.contains(&format!("pid {pid} ")))
}

/// Waits until `ready` holds while every child is still running.
fn wait_while_running(children: &mut [&mut Child], mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for child in children.iter_mut() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("sync ended too early ({status:?})");
            }
        }
        if ready() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn finish(child: Child) -> Run {
    child.wait_with_output().unwrap().into()
}

/// Every expected copy of `sim` exactly once under `connector`, nothing
/// in `tmp/`, and a ledger that agrees.
#[track_caller]
fn assert_exact(env: &TestEnv, sim: &Simulator, root: &Path, connector: &str) {
    let items = sim.dataset().items_in_window(t(SINCE), t(UNTIL));
    let expected = expected_copies(sim, &items);
    let copies = read_copies(root, connector);
    assert_copies(sim, &copies, &expected, connector, true);
    assert!(tmp_files(root).is_empty(), "{:?}", tmp_files(root));
    assert_ledger_agrees(&env.home, root, connector, &copies);
}

fn outcomes(env: &TestEnv) -> Vec<String> {
    let status = env.run(["status", "--connector", "c", "--json"]);
    status.assert_code(0);
    status.json()["connectors"][0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_second_sync_of_a_running_connector_exits_4_at_once_naming_the_holder() {
    // Each body stalls 15 s, so the first run holds its lock for at least
    // that long after it took it: the second run, which must not wait for
    // it, is over long before, however slow the machine.
    let sim = slow_simulator(120, 42, "15s");
    let env = TestEnv::new();
    let root = create(&env, "c", &sim);
    let mut first = spawn_sync(&env, "c");
    let pid = first.id();
    wait_while_running(&mut [&mut first], || lock_names(&env, "c", pid));

    let second = run_sync(&env, "c");
    assert!(
        first.try_wait().unwrap().is_none(),
        "the second run waited for the first to finish"
    );
    second.assert_code(4);
    sim.faults().clear();
    let holder = format!("pid {}", first.id());
    assert!(
        second.stderr.contains(&holder) && second.stderr.contains("'c'"),
        "the message does not name the holder ({holder}):\n{}",
        second.stderr
    );
    assert!(second.stdout.trim().is_empty(), "{}", second.stdout);

    finish(first).assert_code(0);
    assert_exact(&env, &sim, &root, "c");
    assert_eq!(
        outcomes(&env),
        ["ok"],
        "the refused run recorded a run or marked the live one crashed"
    );
}

#[test]
fn a_lock_left_by_a_killed_sync_never_blocks_the_next() {
    let sim = slow_simulator(120, 42, "300ms");
    let env = TestEnv::new();
    let root = create(&env, "c", &sim);
    let mut killed = spawn_sync(&env, "c");
    let dead = killed.id();
    wait_while_running(&mut [&mut killed], || {
        lock_names(&env, "c", dead) && !read_copies(&root, "c").is_empty()
    });
    killed.kill().unwrap();
    assert_eq!(killed.wait().unwrap().signal(), Some(9));
    let stale = std::fs::read_to_string(lock_file(&env, "c")).unwrap();
    assert!(
        stale.contains(&format!("pid {dead} ")),
        "the lock file should still name the killed run: {stale:?}"
    );

    sim.faults().clear();
    let next = spawn_sync(&env, "c");
    let pid = next.id();
    let next = finish(next);
    next.assert_code(0);
    let lock = std::fs::read_to_string(lock_file(&env, "c")).unwrap();
    assert!(lock.contains(&format!("pid {pid} ")), "{lock:?}");
    assert_exact(&env, &sim, &root, "c");
    assert_eq!(outcomes(&env), ["ok", "crashed"]);
}

#[test]
fn two_connectors_sync_in_parallel_from_one_home_into_one_archive() {
    let sim_a = slow_simulator(60, 1, "300ms");
    let sim_b = slow_simulator(60, 2, "300ms");
    let ids_a: std::collections::BTreeSet<_> = sim_a.dataset().ids().into_iter().collect();
    assert!(sim_b.dataset().ids().iter().all(|id| !ids_a.contains(id)));
    let env = TestEnv::new();
    let root = create(&env, "a", &sim_a);
    assert_eq!(create(&env, "b", &sim_b), root);

    let mut a = spawn_sync(&env, "a");
    let mut b = spawn_sync(&env, "b");
    let (pid_a, pid_b) = (a.id(), b.id());
    wait_while_running(&mut [&mut a, &mut b], || {
        lock_names(&env, "a", pid_a) && lock_names(&env, "b", pid_b)
    });
    let (a, b) = (finish(a), finish(b));
    a.assert_code(0);
    b.assert_code(0);
    assert_exact(&env, &sim_a, &root, "a");
    assert_exact(&env, &sim_b, &root, "b");
    assert!(a.json()["written"].as_u64().unwrap() > 0);
    assert!(b.json()["written"].as_u64().unwrap() > 0);
}
