//! Server restarts, dropped and cut connections, lost replies and
//! abandoned writes: no copy lost, none written twice, none corrupt.

use std::sync::Arc;
use std::time::Duration;

use wechat_archiver::content::Content;
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError};
use wechat_archiver::secrets::Secret;

use super::proxy::{Cut, CutProxy};
use super::*;
use crate::support::dovecot::{ADMIN, ADMIN_PASSWORD, Dovecot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_costs_neither_a_copy_nor_a_duplicate() {
    let mut dovecot = Dovecot::start(&[LI]);
    let writer = writer(&dovecot);
    let li = mailbox(LI);
    let write = |id: &'static str| {
        let it = item(id, "2026-11-22T08:15:00Z", 5_000);
        let content = Content::Memory(message(id, 5_000));
        (it, content)
    };
    let (a, a_content) = write("itm_a");
    let copy = Copy {
        item: &a,
        connector: "contoso",
        content: &a_content,
        in_reply_to: None,
    };
    writer.write(&li, &copy).await.expect("before the restart");

    dovecot.stop();
    let (b, b_content) = write("itm_b");
    let copy = Copy {
        item: &b,
        connector: "contoso",
        content: &b_content,
        in_reply_to: None,
    };
    let down = writer.write(&li, &copy).await.expect_err("server down");
    assert!(
        matches!(&down, WriteError::Target(t) if t.contains("connect")),
        "{down:?}"
    );

    dovecot.start_again();
    writer
        .write(&li, &copy)
        .await
        .expect("after the restart, the writer reconnects");
    let (c, c_content) = write("itm_c");
    let copy = Copy {
        item: &c,
        connector: "contoso",
        content: &c_content,
        in_reply_to: None,
    };
    writer.write(&li, &copy).await.expect("and keeps going");
    let ids: Vec<_> = dovecot
        .fetch_all(LI, FOLDER)
        .expect("folder")
        .iter()
        .map(|m| m.item_id().expect("trace header"))
        .collect();
    assert_eq!(ids, ["itm_a", "itm_b", "itm_c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_run_is_replaced_without_losing_the_copy() {
    let mut dovecot = Dovecot::start(&[LI]);
    let writer = writer(&dovecot);
    let li = mailbox(LI);
    write_message(&writer, &li, "itm_a", "2026-11-22T08:15:00Z", 5_000)
        .await
        .expect("first write opens the connection");
    dovecot.stop();
    dovecot.start_again();
    write_message(&writer, &li, "itm_b", "2026-11-22T08:15:00Z", 5_000)
        .await
        .expect("the stale connection is replaced");
    let ids: Vec<_> = dovecot
        .fetch_all(LI, FOLDER)
        .expect("folder")
        .iter()
        .map(|m| m.item_id().expect("trace header"))
        .collect();
    assert_eq!(ids, ["itm_a", "itm_b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_in_the_middle_of_an_append_is_retried_once_on_a_new_one() {
    let dovecot = Dovecot::start(&[LI]);
    let proxy = CutProxy::start(dovecot.port).await;
    let config = ImapConfig::new(false, "127.0.0.1", proxy.port, ADMIN, FOLDER);
    let writer = ImapWriter::new(config, Secret::new(ADMIN_PASSWORD)).expect("writer");
    let li = mailbox(LI);
    write_message(&writer, &li, "itm_a", "2026-11-22T08:15:00Z", 2_000)
        .await
        .expect("first write");

    proxy.arm(Cut::AfterClientBytes(300_000));
    let b = item("itm_b", "2026-11-22T08:16:00Z", 1_000_000);
    let b_body = message("itm_b", 1_000_000);
    let b_content = Content::Memory(b_body.clone());
    let copy = Copy {
        item: &b,
        connector: "contoso",
        content: &b_content,
        in_reply_to: None,
    };
    writer
        .write(&li, &copy)
        .await
        .expect("written on the second connection");
    assert_eq!(proxy.state(), Cut::Done, "the cut happened");

    let messages = dovecot.fetch_all(LI, FOLDER).expect("folder");
    let ids: Vec<_> = messages
        .iter()
        .map(|m| m.item_id().expect("header"))
        .collect();
    assert_eq!(ids, ["itm_a", "itm_b"], "no partial or duplicate copy");
    assert!(
        messages[1].body == expected_bytes("itm_b", "contoso", &b_body),
        "itm_b intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_append_reply_is_resolved_by_searching_not_by_writing_twice() {
    let dovecot = Dovecot::start(&[LI]);
    let proxy = CutProxy::start(dovecot.port).await;
    let config = ImapConfig::new(false, "127.0.0.1", proxy.port, ADMIN, FOLDER);
    let writer = ImapWriter::new(config, Secret::new(ADMIN_PASSWORD)).expect("writer");
    let li = mailbox(LI);
    proxy.arm(Cut::BeforeAppendReply);
    let a = item("itm_a", "2026-11-22T08:15:00Z", 2_000);
    let a_content = Content::Memory(message("itm_a", 2_000));
    let copy = Copy {
        item: &a,
        connector: "contoso",
        content: &a_content,
        in_reply_to: None,
    };
    let written = writer
        .write(&li, &copy)
        .await
        .expect("the copy is found after reconnecting");
    assert_eq!(proxy.state(), Cut::Done, "the cut happened");

    let messages = dovecot.fetch_all(LI, FOLDER).expect("folder");
    assert_eq!(folder_ids(&dovecot, LI), ["itm_a"], "exactly one copy");
    assert_eq!(
        written.location,
        format!("{}:{}", messages[0].uid_validity, messages[0].uid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_cut_fails_the_copy_and_says_why() {
    let dovecot = Dovecot::start(&[LI]);
    let proxy = CutProxy::start(dovecot.port).await;
    let config = ImapConfig::new(false, "127.0.0.1", proxy.port, ADMIN, FOLDER);
    let writer = Arc::new(ImapWriter::new(config, Secret::new(ADMIN_PASSWORD)).expect("writer"));
    let li = mailbox(LI);
    let a = item("itm_a", "2026-11-22T08:15:00Z", 2_000_000);
    let a_content = Content::Memory(message("itm_a", 2_000_000));
    let copy = Copy {
        item: &a,
        connector: "contoso",
        content: &a_content,
        in_reply_to: None,
    };
    assert!(writer.is_valid_user(&li).await.expect("login"));
    proxy.arm(Cut::AfterClientBytes(100_000));
    let rearm = {
        let cut = proxy.cut.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let mut state = cut.lock().expect("cut");
                if *state == Cut::Done {
                    *state = Cut::AfterClientBytes(100_000);
                    return;
                }
            }
        })
    };
    let err = writer.write(&li, &copy).await.expect_err("cut twice");
    rearm.await.expect("rearm");
    let WriteError::Copy(text) = &err else {
        panic!("expected a copy failure, got {err:?}")
    };
    assert!(text.contains("lost twice") && text.contains(LI), "{text}");
    assert!(
        dovecot.fetch_all(LI, FOLDER).unwrap_or_default().is_empty(),
        "nothing half-written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_abandoned_mid_message_leaves_no_corrupt_copy() {
    let dovecot = Arc::new(Dovecot::start(&[LI]));
    let writer = writer(&dovecot);
    let li = mailbox(LI);
    assert!(writer.is_valid_user(&li).await.expect("login"));
    let big = item("itm_big", "2026-11-22T08:15:00Z", 30_000_000);
    let big_content = Content::Memory(message("itm_big", 30_000_000));
    let copy = Copy {
        item: &big,
        connector: "contoso",
        content: &big_content,
        in_reply_to: None,
    };
    let abandoned = tokio::time::timeout(Duration::from_millis(30), writer.write(&li, &copy)).await;
    assert!(
        abandoned.is_err(),
        "the write should still have been sending after 30 ms"
    );
    let small = item("itm_small", "2026-11-22T08:15:00Z", 2_000);
    let small_content = Content::Memory(message("itm_small", 2_000));
    let copy = Copy {
        item: &small,
        connector: "contoso",
        content: &small_content,
        in_reply_to: None,
    };
    tokio::time::timeout(Duration::from_secs(20), writer.write(&li, &copy))
        .await
        .expect("the next write must not wait for the abandoned one's timeout")
        .expect("the next write works");
    // On a quiet machine the abandoned APPEND may have been sent whole
    // before the timeout; then the server keeps it, complete.
    let stored = fetch(&dovecot, LI).await.expect("folder");
    let small_bytes = expected_bytes("itm_small", "contoso", &message("itm_small", 2_000));
    let big_bytes = expected_bytes("itm_big", "contoso", &message("itm_big", 30_000_000));
    let smalls = stored.iter().filter(|m| m.body == small_bytes).count();
    let bigs = stored.iter().filter(|m| m.body == big_bytes).count();
    assert_eq!(smalls, 1, "the next write is stored once");
    assert_eq!(
        stored.len(),
        smalls + bigs,
        "a stored copy is not intact ({} stored)",
        stored.len()
    );
    assert!(bigs <= 1);
}
