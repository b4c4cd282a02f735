//! `verify` end to end on a real Maildir tree: a clean archive verifies,
//! and each kind of loss or tampering is detected and named.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::Value;
use wechat_archiver::simulator::Simulator;

use crate::support::{Run, TestEnv, files_under};
use crate::sync::{PASSWORD, SINCE, UNTIL, connector, simulator, sync, trace_headers};

mod graph;
mod imap;
mod recall;

/// A connector synced over the test window, with its archive root.
fn synced(items: usize) -> (Simulator, TestEnv, PathBuf) {
    let sim = simulator(items, |_| {});
    let env = TestEnv::new();
    let archive = connector(&env, &sim, &[]);
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    (sim, env, archive)
}

pub fn verify(env: &TestEnv, args: &[&str]) -> Run {
    let mut command = env.command(["verify", "--json"]);
    command.args(args).env("WECHAT_ARCHIVER_PASSWORD", PASSWORD);
    command.output().unwrap().into()
}

/// The findings of a report, as (kind, item, mailbox).
fn findings(report: &Value) -> Vec<(String, String, String)> {
    let field = |f: &Value, k: &str| f[k].as_str().unwrap_or("").to_owned();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (field(f, "kind"), field(f, "item"), field(f, "mailbox")))
        .collect()
}

/// The message files of the archive folders, with the item each holds.
fn copies(archive: &Path) -> Vec<(PathBuf, String)> {
    files_under(archive)
        .into_iter()
        .filter(|f| f.parent().is_some_and(|p| p.ends_with("cur")))
        .filter_map(|f| {
            let (item, _) = trace_headers(&std::fs::read(&f).unwrap())?;
            Some((f, item))
        })
        .collect()
}

/// The mailbox key of a copy's file (`<root>/<mailbox>/.<folder>/cur/<file>`).
fn mailbox_of(file: &Path) -> String {
    let dir = file.parent().unwrap().parent().unwrap().parent().unwrap();
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

#[track_caller]
fn assert_clean(run: &Run) -> Value {
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["outcome"], "ok", "{report:#}");
    assert!(findings(&report).is_empty(), "{report:#}");
    report
}

