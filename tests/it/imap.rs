//! The IMAP writer against a real Dovecot: what lands in each mailbox is
//! read back over IMAP (by the tests' own reader) and compared.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use wechat_archiver::Mailbox;
use wechat_archiver::content::Content;
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError, Written};
use wechat_archiver::secrets::Secret;
use wechat_archiver::telemessage::Item;

use crate::support::dovecot::{ADMIN, ADMIN_PASSWORD, Dovecot, User};

const FOLDER: &str = "WeChat Archiver";
const LI: &str = "li.wei@contoso.com";
const ZHANG: &str = "zhang.min@contoso.com";

fn item(id: &str, sent_at: &str, size: usize) -> Item {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "platform": "wechat",
        "type": "chat",
        "conversation": {"id": "cnv_77", "kind": "group", "title": "华东销售群"},
        "sent_at": sent_at,
        "archived_at": sent_at,
        "sender": {"name": "Li Wei", "mobile": "+8613800138000", "email": LI, "wechat_id": "liwei88"},
        "participants": [
            {"name": "Li Wei", "mobile": "+8613800138000", "email": LI, "wechat_id": "liwei88"},
            {"name": "Zhang Min", "mobile": "+85291234567", "email": ZHANG, "wechat_id": "zm_hk"}
        ],
        "size": size,
        "sha256": "00",
        "attachments": [],
        "call": null,
        "recall": null
    }))
    .expect("spec-shaped item")
}

