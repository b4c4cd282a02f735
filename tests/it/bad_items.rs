//! Awkward items: messages that are not RFC 5322, empty ones, NUL and bare
//! CR/LF in headers, hostile attachment names and ids, a 200 MB item. Each
//! is archived byte for byte (Maildir takes any bytes) or recorded as
//! failed with the reason; nothing panics and nothing lands outside the
//! archive root.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wechat_archiver::simulator::{HandMade, Simulator};
use wechat_archiver::telemessage::model::{AttachmentInfo, ItemType};

use crate::support::{TestEnv, files_under};
use crate::sync::{
    SINCE, UNTIL, assert_archive_exact, connector, expected_copies, read_archive, simulator,
    sync_with, t, tmp_files,
};

const IN_WINDOW: &str = "2026-11-22T10:00:00Z";

fn item(id: &str, content: &[u8]) -> HandMade {
    HandMade {
        id: id.to_owned(),
        archived_at: t(IN_WINDOW),
        kind: ItemType::Chat,
        content: content.to_vec(),
        attachments: Vec::new(),
        conversation_title: "hand made".into(),
        sender_name: None,
        sender_unmapped: false,
    }
}

fn attachment(name: &str, size: u64) -> AttachmentInfo {
    AttachmentInfo {
        name: name.to_owned(),
        content_type: "application/octet-stream".into(),
        size,
    }
}

/// A multipart message with one part per attachment name, names as given.
fn multipart(names: &[&str], part: &[u8]) -> Vec<u8> {
    let mut m = b"From: Li Wei <li.wei@contoso.com>\r\nSubject: files\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        .to_vec();
    for name in names {
        m.extend_from_slice(
            format!(
                "--b\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
            )
            .as_bytes(),
        );
        m.extend_from_slice(part);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--b--\r\n");
    m
}

fn emoji(n: usize) -> String {
    "😀🧧🀄️".chars().cycle().take(n).collect()
}

/// Runs `sync --json` over the test window.
fn sync(env: &TestEnv) -> crate::support::Run {
    sync_with(
        env,
        &["--since", SINCE, "--until", UNTIL, "--json"],
        &[("WECHAT_ARCHIVER_PAGE_SIZE", "50")],
    )
}

/// Every file of the test directory is in the archive or the home, or is
/// the mapping file; archive files sit at `MAILBOX/[.FOLDER/]{cur,new,tmp}/`
/// or are a folder's `maildirfolder` marker.
#[track_caller]
fn assert_nothing_outside_the_archive(env: &TestEnv, root: &Path) {
    let top = env.dir.path();
    for file in files_under(top) {
        let rel = file.strip_prefix(top).unwrap();
        if rel.starts_with("home") || rel == Path::new("mapping.csv") {
            continue;
        }
        assert!(
            file.starts_with(root),
            "a file outside the archive root: {}",
            file.display()
        );
        let parts: Vec<String> = file
            .strip_prefix(root)
            .unwrap()
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let well_placed = match parts.as_slice() {
            [_, folder, sub, _] => {
                folder.starts_with('.') && ["cur", "new", "tmp"].contains(&sub.as_str())
            }
            [_, folder, marker] => folder.starts_with('.') && marker == "maildirfolder",
            _ => false,
        };
        assert!(well_placed, "an unexpected file: {}", file.display());
    }
}

#[test]
fn awkward_messages_are_archived_byte_for_byte_and_nothing_escapes_the_archive() {
    let mut zero_part = item("itm_zero_byte_attachment", &multipart(&["empty.bin"], b""));
    zero_part.attachments = vec![attachment("empty.bin", 0)];
    let hostile = [
        "../../etc/passwd",
        "..\\..\\Windows\\win.ini",
        "CON",
        "NUL.txt",
        "a/b:c*d?.pdf",
        &emoji(300),
    ];
    let mut names = item("itm_hostile_names", &multipart(&hostile, b"data"));
    names.kind = ItemType::File;
    names.attachments = hostile.iter().map(|n| attachment(n, 4)).collect();
    let mut injected = item(
        "itm_header_injection",
        b"Subject: nul\0in the middle\r\nX-Bare-CR: one\rtwo\r\nX-Bare-LF: one\ntwo\r\n\
X-8bit: \xff\xfe\xc3\r\nBcc: someone@evil.example\r\n\r\nbody with \0 NUL\r\n",
    );
    injected.sender_name = Some("Evil\r\nBcc: x@evil.example\0".into());
    injected.conversation_title = "title\r\nX-Injected: yes\0".into();
    let mut unknown = item("itm_unknown_type", b"Subject: sticker\r\n\r\n(sticker)\r\n");
    unknown.kind = ItemType::Other("sticker".into());
    let hand_made = vec![
        item(
            "itm_not_rfc5322",
            b"this is not a message\n\x00\x01\xff\xfe binary\r\r\n--\nno headers at all",
        ),
        item("itm_empty_content", b""),
        item(
            "itm_headers_only",
            b"From: li.wei@contoso.com\r\nSubject: empty body\r\n\r\n",
        ),
        item("itm_no_header_end", b"Subject: never ends"),
        zero_part,
        names,
        injected,
        unknown,
    ];
    let ids: BTreeSet<String> = hand_made.iter().map(|h| h.id.clone()).collect();
    let sim = simulator(20, |c| c.hand_made = hand_made);
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);

    let run = sync(&env);
    run.assert_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let items = sim.dataset().items_in_window(t(SINCE), t(UNTIL));
    let expected = expected_copies(&sim, &items);
    let archived: BTreeSet<String> = expected.iter().map(|(_, id)| id.clone()).collect();
    assert!(ids.is_subset(&archived), "{ids:?} not all expected");
    assert_archive_exact(&sim, &read_archive(&root), &expected);
    assert!(tmp_files(&root).is_empty());
    assert_nothing_outside_the_archive(&env, &root);
    let json = run.json();
    assert_eq!(json["written"], expected.len(), "{json}");
    assert!(
        json["unknown_values"]
            .to_string()
            .contains("itm_unknown_type: type sticker"),
        "{json}"
    );
    let status = env.run(["status", "--json"]);
    status.assert_code(0);
    status.json();
    sync(&env).assert_code(0);
    assert_archive_exact(&sim, &read_archive(&root), &expected);
}

