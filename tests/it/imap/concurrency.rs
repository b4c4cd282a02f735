//! Many copies at once: shared connections, MULTIAPPEND, and a verdict
//! for each copy.

use std::sync::Arc;
use std::time::Duration;

use wechat_archiver::content::Content;
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError};
use wechat_archiver::secrets::Secret;

use super::proxy::CutProxy;
use super::*;
use crate::support::dovecot::{ADMIN, ADMIN_PASSWORD, Dovecot, User};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_parallel_copies_to_more_mailboxes_than_connections_land_exactly_once() {
    let users: Vec<String> = (0..5).map(|i| format!("user{i}@contoso.com")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let dovecot = Arc::new(Dovecot::start(&names));
    let mut config = config(&dovecot);
    config.max_connections = 2;
    config.pipeline_depth = 8;
    let writer = Arc::new(ImapWriter::new(config, Secret::new(ADMIN_PASSWORD)).expect("writer"));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40 {
        for user in users.clone() {
            let writer = writer.clone();
            tasks.spawn(async move {
                let id = format!("itm_{n:03}");
                let it = item(&id, "2026-11-22T08:15:00Z", 1_500 + n * 37);
                let content = Content::Memory(message(&id, 1_500 + n * 37));
                let copy = Copy {
                    item: &it,
                    connector: "contoso",
                    content: &content,
                    in_reply_to: None,
                };
                writer.write(&mailbox(&user), &copy).await.map(|_| ())
            });
        }
    }
    let finished = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("write");
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "writes did not finish: connections starved?"
    );
    for user in &users {
        let mut ids: Vec<String> = fetch(&dovecot, user)
            .await
            .expect("folder")
            .iter()
            .map(|m| m.item_id().expect("trace header"))
            .collect();
        ids.sort();
        let expected: Vec<String> = (0..40).map(|n| format!("itm_{n:03}")).collect();
        assert_eq!(ids, expected, "{user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_share_multiappends_and_each_gets_its_own_uid() {
    let dovecot = Arc::new(Dovecot::start(&[LI]));
    let proxy = CutProxy::start(dovecot.port).await;
    let config = ImapConfig::new(false, "127.0.0.1", proxy.port, ADMIN, FOLDER);
    let writer = Arc::new(ImapWriter::new(config, Secret::new(ADMIN_PASSWORD)).expect("writer"));
    assert!(writer.is_valid_user(&mailbox(LI)).await.expect("login"));
    let results = write_concurrently(&writer, LI, 60, 3_000).await;
    let stored = fetch(&dovecot, LI).await.expect("folder");
    assert_eq!(stored.len(), 60, "every copy once");
    for (id, result) in &results {
        let written = result.as_ref().unwrap_or_else(|e| panic!("{id}: {e}"));
        let copy = stored
            .iter()
            .find(|m| m.item_id().as_deref() == Some(id))
            .unwrap_or_else(|| panic!("{id} not stored"));
        assert_eq!(
            written.location,
            format!("{}:{}", copy.uid_validity, copy.uid),
            "{id}"
        );
        assert!(
            copy.body == expected_bytes(id, "contoso", &message(id, 3_000)),
            "{id} intact"
        );
    }
    let commands = proxy.appends.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        commands < 60,
        "60 copies went in {commands} APPEND commands: no MULTIAPPEND"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_multiappend_gives_each_copy_its_own_verdict() {
    let dovecot = Arc::new(Dovecot::start_with(&[User::with_quota_kib(LI, 64)], false));
    let writer = Arc::new(writer(&dovecot));
    assert!(writer.is_valid_user(&mailbox(LI)).await.expect("login"));
    let results = write_concurrently(&writer, LI, 20, 10_000).await;
    let ok: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id)
        .collect();
    let refused: Vec<String> = results
        .iter()
        .filter_map(|(id, r)| match r {
            Err(WriteError::Copy(text)) => Some(format!("{id}: {text}")),
            Err(other) => panic!("{id}: unexpected {other:?}"),
            Ok(_) => None,
        })
        .collect();
    let copy_len = expected_bytes("itm_000", "contoso", &message("itm_000", 10_000)).len();
    assert_eq!(
        ok.len(),
        64 * 1024 / copy_len,
        "as many copies as fit in 64 KiB are stored, whatever batch they were sent in; refused: {refused:?}"
    );
    for text in &refused {
        assert!(text.to_lowercase().contains("quota"), "{text}");
    }
    let mut stored: Vec<String> = fetch(&dovecot, LI)
        .await
        .expect("folder")
        .iter()
        .map(|m| m.item_id().expect("header"))
        .collect();
    stored.sort();
    assert_eq!(
        stored.iter().collect::<Vec<_>>(),
        ok,
        "stored exactly the copies reported written"
    );
}