#[test]
fn a_clean_archive_verifies_with_every_copy_read_back_and_every_item_accounted_for() {
    let (_sim, env, archive) = synced(120);
    let report = assert_clean(&verify(&env, &[]));
    let written = copies(&archive).len() as u64;
    assert!(written > 50);
    assert_eq!(report["integrity"]["checked"], written);
    assert_eq!(report["integrity"]["intact"], written);
    assert_eq!(report["ledger"]["copies"], written);
    assert_eq!(report["chain"]["manifests"], 1);
    let listed = report["completeness"]["listed"].as_u64().unwrap();
    assert!(listed > 0, "the day before the checkpoint is listed again");

    let window = assert_clean(&verify(&env, &["--since", SINCE, "--until", UNTIL]));
    let c = &window["completeness"];
    let accounted = ["archived", "unmapped", "failed", "gone"]
        .iter()
        .map(|k| c[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(accounted, c["listed"].as_u64().unwrap(), "{c}");
    assert!(c["listed"].as_u64().unwrap() > listed);

    let sample = assert_clean(&verify(&env, &["--sample", "7"]));
    assert_eq!(sample["integrity"]["checked"], 7);

    let head = &report["chain"]["head"];
    let log = std::fs::read_to_string(env.home.join("logs/sync.log")).unwrap();
    let sha = head["sha256"].as_str().unwrap();
    assert!(log.contains(&format!("manifest_sha256={sha}")), "{log}");
    let manifest = env.home.join("manifests/c/000001.jsonl");
    assert_eq!(
        sha256sum(&manifest),
        sha,
        "the head is sha256sum of the newest manifest"
    );
    assert_clean(&verify(&env, &["--expect-head", sha]));

    let status = env.run(["status", "--json"]).json();
    let c = &status["connectors"][0];
    assert_eq!(c["manifest_head"]["sha256"], sha);
    assert_eq!(c["last_verify"]["outcome"], "ok");
    assert_eq!(c["last_verify"]["copies_checked"], written);
}

fn sha256sum(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn a_deleted_a_changed_and_a_moved_copy_are_each_named() {
    let (_sim, env, archive) = synced(60);
    use std::os::unix::fs::MetadataExt;
    // Further copies of an item are hard links to its first: changing one
    // changes them all, so the changed one must have no other link.
    let (single, linked): (Vec<_>, Vec<_>) = copies(&archive)
        .into_iter()
        .partition(|(f, _)| std::fs::metadata(f).unwrap().nlink() == 1);
    assert!(!single.is_empty(), "no item with a single copy");
    let files: Vec<_> = single.iter().chain(&linked).collect();
    let (changed, deleted, moved, reflagged) = (files[0], files[1], files[2], files[3]);
    std::fs::remove_file(&deleted.0).unwrap();
    let mut bytes = std::fs::read(&changed.0).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x20;
    std::fs::write(&changed.0, bytes).unwrap();
    let other = moved
        .0
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .with_file_name(".Trash");
    std::fs::create_dir_all(other.join("cur")).unwrap();
    std::fs::rename(
        &moved.0,
        other.join("cur").join(moved.0.file_name().unwrap()),
    )
    .unwrap();
    let seen = format!("{}T", reflagged.0.display());
    std::fs::rename(&reflagged.0, seen).unwrap();

    let run = verify(&env, &[]);
    run.assert_code(3);
    let report = run.json();
    let mut found = findings(&report);
    found.sort();
    let mut expected = vec![
        (
            "copy_gone".to_owned(),
            deleted.1.clone(),
            mailbox_of(&deleted.0),
        ),
        (
            "copy_altered".to_owned(),
            changed.1.clone(),
            mailbox_of(&changed.0),
        ),
        (
            "copy_moved".to_owned(),
            moved.1.clone(),
            mailbox_of(&moved.0),
        ),
    ];
    expected.sort();
    assert_eq!(found, expected, "{report:#}");
    assert_eq!(report["outcome"], "problems");
    assert_eq!(report["integrity"]["moved"], 1);
    let moved_detail = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "copy_moved")
        .unwrap()["detail"]
        .to_string();
    assert!(moved_detail.contains("Trash"), "{moved_detail}");

    let human = env
        .command(["verify"])
        .env("WECHAT_ARCHIVER_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let human = Run::from(human);
    human.assert_code(3);
    assert!(
        human
            .stdout
            .contains(&format!("copy_gone: item {}", deleted.1)),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("NOT VERIFIED"), "{}", human.stdout);
}

#[test]
fn an_item_telemessage_holds_that_the_ledger_lacks_is_named_missing() {
    let (sim, env, _archive) = synced(80);
    let ledger = Connection::open(env.home.join("ledger.sqlite")).unwrap();
    let synced_ids: Vec<String> = ledger
        .prepare("SELECT item_id FROM items")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let earlier = "2026-11-21T00:00:00Z";
    let run = verify(&env, &["--since", earlier, "--until", UNTIL]);
    run.assert_code(3);
    let report = run.json();
    let never_synced: Vec<String> = sim
        .dataset()
        .items_in_window(crate::sync::t(earlier), crate::sync::t(UNTIL))
        .into_iter()
        .map(|i| i.id.to_string())
        .filter(|id| !synced_ids.contains(id))
        .collect();
    assert!(!never_synced.is_empty());
    let mut missing: Vec<String> = findings(&report)
        .into_iter()
        .map(|(kind, item, _)| {
            assert_eq!(kind, "item_missing");
            item
        })
        .collect();
    missing.sort();
    let mut never_synced = never_synced;
    never_synced.sort();
    assert_eq!(missing, never_synced);
    assert_eq!(report["completeness"]["missing"], missing.len());
}

/// Three syncs, so the chain has a first, a middle and a head manifest.
fn three_runs() -> (Simulator, TestEnv, PathBuf) {
    let (sim, env, archive) = synced(60);
    for _ in 0..2 {
        sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    }
    assert_clean(&verify(&env, &[]));
    (sim, env, archive)
}

fn manifest(env: &TestEnv, seq: u32) -> PathBuf {
    env.home.join(format!("manifests/c/{seq:06}.jsonl"))
}

#[track_caller]
fn assert_named(run: &Run, kind: &str, manifest: &str) {
    run.assert_code(3);
    let report = run.json();
    let named = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == kind && f["manifest"] == manifest);
    assert!(named, "no {kind} naming {manifest}: {report:#}");
}

#[test]
fn a_manifest_deleted_or_edited_is_named() {
    let (_sim, env, _archive) = three_runs();
    let first = manifest(&env, 1);
    let text = std::fs::read_to_string(&first).unwrap();
    let edited = text.replacen("\"bytes\":", "\"bytes\":1", 1);
    std::fs::write(&first, &edited).unwrap();
    assert_named(&verify(&env, &[]), "manifest_altered", "000001.jsonl");
    std::fs::write(&first, &text).unwrap();
    assert_clean(&verify(&env, &[]));

    let head = manifest(&env, 3);
    let head_text = std::fs::read(&head).unwrap();
    std::fs::remove_file(&head).unwrap();
    assert_named(&verify(&env, &[]), "manifest_missing", "000003.jsonl");
    std::fs::write(&head, head_text).unwrap();

    std::fs::remove_file(manifest(&env, 2)).unwrap();
    assert_named(&verify(&env, &[]), "manifest_missing", "000002.jsonl");
}

#[test]
fn a_ledger_row_edited_or_deleted_is_named() {
    let (_sim, env, _archive) = three_runs();
    let ledger = Connection::open(env.home.join("ledger.sqlite")).unwrap();
    let (row, item, mailbox): (i64, String, String) = ledger
        .query_row(
            "SELECT c.id, i.item_id, c.mailbox FROM copies c JOIN items i ON i.id = c.item_ref LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    ledger
        .execute("UPDATE copies SET bytes = bytes + 1 WHERE id = ?1", [row])
        .unwrap();
    let run = verify(&env, &[]);
    run.assert_code(3);
    let found = findings(&run.json());
    assert!(
        found.contains(&("ledger_row_edited".into(), item.clone(), mailbox.clone())),
        "{found:?}"
    );
    ledger
        .execute("UPDATE copies SET bytes = bytes - 1 WHERE id = ?1", [row])
        .unwrap();
    assert_clean(&verify(&env, &[]));

    ledger
        .execute("DELETE FROM copies WHERE id = ?1", [row])
        .unwrap();
    let found = findings(&verify(&env, &[]).json());
    assert!(
        found.contains(&("ledger_row_deleted".into(), item.clone(), mailbox)),
        "{found:?}"
    );

    let unmapped: String = ledger
        .query_row(
            "SELECT item_id FROM items WHERE state = 'archived' AND item_id <> ?1 LIMIT 1",
            [&item],
            |r| r.get(0),
        )
        .unwrap();
    ledger
        .execute(
            "UPDATE items SET state = 'gone' WHERE item_id = ?1",
            [&unmapped],
        )
        .unwrap();
    let found = findings(&verify(&env, &[]).json());
    assert!(
        found.contains(&("ledger_row_edited".into(), unmapped, String::new())),
        "{found:?}"
    );
}
