//! What a copy is on the server: bytes, flags, date, UID, and how it is
//! found again or refused.

use std::sync::Arc;

use wechat_archiver::content::Content;
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError};

use super::*;
use crate::support::dovecot::{Dovecot, User};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_land_in_each_users_folder_byte_identical_seen_and_dated_sent_at() {
    let dovecot = Arc::new(Dovecot::start(&[LI, ZHANG]));
    assert!(
        fetch(&dovecot, LI).await.is_none(),
        "the folder must not exist before the first write"
    );
    let writer = writer(&dovecot);
    let items = [
        ("itm_01JD3Q8ZK2", "2026-11-22T08:15:00Z", 3_000),
        ("itm_01JD3Q8ZK3", "2026-11-02T23:59:59Z", 48_213),
        ("itm \"quoted\" \\ id", "2025-01-05T04:03:02Z", 200),
    ];
    let mut written = Vec::new();
    for (id, sent_at, size) in items {
        let item = item(id, sent_at, size);
        let content = Content::Memory(message(id, size));
        let copy = Copy {
            item: &item,
            connector: "contoso",
            content: &content,
            in_reply_to: None,
        };
        for user in [LI, ZHANG] {
            let w = writer.write(&mailbox(user), &copy).await.expect("write");
            assert_eq!(w.bytes, copy.len());
            written.push((user, id, w.location));
        }
    }
    for user in [LI, ZHANG] {
        let messages = fetch(&dovecot, user).await.expect("the folder was created");
        assert_eq!(messages.len(), items.len(), "{user}: one copy per item");
        for ((id, sent_at, size), got) in items.iter().zip(&messages) {
            assert_eq!(
                got.body,
                expected_bytes(id, "contoso", &message(id, *size)),
                "{user} {id}: bytes"
            );
            assert!(
                got.flags.iter().any(|f| f == "\\Seen"),
                "{user} {id}: flags {:?}",
                got.flags
            );
            let sent: DateTime<Utc> = sent_at.parse().expect("time");
            assert_eq!(
                internal_date(&got.internal_date),
                sent,
                "{user} {id}: internal date"
            );
            let location = format!("{}:{}", got.uid_validity, got.uid);
            assert!(
                written
                    .iter()
                    .any(|(u, i, l)| *u == user && i == id && *l == location),
                "{user} {id}: APPENDUID {location} recorded, got {written:?}"
            );
        }
    }
    assert!(
        dovecot.is_subscribed(LI, FOLDER),
        "the created folder is subscribed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_existing_finds_the_written_copy_and_only_an_exact_id() {
    let dovecot = Dovecot::start(&[LI]);
    let writer = writer(&dovecot);
    let li = mailbox(LI);
    let first = item("itm_1", "2026-11-22T08:15:00Z", 500);
    assert_eq!(
        writer.find_existing(&li, &first).await.expect("search"),
        None,
        "no folder yet"
    );
    let longer = item("itm_10", "2026-11-22T08:16:00Z", 500);
    let content = Content::Memory(message("itm_10", 500));
    let copy = Copy {
        item: &longer,
        connector: "contoso",
        content: &content,
        in_reply_to: None,
    };
    let written = writer.write(&li, &copy).await.expect("write");
    assert_eq!(
        writer.find_existing(&li, &first).await.expect("search"),
        None,
        "itm_1 must not match the copy of itm_10"
    );
    let found = writer.find_existing(&li, &longer).await.expect("search");
    assert_eq!(found.map(|f| f.location), Some(written.location));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_the_server_refuses_fails_that_copy_with_its_reason() {
    let dovecot = Dovecot::start_with(&[User::with_quota_kib(LI, 64)], false);
    let writer = writer(&dovecot);
    let li = mailbox(LI);
    let big = item("itm_big", "2026-11-22T08:15:00Z", 200_000);
    let content = Content::Memory(message("itm_big", 200_000));
    let copy = Copy {
        item: &big,
        connector: "contoso",
        content: &content,
        in_reply_to: None,
    };
    let err = writer.write(&li, &copy).await.expect_err("over quota");
    let WriteError::Copy(text) = &err else {
        panic!("expected a copy failure, got {err:?}")
    };
    assert!(
        text.contains("itm_big") && text.to_lowercase().contains("quota"),
        "{text}"
    );
    let small = item("itm_small", "2026-11-22T08:15:00Z", 2_000);
    let content = Content::Memory(message("itm_small", 2_000));
    let copy = Copy {
        item: &small,
        connector: "contoso",
        content: &content,
        in_reply_to: None,
    };
    writer
        .write(&li, &copy)
        .await
        .expect("a small copy still fits");
    let ids: Vec<_> = dovecot
        .fetch_all(LI, FOLDER)
        .expect("folder")
        .iter()
        .map(|m| m.item_id())
        .collect();
    assert_eq!(ids, [Some("itm_small".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_item_streams_from_its_spool_file() {
    let dovecot = Arc::new(Dovecot::start(&[LI]));
    let writer = writer(&dovecot);
    let spool = tempfile::NamedTempFile::new().expect("spool");
    let body = message("itm_huge", 20 * 1024 * 1024);
    std::fs::write(spool.path(), &body).expect("spool write");
    let (_, path) = spool.keep().expect("keep spool");
    let content = Content::Spooled {
        path,
        len: body.len() as u64,
    };
    let huge = item("itm_huge", "2026-11-22T08:15:00Z", body.len());
    let copy = Copy {
        item: &huge,
        connector: "contoso",
        content: &content,
        in_reply_to: None,
    };
    writer
        .write(&mailbox(LI), &copy)
        .await
        .expect("write 20 MB");
    let messages = fetch(&dovecot, LI).await.expect("folder");
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].body == expected_bytes("itm_huge", "contoso", &body),
        "20 MB copy differs"
    );
}
