use std::fs;
use std::path::Path;

use super::chain::{ChainProblemKind, check};
use super::*;

fn begin(run: i64) -> Begin {
    Begin {
        format: 0,
        connector: "c".into(),
        seq: 0,
        prev: String::new(),
        kind: "sync".into(),
        run_id: Some(run),
        started_at: "2026-11-23T00:00:00Z".into(),
        since: None,
        until: None,
        baseline_copies: Some(0),
    }
}

fn copy(item: &str) -> CopyLine {
    CopyLine {
        item: item.into(),
        mailbox: "li.wei@contoso.com".into(),
        location: format!("li/cur/{item}"),
        bytes: 10,
        sha256: Some("ab".repeat(32)),
    }
}

/// A chain of `n` manifests of two copies each.
fn chain(dir: &Path, n: i64) -> Vec<Head> {
    (1..=n)
        .map(|run| {
            let m = ManifestWriter::begin(dir, begin(run)).unwrap();
            m.copy(copy(&format!("a{run}"))).unwrap();
            m.copy(copy(&format!("b{run}"))).unwrap();
            m.item(&format!("a{run}"), "archived").unwrap();
            m.finish("ok", &serde_json::json!({"written": 2})).unwrap()
        })
        .collect()
}

fn kinds(dir: &Path, expect: Option<&str>) -> Vec<(ChainProblemKind, Option<String>)> {
    check(dir, "c", expect, |_, _| {})
        .unwrap()
        .problems
        .into_iter()
        .map(|p| (p.kind, p.manifest))
        .collect()
}

#[test]
fn a_chain_links_each_manifest_to_the_one_before_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let heads = chain(dir.path(), 3);
    assert_eq!(heads[2].seq, 3);
    assert_eq!(read_head(dir.path()), Some(heads[2].clone()));
    let second = fs::read_to_string(dir.path().join("000002.jsonl")).unwrap();
    let first_line: Line = serde_json::from_str(second.lines().next().unwrap()).unwrap();
    let Line::Begin(b) = first_line else {
        panic!("no begin line")
    };
    assert_eq!(b.prev, heads[0].sha256, "sha256sum of 000001.jsonl");
    assert_eq!(b.baseline_copies, None);
    let mut lines = 0;
    let report = check(dir.path(), "c", Some(&heads[0].sha256), |_, _| lines += 1).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.manifests, lines), (3, 15));
    assert_eq!(report.head, Some(heads[2].clone()));
}

#[test]
fn an_edited_manifest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    chain(dir.path(), 3);
    let path = dir.path().join("000002.jsonl");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"b2\"", "\"x2\"");
    fs::write(&path, text).unwrap();
    assert_eq!(
        kinds(dir.path(), None),
        [(
            ChainProblemKind::ManifestAltered,
            Some("000002.jsonl".into())
        )]
    );
    let path = dir.path().join("000003.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    let without_a_line: Vec<_> = text.lines().filter(|l| !l.contains("b3")).collect();
    fs::write(&path, without_a_line.join("\n") + "\n").unwrap();
    let found = kinds(dir.path(), None);
    assert!(
        found.contains(&(
            ChainProblemKind::ManifestAltered,
            Some("000003.jsonl".into())
        )),
        "{found:?}"
    );
}

#[test]
fn a_deleted_manifest_is_named_in_the_middle_and_at_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let heads = chain(dir.path(), 4);
    fs::remove_file(dir.path().join("000002.jsonl")).unwrap();
    assert_eq!(
        kinds(dir.path(), None),
        [(
            ChainProblemKind::ManifestMissing,
            Some("000002.jsonl".into())
        )]
    );
    fs::remove_file(dir.path().join("000004.jsonl")).unwrap();
    assert!(kinds(dir.path(), None).contains(&(
        ChainProblemKind::ManifestMissing,
        Some("000004.jsonl".into())
    )));
    fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
    let found = kinds(dir.path(), Some(&heads[3].sha256));
    assert!(
        found.contains(&(ChainProblemKind::HeadUnknown, None)),
        "{found:?}"
    );
    assert!(found.contains(&(ChainProblemKind::HeadMissing, Some("000003.jsonl".into()))));
}

#[test]
fn a_killed_runs_manifest_is_sealed_by_the_next_and_the_chain_holds() {
    let dir = tempfile::tempdir().unwrap();
    chain(dir.path(), 1);
    let killed = ManifestWriter::begin(dir.path(), begin(2)).unwrap();
    killed.copy(copy("k")).unwrap();
    killed.sync().unwrap();
    drop(killed);
    let partial = dir.path().join("000002.jsonl.partial");
    let mut torn = fs::read(&partial).unwrap();
    torn.extend_from_slice(b"{\"type\":\"copy\",\"item\":\"hal");
    fs::write(&partial, torn).unwrap();

    let next = ManifestWriter::begin(dir.path(), begin(3)).unwrap();
    assert_eq!(next.seq(), 3);
    next.finish("ok", &()).unwrap();
    let mut ends = Vec::new();
    let report = check(dir.path(), "c", None, |_, l| {
        if let Line::End(e) = l {
            ends.push((e.outcome, e.copies));
        }
    })
    .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        ends,
        [("ok".into(), 2), ("crashed".into(), 1), ("ok".into(), 0)]
    );
}