#[test]
fn item_ids_with_url_specials_are_fetched_as_themselves() {
    let long = format!("itm_{}", "x".repeat(124));
    let odd = [
        "CON",
        "a%2Fb",
        "%41%00",
        "x?y#z",
        "back\\slash",
        "id with spaces",
        "..%2F..%2Fetc",
        ".hidden",
        "~user",
        long.as_str(),
    ];
    let hand_made = odd
        .iter()
        .map(|id| item(id, format!("Subject: {id}\r\n\r\nbody\r\n").as_bytes()))
        .collect();
    let sim = simulator(10, |c| c.hand_made = hand_made);
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let run = sync(&env);
    run.assert_code(0);
    let items = sim.dataset().items_in_window(t(SINCE), t(UNTIL));
    assert_archive_exact(&sim, &read_archive(&root), &expected_copies(&sim, &items));
    assert_nothing_outside_the_archive(&env, &root);
    let status = env.run(["status", "--json"]).json();
    assert_eq!(
        status["connectors"][0]["problems"],
        serde_json::json!([]),
        "{status}"
    );
}

#[test]
fn ids_that_no_url_can_carry_fail_with_the_reason_and_are_never_recorded_gone() {
    let hand_made = [".", ".."]
        .iter()
        .map(|id| item(id, b"Subject: dots\r\n\r\nbody\r\n"))
        .collect();
    let sim = simulator(10, |c| c.hand_made = hand_made);
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);
    let run = sync(&env);
    run.assert_code(3);
    let json = run.json();
    assert_eq!(json["failed"], 2, "{json}");
    for failure in json["failures"].as_array().unwrap() {
        let reason = failure["reason"].as_str().unwrap();
        assert!(reason.contains("cannot be requested"), "{reason}");
    }
    let items = sim.dataset().items_in_window(t(SINCE), t(UNTIL));
    let others: Vec<_> = items
        .into_iter()
        .filter(|i| ![".", ".."].contains(&i.id.as_str()))
        .collect();
    assert_archive_exact(&sim, &read_archive(&root), &expected_copies(&sim, &others));
    assert_nothing_outside_the_archive(&env, &root);
    let status = env.run(["status", "--json"]).json();
    let problems = &status["connectors"][0]["problems"];
    for p in problems.as_array().unwrap() {
        assert_eq!(p["state"], "failed", "{problems}");
    }
}

/// Peak resident memory of a process, read from `/proc` while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn sha256_file_from(path: &Path, offset: u64) -> (u64, String) {
    let mut file = std::fs::File::open(path).unwrap();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset)).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    (total, hex::encode(hasher.finalize()))
}

#[test]
fn a_200_mb_item_is_streamed_resumed_and_archived_intact_in_bounded_memory() {
    let sim: Simulator = simulator(1, |c| {
        c.large_fraction = 1.0;
        c.large_size = (200_000_000, 200_000_000);
        c.window_start = t(SINCE);
        c.window_end = t(UNTIL);
    });
    let item = sim.dataset().items().remove(0);
    assert!(item.size > 200_000_000);
    sim.faults().arm_spec("drop-body:1@120MB").unwrap();
    let env = TestEnv::new();
    let root = connector(&env, &sim, &[]);

    let started = Instant::now();
    let mut child = env
        .command(["sync", "--since", SINCE, "--until", UNTIL, "--json"])
        .env("WECHAT_ARCHIVER_PASSWORD", crate::sync::PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(peak_rss_kib(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(120), "sync hangs");
    }
    let run: crate::support::Run = child.wait_with_output().unwrap().into();
    run.assert_code(0);
    assert!(
        peak < 100 * 1024,
        "sync held {peak} KiB at its peak for a 200 MB item"
    );
    let stats = sim.stats();
    assert_eq!(stats.fired("drop-body"), 1);
    assert_eq!(stats.range_requests, 1, "{stats:?}");

    let expected = expected_copies(&sim, std::slice::from_ref(&item));
    assert!(!expected.is_empty());
    let files: Vec<PathBuf> = files_under(&root)
        .into_iter()
        .filter(|f| f.parent().is_some_and(|p| p.ends_with("cur")))
        .collect();
    assert_eq!(files.len(), expected.len(), "{files:?}");
    for file in &files {
        let header = format!(
            "X-WeChat-Archiver-Item-Id: {}\r\nX-WeChat-Archiver-Connector: c\r\n",
            item.id
        );
        let mut head = vec![0u8; header.len()];
        std::fs::File::open(file)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        assert_eq!(head, header.as_bytes());
        let (size, sha) = sha256_file_from(file, header.len() as u64);
        assert_eq!(size, item.size, "{}", file.display());
        assert_eq!(sha, item.sha256, "{}", file.display());
    }
    assert!(tmp_files(&root).is_empty());
    let spool = files_under(&env.home.join("spool"));
    assert!(spool.is_empty(), "spool files left: {spool:?}");
}