/// An RFC 5322 message of about `size` bytes, different for every id.
fn message(id: &str, size: usize) -> Bytes {
    let mut text = format!(
        "From: Li Wei <li.wei@contoso.com>\r\nTo: =?UTF-8?B?5Y2O5Lic6ZSA5ZSu576k?= <group@telemessage>\r\n\
         Subject: WeChat chat {id}\r\nMessage-ID: <{id}@telemessage.example>\r\n\
         Date: Sun, 22 Nov 2026 08:15:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    let mut line = 0;
    while text.len() < size {
        text.push_str(&format!(
            "{id} line {line}: 报价单已发送, please confirm.\r\n"
        ));
        line += 1;
    }
    Bytes::from(text)
}

fn config(dovecot: &Dovecot) -> ImapConfig {
    ImapConfig::new(false, "127.0.0.1", dovecot.port, ADMIN, FOLDER)
}

/// Writes the test message `id` of `size` bytes, sent at `sent_at`, into
/// `mailbox` as connector `contoso`.
async fn write_message(
    writer: &ImapWriter,
    mailbox: &Mailbox,
    id: &str,
    sent_at: &str,
    size: usize,
) -> Result<Written, WriteError> {
    let item = item(id, sent_at, size);
    let content = Content::Memory(message(id, size));
    let copy = Copy {
        item: &item,
        connector: "contoso",
        content: &content,
    };
    writer.write(mailbox, &copy).await
}

fn writer(dovecot: &Dovecot) -> ImapWriter {
    ImapWriter::new(config(dovecot), Secret::new(ADMIN_PASSWORD)).expect("writer")
}

fn mailbox(address: &str) -> Mailbox {
    Mailbox::parse(address).expect("address")
}

/// What the copy's bytes must be: the trace headers, then the message.
fn expected_bytes(id: &str, connector: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!("X-WeChat-Archiver-Item-Id: {id}\r\nX-WeChat-Archiver-Connector: {connector}\r\n")
            .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn internal_date(fetched: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(fetched.trim(), "%d-%b-%Y %H:%M:%S %z")
        .unwrap_or_else(|e| panic!("INTERNALDATE {fetched:?}: {e}"))
        .with_timezone(&Utc)
}

/// Runs blocking test-side IMAP reads off the async runtime.
async fn fetch(
    dovecot: &Arc<Dovecot>,
    user: &str,
) -> Option<Vec<crate::support::dovecot::Fetched>> {
    let (dovecot, user) = (dovecot.clone(), user.to_owned());
    tokio::task::spawn_blocking(move || dovecot.fetch_all(&user, FOLDER))
        .await
        .expect("reader task")
}

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
async fn a_user_the_server_does_not_know_is_not_valid() {
    let dovecot = Dovecot::start(&[LI]);
    let writer = writer(&dovecot);
    assert!(writer.is_valid_user(&mailbox(LI)).await.expect("check"));
    let ghost = mailbox("ghost@contoso.com");
    assert!(!writer.is_valid_user(&ghost).await.expect("check"));
    assert!(!writer.is_valid_user(&ghost).await.expect("cached check"));
    let err = write_message(&writer, &ghost, "itm_ghost", "2026-11-22T08:15:00Z", 100)
        .await
        .expect_err("no such mailbox");
    assert!(
        matches!(&err, WriteError::Mailbox { mailbox, .. } if mailbox == "ghost@contoso.com"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_admin_password_fails_the_target_instead_of_unmapping_everyone() {
    let dovecot = Dovecot::start(&[LI]);
    let writer =
        ImapWriter::new(config(&dovecot), Secret::new("not-the-password")).expect("writer");
    let err = writer
        .is_valid_user(&mailbox(LI))
        .await
        .expect_err("bad credentials");
    let WriteError::Target(text) = &err else {
        panic!("expected a target error, got {err:?}")
    };
    assert!(text.contains(ADMIN) && text.contains("refused"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "the password leaked: {text}"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_imap_is_refused_for_a_host_that_is_not_loopback() {
    let config = ImapConfig::new(false, "mail.contoso.com", 143, ADMIN, FOLDER);
    let err = ImapWriter::new(config, Secret::new("x"))
        .err()
        .expect("refused");
    assert!(
        matches!(&err, WriteError::Target(t) if t.contains("loopback") && t.contains("imaps://")),
        "{err:?}"
    );
    let config = ImapConfig::new(true, "mail.contoso.com", 993, ADMIN, FOLDER);
    assert!(
        ImapWriter::new(config, Secret::new("x")).is_ok(),
        "imaps:// is fine anywhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaps_accepts_only_a_verified_certificate() {
    let dovecot = Arc::new(Dovecot::start_with(&[User::new(LI)], true));
    let port = dovecot.tls_port.expect("imaps port");
    let mut trusted = ImapConfig::new(true, "localhost", port, ADMIN, FOLDER);
    trusted.ca_file = Some(dovecot.ca_file());
    let writer = ImapWriter::new(trusted, Secret::new(ADMIN_PASSWORD)).expect("writer");
    let it = item("itm_tls", "2026-11-22T08:15:00Z", 1_000);
    let content = Content::Memory(message("itm_tls", 1_000));
    let copy = Copy {
        item: &it,
        connector: "contoso",
        content: &content,
    };
    writer
        .write(&mailbox(LI), &copy)
        .await
        .expect("write over TLS");
    assert_eq!(fetch(&dovecot, LI).await.expect("folder").len(), 1);

    let untrusted = ImapConfig::new(true, "localhost", port, ADMIN, FOLDER);
    let writer = ImapWriter::new(untrusted, Secret::new(ADMIN_PASSWORD)).expect("writer");
    let err = writer
        .write(&mailbox(LI), &copy)
        .await
        .expect_err("unknown CA");
    assert!(
        matches!(&err, WriteError::Target(t) if t.contains("TLS") && t.to_lowercase().contains("certificate")),
        "{err:?}"
    );
}

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
    };
    writer.write(&li, &copy).await.expect("before the restart");

    dovecot.stop();
    let (b, b_content) = write("itm_b");
    let copy = Copy {
        item: &b,
        connector: "contoso",
        content: &b_content,
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

/// A TCP relay between the writer and Dovecot that can cut a connection
/// at a chosen moment, as a network fault would.
struct CutProxy {
    port: u16,
    cut: Arc<std::sync::Mutex<Cut>>,
    /// APPEND commands seen from the writer (a MULTIAPPEND counts once).
    appends: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Cut {
    Never,
    /// After this many more bytes from the writer (mid-APPEND).
    AfterClientBytes(usize),
    /// Instead of passing on the server's answer containing `APPENDUID`:
    /// the server stored the copy, the writer never hears so.
    BeforeAppendReply,
    /// Set once a cut happened (the next connections pass untouched).
    Done,
}

impl CutProxy {
    async fn start(upstream: u16) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(std::sync::Mutex::new(Cut::Never));
        let appends = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (shared, counter) = (cut.clone(), appends.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                    .await
                    .expect("upstream");
                tokio::spawn(relay(client, server, shared.clone(), counter.clone()));
            }
        });
        CutProxy { port, cut, appends }
    }

    fn arm(&self, cut: Cut) {
        *self.cut.lock().expect("cut") = cut;
    }

    fn state(&self) -> Cut {
        *self.cut.lock().expect("cut")
    }
}

async fn relay(
    mut client: tokio::net::TcpStream,
    mut server: tokio::net::TcpStream,
    cut: Arc<std::sync::Mutex<Cut>>,
    appends: Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tail: Vec<u8> = Vec::new();
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            n = client.read(&mut up) => {
                let Ok(n @ 1..) = n else { return };
                count_appends(&mut tail, &up[..n], &appends);
                let pass = client_bytes_to_pass(&cut, n);
                if server.write_all(&up[..pass]).await.is_err() || pass < n {
                    return;
                }
            }
            n = server.read(&mut down) => {
                let Ok(n @ 1..) = n else { return };
                {
                    let mut state = cut.lock().expect("cut");
                    let reply = down[..n].windows(9).any(|w| w == b"APPENDUID");
                    if *state == Cut::BeforeAppendReply && reply {
                        *state = Cut::Done;
                        return;
                    }
                }
                if client.write_all(&down[..n]).await.is_err() { return; }
            }
        }
    }
}

/// Counts ` APPEND "` in the writer's stream, across chunk boundaries.
fn count_appends(tail: &mut Vec<u8>, chunk: &[u8], appends: &std::sync::atomic::AtomicUsize) {
    const NEEDLE: &[u8] = b" APPEND \"";
    tail.extend_from_slice(chunk);
    let found = tail.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count();
    appends.fetch_add(found, std::sync::atomic::Ordering::Relaxed);
    let keep = tail.len().min(NEEDLE.len() - 1);
    tail.drain(..tail.len() - keep);
}

/// How many of `n` bytes from the writer to pass on; fewer than `n`
/// means the connection is cut after them.
fn client_bytes_to_pass(cut: &std::sync::Mutex<Cut>, n: usize) -> usize {
    let mut state = cut.lock().expect("cut");
    match *state {
        Cut::AfterClientBytes(left) if n >= left => {
            *state = Cut::Done;
            left
        }
        Cut::AfterClientBytes(left) => {
            *state = Cut::AfterClientBytes(left - n);
            n
        }
        _ => n,
    }
}

fn folder_ids(dovecot: &Dovecot, user: &str) -> Vec<String> {
    dovecot
        .fetch_all(user, FOLDER)
        .expect("folder")
        .iter()
        .map(|m| m.item_id().expect("trace header"))
        .collect()
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

/// Writes `count` copies of small items to one mailbox at once; returns
/// each item id with what the writer answered.
async fn write_concurrently(
    writer: &Arc<ImapWriter>,
    user: &str,
    count: usize,
    size: usize,
) -> Vec<(
    String,
    Result<wechat_archiver::mailbox::Written, WriteError>,
)> {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..count {
        let (writer, user) = (writer.clone(), user.to_owned());
        tasks.spawn(async move {
            let id = format!("itm_{n:03}");
            let it = item(&id, "2026-11-22T08:15:00Z", size);
            let content = Content::Memory(message(&id, size));
            let copy = Copy {
                item: &it,
                connector: "contoso",
                content: &content,
            };
            let result = writer.write(&mailbox(&user), &copy).await;
            (id, result)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.push(done.expect("task"));
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
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

/// A stand-in for Exchange Online's IMAP login, which cannot run here: it
/// speaks just enough IMAP (XOAUTH2 with SASL-IR, the error challenge and
/// the bare `NO AUTHENTICATE failed.` Exchange sends, then CREATE, SELECT
/// and APPEND with APPENDUID) to drive the writer's XOAUTH2 path.
async fn fake_exchange(valid_token: Arc<std::sync::Mutex<String>>) -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let valid_token = valid_token.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                let hello =
                    "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 LITERAL+ UIDPLUS] ready\r\n";
                write.write_all(hello.as_bytes()).await.expect("greet");
                let mut uid = 0;
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let words: Vec<&str> = line.trim_end().split(' ').collect();
                    let (tag, command) = (words[0], words.get(1).copied().unwrap_or(""));
                    let answer = match command {
                        "AUTHENTICATE" => {
                            use base64::Engine;
                            let raw = base64::engine::general_purpose::STANDARD
                                .decode(words.get(3).copied().unwrap_or(""))
                                .unwrap_or_default();
                            let token = valid_token.lock().expect("token").clone();
                            let good = format!("user={LI}\x01auth=Bearer {token}\x01\x01");
                            if raw == good.as_bytes() {
                                format!(
                                    "{tag} OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] AUTHENTICATE completed.\r\n"
                                )
                            } else {
                                write
                                    .write_all(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")
                                    .await
                                    .expect("challenge");
                                let mut empty = String::new();
                                read.read_line(&mut empty)
                                    .await
                                    .expect("answer to challenge");
                                assert_eq!(
                                    empty, "\r\n",
                                    "XOAUTH2 error challenges take an empty answer"
                                );
                                format!("{tag} NO AUTHENTICATE failed.\r\n")
                            }
                        }
                        "APPEND" => {
                            let len: usize = line
                                .trim_end()
                                .rsplit('{')
                                .next()
                                .and_then(|n| n.trim_end_matches("+}").parse().ok())
                                .expect("literal length");
                            let mut message = vec![0; len + 2];
                            read.read_exact(&mut message).await.expect("literal");
                            uid += 1;
                            format!("{tag} OK [APPENDUID 77 {uid}] APPEND completed.\r\n")
                        }
                        _ => format!("{tag} OK {command} completed.\r\n"),
                    };
                    write.write_all(answer.as_bytes()).await.expect("answer");
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_logs_in_as_the_mailbox_and_reads_refusals_as_exchange_means_them() {
    use wechat_archiver::mailbox::imap::ImapAuth;
    let valid_token = Arc::new(std::sync::Mutex::new("token-1".to_owned()));
    let port = fake_exchange(valid_token.clone()).await;
    let mut config = ImapConfig::new(false, "127.0.0.1", port, "", FOLDER);
    config.auth = ImapAuth::XOAuth2;
    config.max_connections = 1;
    let writer = ImapWriter::new(config, Secret::new("token-1")).expect("writer");
    let li = mailbox(LI);
    assert!(writer.is_valid_user(&li).await.expect("login"));
    let it = item("itm_x", "2026-11-22T08:15:00Z", 1_000);
    let content = Content::Memory(message("itm_x", 1_000));
    let copy = Copy {
        item: &it,
        connector: "contoso",
        content: &content,
    };
    assert_eq!(
        writer.write(&li, &copy).await.expect("write").location,
        "77:1"
    );

    // The token expires; the only connection goes to a mailbox Exchange
    // refuses (no code), so Li's next write must log in again.
    *valid_token.lock().expect("token") = "token-2".to_owned();
    assert!(
        !writer
            .is_valid_user(&mailbox(ZHANG))
            .await
            .expect("refused"),
        "a refusal without a code, for a mailbox never seen, means no such mailbox"
    );
    let err = writer.write(&li, &copy).await.expect_err("stale token");
    assert!(
        matches!(&err, WriteError::Target(t) if t.contains("accepted earlier")),
        "a mailbox that logged in before is not suddenly unknown: {err:?}"
    );
    assert!(
        !format!("{err}").contains("token-1"),
        "the token leaked: {err}"
    );
    writer.replace_secret(Secret::new("token-2"));
    assert_eq!(
        writer
            .write(&li, &copy)
            .await
            .expect("fresh token")
            .location,
        "77:1"
    );
}
