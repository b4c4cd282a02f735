//! The IMAP writer against a real Cyrus IMAP (Debian's, an admin acting
//! for users through `proxyservers`), in both namespace modes: with
//! `altnamespace: no` personal folders live under `INBOX/` and a top-level
//! name is a shared folder; with `yes` they sit beside INBOX.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{MailboxWriter, WriteError};
use wechat_archiver::secrets::Secret;

use super::proxy::CutProxy;
use super::*;
use crate::support::cyrus::{ADMIN, ADMIN_PASSWORD, Cyrus, Fetched};

fn cyrus_writer(port: u16, max_connections: usize) -> ImapWriter {
    let mut config = ImapConfig::new(false, "127.0.0.1", port, ADMIN, FOLDER);
    config.max_connections = max_connections;
    ImapWriter::new(config, Secret::new(ADMIN_PASSWORD)).expect("writer")
}

async fn read_back(cyrus: &Arc<Cyrus>, user: &str) -> Option<Vec<Fetched>> {
    let (cyrus, user) = (cyrus.clone(), user.to_owned());
    tokio::task::spawn_blocking(move || cyrus.fetch_all(&user, FOLDER))
        .await
        .expect("reader task")
}

/// Writes one by one and 30 at once (sharing MULTIAPPENDs), then reads
/// every copy back from the folder in the user's personal namespace.
async fn every_copy_lands_once_in_the_personal_namespace(altnamespace: bool) {
    let cyrus = Arc::new(Cyrus::start(&[LI, ZHANG], altnamespace));
    let writer = Arc::new(cyrus_writer(cyrus.port, 64));
    let mut locations = Vec::new();
    for user in [LI, ZHANG] {
        let written = write_message(
            &writer,
            &mailbox(user),
            "itm_one",
            "2026-11-22T08:15:00Z",
            4_000,
        )
        .await
        .unwrap_or_else(|e| panic!("{user}: {e}"));
        locations.push((user.to_owned(), "itm_one".to_owned(), written.location));
    }
    for (id, result) in write_concurrently(&writer, LI, 30, 3_000).await {
        let written = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        locations.push((LI.to_owned(), id, written.location));
    }
    for user in [LI, ZHANG] {
        let stored = read_back(&cyrus, user)
            .await
            .unwrap_or_else(|| panic!("{user}: no {:?} folder", cyrus.personal(FOLDER)));
        let wanted: Vec<&(String, String, String)> =
            locations.iter().filter(|(u, _, _)| u == user).collect();
        assert_eq!(stored.len(), wanted.len(), "{user}: every copy once");
        for (_, id, location) in wanted {
            let copy = stored
                .iter()
                .find(|m| m.item_id().as_deref() == Some(id))
                .unwrap_or_else(|| panic!("{user}: {id} not stored"));
            let size = if id == "itm_one" { 4_000 } else { 3_000 };
            assert!(
                copy.body == expected_bytes(id, "contoso", &message(id, size)),
                "{user} {id}: bytes"
            );
            assert!(copy.flags.iter().any(|f| f == "\\Seen"), "{id}: flags");
            assert_eq!(*location, format!("{}:{}", copy.uid_validity, copy.uid));
        }
    }
    let folders = cyrus.folders(LI);
    assert!(
        folders.contains(&cyrus.personal(FOLDER)),
        "{:?} not among {folders:?}",
        cyrus.personal(FOLDER)
    );
    let it = item("itm_005", "2026-11-22T08:15:00Z", 3_000);
    let found = writer
        .find_existing(&mailbox(LI), &it)
        .await
        .expect("search")
        .expect("found by its trace header");
    assert!(
        locations
            .iter()
            .any(|(u, i, l)| u == LI && i == "itm_005" && *l == found.location)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyrus_without_altnamespace_gets_every_copy_once_under_inbox() {
    every_copy_lands_once_in_the_personal_namespace(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyrus_with_altnamespace_gets_every_copy_once_beside_inbox() {
    every_copy_lands_once_in_the_personal_namespace(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_cyrus_has_no_mailbox_for_is_not_a_user() {
    for altnamespace in [false, true] {
        let cyrus = Cyrus::start(&[LI], altnamespace);
        let writer = cyrus_writer(cyrus.port, 64);
        assert!(writer.is_valid_user(&mailbox(LI)).await.expect("check"));
        let nobody = mailbox("nobody.here@contoso.com");
        assert!(
            !writer.is_valid_user(&nobody).await.expect("check"),
            "Cyrus lets the admin act as anyone; that is not a mailbox"
        );
        let err = write_message(&writer, &nobody, "itm_x", "2026-11-22T08:15:00Z", 100)
            .await
            .expect_err("no mailbox");
        let WriteError::Mailbox { mailbox, reason } = &err else {
            panic!("expected a mailbox error, got {err:?}")
        };
        assert_eq!(mailbox, "nobody.here@contoso.com");
        assert!(reason.contains("no personal folders"), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_on_cyrus_is_the_copys_failure_reason() {
    let cyrus = Arc::new(Cyrus::start(&[LI], false));
    cyrus.forbid_creating_folders(LI);
    let writer = cyrus_writer(cyrus.port, 64);
    let err = write_message(
        &writer,
        &mailbox(LI),
        "itm_a",
        "2026-11-22T08:15:00Z",
        1_000,
    )
    .await
    .expect_err("CREATE refused");
    let WriteError::Copy(text) = &err else {
        panic!("expected a copy failure, got {err:?}")
    };
    assert!(
        text.contains("refused to create \"INBOX/WeChat Archiver\"")
            && text.to_lowercase().contains("quota"),
        "the CREATE's refusal is the reason: {text}"
    );
    assert!(
        !text.contains("does not exist"),
        "not the APPEND's later complaint: {text}"
    );
    assert_eq!(read_back(&cyrus, LI).await.map(|m| m.len()), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_ends_with_logout() {
    let cyrus = Cyrus::start(&[LI, ZHANG], false);
    let proxy = CutProxy::start(cyrus.port).await;
    // One connection at a time: Zhang's write closes Li's idle session.
    let writer = cyrus_writer(proxy.port, 1);
    assert!(
        !writer
            .is_valid_user(&mailbox("nobody.here@contoso.com"))
            .await
            .expect("check")
    );
    for user in [LI, ZHANG] {
        write_message(
            &writer,
            &mailbox(user),
            "itm_a",
            "2026-11-22T08:15:00Z",
            1_000,
        )
        .await
        .expect("write");
    }
    writer.close().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (opened, logged_out, dropped) = loop {
        let (opened, logged_out, dropped) = proxy.sessions.counts();
        if logged_out + dropped == opened || Instant::now() > deadline {
            break (opened, logged_out, dropped);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(opened, 3, "nobody, Li, Zhang");
    assert_eq!((logged_out, dropped), (3, 0), "every session logged out");
}
