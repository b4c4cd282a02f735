//! The Graph writer against the Graph simulator: every copy lands once as a
//! received message, whole, and the writer keeps to Graph's limits (the
//! simulator fails any request that breaks them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use serde_json::json;

use wechat_archiver::content::Content;
use wechat_archiver::mailbox::graph::{GraphConfig, GraphLimits, GraphWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError, Written};
use wechat_archiver::secrets::Secret;
use wechat_archiver::telemessage::Item;
use wechat_archiver::types::Mailbox;

use crate::support::graph_sim::{Fault, GraphSim, MailboxKind, SimConfig, StoredMessage, Via};

const FOLDER: &str = "WeChat Archiver";
const LI: &str = "li.wei@contoso.com";
const ZHANG: &str = "zhang.min@contoso.com";
const KB: usize = 1024;
const MB: usize = 1024 * 1024;

// ---------------------------------------------------------------- fixtures

/// Bytes that differ everywhere, so a shifted or truncated copy shows.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn wrapped_base64(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push_str("\r\n");
    }
    out
}

struct Attach {
    name: &'static str,
    content_type: &'static str,
    bytes: Vec<u8>,
}

fn attach(name: &'static str, content_type: &'static str, len: usize, seed: u64) -> Attach {
    Attach {
        name,
        content_type,
        bytes: noise(len, seed),
    }
}

const SENT_AT: &str = "2026-11-22T08:15:00Z";
const TEXT: &str = "报价单已发 – the quote is attached, 请查收";

/// A TeleMessage-shaped RFC 5322 message (as the content endpoint serves
/// it): Message-ID, Date, From, To, encoded Subject, X-TeleMessage-*
/// headers, a base64 UTF-8 text part, and base64 attachments.
fn mime(id: &str, attachments: &[Attach]) -> Vec<u8> {
    mime_with_text(id, TEXT, attachments)
}

fn mime_with_text(id: &str, text: &str, attachments: &[Attach]) -> Vec<u8> {
    let boundary = "=_tm_boundary_0001";
    let mut m = String::new();
    m.push_str(&format!("Message-ID: <{id}@archive.telemessage.sim>\r\n"));
    m.push_str("Date: Sun, 22 Nov 2026 08:15:00 +0000\r\n");
    m.push_str(&format!("From: Li Wei <{LI}>\r\n"));
    m.push_str(&format!(
        "To: =?UTF-8?B?5byg5pWP?= <{ZHANG}>,\r\n zm_hk <zm_hk@wechat.invalid>\r\n"
    ));
    m.push_str("Subject: =?UTF-8?B?5b6u5L+h6IGK5aSpIFdlQ2hhdDog5Y2O5Lic6ZSA5ZSu576k?=\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!("X-TeleMessage-Item-Id: {id}\r\n"));
    m.push_str("X-TeleMessage-Platform: wechat\r\n");
    m.push_str("X-TeleMessage-Type: chat\r\n");
    m.push_str("X-TeleMessage-Conversation: cnv_77\r\n");
    m.push_str("X-TeleMessage-Archived-At: 2026-11-22T08:15:03Z\r\n");
    let text_part = format!(
        "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        wrapped_base64(text.as_bytes())
    );
    if attachments.is_empty() {
        m.push_str(&text_part);
        return m.into_bytes();
    }
    m.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!("--{boundary}\r\n{text_part}"));
    for a in attachments {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: {}; name=\"{}\"\r\nContent-Disposition: attachment; filename=\"{}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            a.content_type, a.name, a.name
        ));
        m.push_str(&wrapped_base64(&a.bytes));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m.into_bytes()
}

/// An item as the listing describes it (spec-shaped JSON).
fn item(id: &str, content: &[u8], attachments: &[Attach]) -> Item {
    let declared: Vec<_> = attachments
        .iter()
        .map(|a| json!({"name": a.name, "content_type": a.content_type, "size": a.bytes.len()}))
        .collect();
    serde_json::from_value(json!({
        "id": id,
        "platform": "wechat",
        "type": "chat",
        "conversation": {"id": "cnv_77", "kind": "group", "title": "华东销售群"},
        "sent_at": SENT_AT,
        "archived_at": "2026-11-22T08:15:03Z",
        "sender": {"name": "Li Wei", "mobile": "+8613800138000", "email": LI, "wechat_id": "liwei88"},
        "participants": [
            {"name": "Li Wei", "mobile": "+8613800138000", "email": LI, "wechat_id": "liwei88"},
            {"name": "张敏", "mobile": "+85291234567", "email": ZHANG, "wechat_id": "zm_hk"}
        ],
        "size": content.len(),
        "sha256": "00",
        "attachments": declared,
        "call": null,
        "recall": null
    }))
    .expect("spec-shaped item")
}

/// An item and its content, ready to be written.
struct Fixture {
    item: Item,
    content: Content,
    attachments: Vec<Attach>,
}

impl Fixture {
    fn new(id: &str, attachments: Vec<Attach>) -> Fixture {
        let raw = mime(id, &attachments);
        Fixture {
            item: item(id, &raw, &attachments),
            content: Content::Memory(Bytes::from(raw)),
            attachments,
        }
    }

    fn copy(&self) -> Copy<'_> {
        Copy {
            item: &self.item,
            connector: "contoso-wechat",
            content: &self.content,
        }
    }
}

fn mailbox(address: &str) -> Mailbox {
    Mailbox::parse(address).expect("address")
}

fn fast_limits() -> GraphLimits {
    GraphLimits {
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        ..GraphLimits::default()
    }
}

fn config(sim: &GraphSim) -> GraphConfig {
    let cfg = &sim.sim.config;
    let mut c = GraphConfig::new(cfg.tenant.clone(), cfg.client_id.clone());
    c.graph_endpoint = Some(sim.url.clone());
    c.login_endpoint = Some(sim.url.clone());
    c.limits = fast_limits();
    c
}

fn writer(sim: &GraphSim) -> GraphWriter {
    writer_with(sim, config(sim))
}

fn writer_with(sim: &GraphSim, config: GraphConfig) -> GraphWriter {
    GraphWriter::new(config, Secret::new(sim.sim.config.client_secret.clone())).expect("writer")
}

async fn sim_with(config: SimConfig) -> GraphSim {
    let sim = GraphSim::start(config).await;
    sim.add_user(LI, &["wei.li@contoso.com"], MailboxKind::Enabled);
    sim.add_user(ZHANG, &[], MailboxKind::Enabled);
    sim
}

/// No limit the simulator enforces was broken.
pub fn assert_limits_kept(sim: &GraphSim) {
    let s = sim.stats();
    assert_eq!(
        s.concurrency_violations, 0,
        "more than 4 concurrent requests to a mailbox"
    );
    assert_eq!(
        s.retry_after_violations, 0,
        "a request came before Retry-After ended"
    );
    assert_eq!(
        s.budget_violations, 0,
        "a mailbox's request or upload budget was exceeded"
    );
    assert_eq!(s.oversize_requests, 0, "a request body over 4 MB");
    assert_eq!(
        s.oversize_inline_attachments, 0,
        "an inline attachment over 3 MB"
    );
    assert_eq!(
        s.chunk_rule_violations, 0,
        "an upload chunk broke the range rules"
    );
    assert_eq!(
        s.authorization_on_upload, 0,
        "an Authorization header went to an upload URL"
    );
    assert_eq!(s.bad_headers, 0, "internetMessageHeaders Graph refuses");
}

fn only(messages: Vec<StoredMessage>, id: &str) -> StoredMessage {
    let named = "String {b8f2c0d4-5e1a-4f7b-9c3d-776563686174} Name ItemId";
    let mut matching: Vec<_> = messages
        .into_iter()
        .filter(|m| m.extended(named) == Some(id))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "item {id} must be in the folder exactly once"
    );
    matching.remove(0)
}

/// The copy is a received message with the original's times, addresses,
/// ids and attachments, byte for byte.
fn assert_faithful(m: &StoredMessage, f: &Fixture) {
    assert!(!m.is_draft, "{} was created as a draft", f.item.id);
    assert_eq!(m.message_flags, Some(1));
    let sent = "2026-11-22T08:15:00.000Z";
    assert_eq!(m.received.as_deref(), Some(sent));
    assert_eq!(m.sent.as_deref(), Some(sent));
    assert_eq!(
        m.internet_message_id.as_deref(),
        Some(format!("<{}@archive.telemessage.sim>", f.item.id).as_str())
    );
    assert_eq!(m.subject, "微信聊天 WeChat: 华东销售群");
    assert_eq!(m.from.as_deref(), Some(LI));
    assert_eq!(
        m.to,
        vec![ZHANG.to_owned(), "zm_hk@wechat.invalid".to_owned()]
    );
    assert_eq!(m.body_type, "text");
    assert_eq!(m.body.trim_end(), TEXT);
    let header = |name: &str| {
        m.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header("X-WeChat-Archiver-Item-Id"),
        Some(f.item.id.as_str())
    );
    assert_eq!(
        header("X-WeChat-Archiver-Connector"),
        Some("contoso-wechat")
    );
    assert_eq!(header("X-TeleMessage-Type"), Some("chat"));
    assert_eq!(m.attachments.len(), f.attachments.len());
    for a in &f.attachments {
        let got = m
            .attachments
            .iter()
            .find(|g| g.name == a.name)
            .unwrap_or_else(|| panic!("attachment {} missing", a.name));
        assert_eq!(got.content_type, a.content_type);
        assert!(
            got.bytes == a.bytes,
            "attachment {} differs from the original",
            a.name
        );
        if a.bytes.len() > 3 * MB {
            assert_eq!(
                got.via,
                Via::UploadSession,
                "{} needs an upload session",
                a.name
            );
        } else {
            assert_ne!(
                got.via,
                Via::UploadSession,
                "{} fits in one request",
                a.name
            );
        }
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_copy_lands_once_as_a_received_message_with_identical_attachments() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let fixtures = vec![
        Fixture::new("itm_text_only", vec![]),
        Fixture::new(
            "itm_small_and_5mb",
            vec![
                attach("报价单.pdf", "application/pdf", 100 * KB, 1),
                attach("site-visit.mp4", "video/mp4", 5 * MB, 2),
            ],
        ),
        Fixture::new(
            "itm_20mb",
            vec![
                attach("voice.amr", "audio/amr", 100 * KB, 3),
                attach("archive.zip", "application/zip", 20 * MB, 4),
            ],
        ),
    ];
    for address in [LI, ZHANG] {
        for f in &fixtures {
            let written = w.write(&mailbox(address), &f.copy()).await.expect("write");
            assert_eq!(written.bytes, f.copy().len());
            let stored = only(sim.messages(address, FOLDER), f.item.id.as_str());
            assert_eq!(written.location, stored.id);
        }
    }
    for address in [LI, ZHANG] {
        let messages = sim.messages(address, FOLDER);
        assert_eq!(
            messages.len(),
            fixtures.len(),
            "{address} holds exactly one copy per item"
        );
        for f in &fixtures {
            assert_faithful(&only(messages.clone(), f.item.id.as_str()), f);
        }
        assert!(
            sim.deleted(address).is_empty(),
            "nothing was half-written and removed"
        );
    }
    let s = sim.stats();
    assert_eq!(s.folder_creates, 2, "one archive folder per mailbox");
    assert_eq!(
        s.upload_sessions, 4,
        "the 5 MB and 20 MB attachments, in each mailbox"
    );
    assert!(s.upload_chunks.iter().all(|c| *c <= 4 * MB));
    assert_eq!(s.token_requests, 1, "the token is reused");
    assert_limits_kept(&sim);
    let ids = w.folder_ids();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|(_, id)| {
        sim.folders(LI)
            .iter()
            .chain(sim.folders(ZHANG).iter())
            .any(|f| &f.id == id)
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_body_stays_html() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let raw = format!(
        "Message-ID: <itm_html@archive.telemessage.sim>\r\nDate: Sun, 22 Nov 2026 08:15:00 +0000\r\nFrom: Li Wei <{LI}>\r\nTo: <{ZHANG}>\r\nSubject: call\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nplain version\r\n--b\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p>html <b>version</b></p>\r\n--b--\r\n"
    );
    let f = Fixture {
        item: item("itm_html", raw.as_bytes(), &[]),
        content: Content::Memory(Bytes::from(raw)),
        attachments: vec![],
    };
    w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_html");
    assert_eq!(m.body_type, "html");
    assert!(m.body.contains("<b>version</b>"));
    assert!(!m.is_draft);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_over_150_mb_is_a_copy_failure_and_nothing_is_written() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let big = vec![attach("raw-footage.mov", "video/quicktime", 151 * MB, 9)];
    let mut f = Fixture::new("itm_huge", big);
    // The listing may leave attachments out: the content itself decides.
    f.item.attachments.clear();
    match w.write(&mailbox(LI), &f.copy()).await {
        Err(WriteError::Copy(reason)) => {
            assert!(reason.contains("raw-footage.mov"), "{reason}");
            assert!(reason.contains("150 MB"), "{reason}");
        }
        other => panic!("expected a copy failure, got {other:?}"),
    }
    // And when the listing declares it, the content is not even read.
    let declared = item(
        "itm_huge_declared",
        b"",
        &[attach("x.bin", "application/octet-stream", 0, 1)],
    );
    let mut declared = declared;
    declared.attachments[0].size = 151 * MB as u64;
    let unread = Content::Memory(Bytes::from_static(b"not even a message"));
    let copy = Copy {
        item: &declared,
        connector: "c",
        content: &unread,
    };
    assert!(
        matches!(w.write(&mailbox(LI), &copy).await, Err(WriteError::Copy(r)) if r.contains("150 MB"))
    );
    let posts = sim
        .log()
        .iter()
        .filter(|e| e.method == "POST" && e.path.ends_with("/messages"))
        .count();
    assert_eq!(posts, 0, "no message was created for a refused item");
    assert!(sim.messages(LI, FOLDER).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_a_mailbox_never_gets_more_than_four_requests_at_once() {
    let sim = sim_with(SimConfig {
        latency: Duration::from_millis(40),
        ..SimConfig::default()
    })
    .await;
    let w = Arc::new(writer(&sim));
    let fixtures: Vec<Arc<Fixture>> = (0..12)
        .map(|i| {
            let atts = if i % 4 == 0 {
                vec![attach("clip.mp4", "video/mp4", 4 * MB, i)]
            } else {
                vec![attach("photo.jpg", "image/jpeg", 50 * KB, i)]
            };
            Arc::new(Fixture::new(&format!("itm_load_{i:02}"), atts))
        })
        .collect();
    let mut tasks = Vec::new();
    for address in [LI, ZHANG] {
        for f in &fixtures {
            let (w, f) = (w.clone(), f.clone());
            tasks.push(tokio::spawn(async move {
                w.write(&mailbox(address), &f.copy()).await
            }));
        }
    }
    for t in tasks {
        t.await.expect("task").expect("write");
    }
    assert_limits_kept(&sim);
    for address in [LI, ZHANG] {
        assert_eq!(
            sim.max_in_flight(address),
            4,
            "{address}: the writer uses, and keeps to, 4 at once"
        );
        let messages = sim.messages(address, FOLDER);
        assert_eq!(messages.len(), fixtures.len());
        for f in &fixtures {
            assert_faithful(&only(messages.clone(), f.item.id.as_str()), f);
        }
    }
    assert_eq!(
        sim.stats().folder_creates,
        2,
        "concurrent writers create the folder once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_waited_out_before_the_mailbox_hears_from_the_writer_again() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let f = Fixture::new(
        "itm_throttled",
        vec![attach("a.pdf", "application/pdf", 10 * KB, 1)],
    );
    // Prime the folder so the fault hits the message create.
    w.write(&mailbox(LI), &Fixture::new("itm_first", vec![]).copy())
        .await
        .expect("write");
    sim.inject(Fault::new("POST", "/messages", 429, Some("1.5")));
    let started = std::time::Instant::now();
    w.write(&mailbox(LI), &f.copy())
        .await
        .expect("write after throttling");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let log = sim.log();
    let throttled = log
        .iter()
        .position(|e| e.status == 429)
        .expect("the 429 was served");
    let next = log[throttled + 1..]
        .iter()
        .find(|e| e.mailbox == log[throttled].mailbox)
        .expect("a retry");
    assert!(
        next.at - log[throttled].at >= Duration::from_millis(1500),
        "retried too early"
    );
    // 503 without Retry-After: exponential backoff, then success.
    sim.inject(Fault {
        times: 2,
        ..Fault::new("POST", "/messages", 503, None)
    });
    w.write(&mailbox(LI), &Fixture::new("itm_503", vec![]).copy())
        .await
        .expect("write after 503s");
    assert_limits_kept(&sim);
    assert_eq!(sim.stats().injected, 3);
    only(sim.messages(LI, FOLDER), "itm_throttled");
    only(sim.messages(LI, FOLDER), "itm_503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_and_upload_budgets_of_a_mailbox_are_kept() {
    let window = Duration::from_secs(2);
    let sim = sim_with(SimConfig {
        requests_per_window: 8,
        request_window: window,
        upload_bytes_per_window: 8 * MB as u64,
        upload_window: window,
        ..SimConfig::default()
    })
    .await;
    let mut cfg = config(&sim);
    cfg.limits = GraphLimits {
        requests_per_window: 8,
        request_window: window,
        upload_bytes_per_window: 8 * MB as u64,
        upload_window: window,
        ..fast_limits()
    };
    let w = Arc::new(writer_with(&sim, cfg));
    let mut fixtures = vec![Fixture::new(
        "itm_big",
        vec![attach("big.bin", "application/octet-stream", 12 * MB, 7)],
    )];
    fixtures.extend((0..8).map(|i| Fixture::new(&format!("itm_budget_{i}"), vec![])));
    let started = std::time::Instant::now();
    for f in &fixtures {
        w.write(&mailbox(LI), &f.copy()).await.expect("write");
    }
    assert!(started.elapsed() >= window, "the writer had to pace itself");
    assert_limits_kept(&sim);
    let messages = sim.messages(LI, FOLDER);
    assert_eq!(messages.len(), fixtures.len());
    assert_faithful(&only(messages, "itm_big"), &fixtures[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_folder_of_that_name_is_used_whether_graph_says_400_or_409() {
    for status in [400, 409] {
        let sim = sim_with(SimConfig {
            folder_exists_status: status,
            ..SimConfig::default()
        })
        .await;
        let existing = sim.add_folder(LI, "wechat archiver");
        let w = writer(&sim);
        w.write(&mailbox(LI), &Fixture::new("itm_folder", vec![]).copy())
            .await
            .expect("write");
        let m = only(sim.messages(LI, FOLDER), "itm_folder");
        assert_eq!(m.folder_id, existing, "status {status}");
        assert_eq!(
            sim.folders(LI).len(),
            1,
            "no second folder (status {status})"
        );
        assert_eq!(w.folder_ids(), vec![(mailbox(LI), existing)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_id_from_the_ledger_is_used_and_a_stale_one_replaced() {
    let sim = sim_with(SimConfig::default()).await;
    let first = writer(&sim);
    first
        .write(&mailbox(LI), &Fixture::new("itm_a", vec![]).copy())
        .await
        .expect("write");
    let remembered = first.folder_ids();
    let second = writer(&sim);
    for (m, id) in &remembered {
        second.preload_folder_id(m, id.clone());
    }
    second
        .write(&mailbox(LI), &Fixture::new("itm_b", vec![]).copy())
        .await
        .expect("write");
    assert_eq!(sim.stats().folder_creates, 1, "the remembered id was used");
    let third = writer(&sim);
    third.preload_folder_id(&mailbox(LI), "folder-deleted-long-ago".into());
    third
        .write(&mailbox(LI), &Fixture::new("itm_c", vec![]).copy())
        .await
        .expect("write");
    assert_eq!(third.folder_ids(), remembered);
    assert_eq!(sim.messages(LI, FOLDER).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_addresses_with_a_reachable_mailbox_are_valid_users() {
    let sim = sim_with(SimConfig::default()).await;
    sim.add_user("no.license@contoso.com", &[], MailboxKind::NoMailbox);
    sim.add_user("ceo@contoso.com", &[], MailboxKind::Denied);
    let w = writer(&sim);
    assert!(w.is_valid_user(&mailbox(LI)).await.unwrap());
    assert!(
        w.is_valid_user(&mailbox("Wei.Li@Contoso.com"))
            .await
            .unwrap(),
        "an alias is found through proxyAddresses"
    );
    assert!(
        !w.is_valid_user(&mailbox("nobody@contoso.com"))
            .await
            .unwrap()
    );
    assert!(
        !w.is_valid_user(&mailbox("no.license@contoso.com"))
            .await
            .unwrap()
    );
    assert!(!w.is_valid_user(&mailbox("ceo@contoso.com")).await.unwrap());
    match w
        .write(
            &mailbox("nobody@contoso.com"),
            &Fixture::new("itm_x", vec![]).copy(),
        )
        .await
    {
        Err(WriteError::Mailbox { mailbox, .. }) => assert_eq!(mailbox, "nobody@contoso.com"),
        other => panic!("expected a mailbox error, got {other:?}"),
    }
    // Written through the alias, the copy is in the primary mailbox.
    w.write(
        &mailbox("wei.li@contoso.com"),
        &Fixture::new("itm_alias", vec![]).copy(),
    )
    .await
    .expect("write");
    only(sim.messages(LI, FOLDER), "itm_alias");

    let denied = sim_with(SimConfig {
        directory_forbidden: true,
        ..SimConfig::default()
    })
    .await;
    let w = writer(&denied);
    assert!(
        w.is_valid_user(&mailbox(LI)).await.unwrap(),
        "without directory rights the mailbox itself answers"
    );
    assert!(
        !w.is_valid_user(&mailbox("nobody@contoso.com"))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_existing_finds_a_whole_copy_and_removes_a_half_written_one() {
    let sim = sim_with(SimConfig::default()).await;
    let f = Fixture::new(
        "itm_Crash",
        vec![attach("big.bin", "application/octet-stream", 4 * MB, 5)],
    );
    let written = writer(&sim)
        .write(&mailbox(LI), &f.copy())
        .await
        .expect("write");
    // A fresh writer, as after a restart: nothing cached.
    let w = writer(&sim);
    let found = w
        .find_existing(&mailbox(LI), &f.item)
        .await
        .expect("search");
    assert_eq!(
        found,
        Some(Written {
            location: written.location.clone(),
            bytes: f.copy().len()
        })
    );
    // Graph's value match ignores case; item ids do not.
    let other = item("itm_crash", b"", &[]);
    assert_eq!(
        w.find_existing(&mailbox(LI), &other).await.expect("search"),
        None
    );
    assert_eq!(
        w.find_existing(&mailbox(ZHANG), &f.item)
            .await
            .expect("search"),
        None
    );
    // The run died before the upload finished: the copy is not whole.
    sim.drop_attachments(&written.location, 0);
    assert_eq!(
        w.find_existing(&mailbox(LI), &f.item)
            .await
            .expect("search"),
        None
    );
    assert!(
        sim.messages(LI, FOLDER).is_empty(),
        "the half-written copy is gone"
    );
    assert_eq!(sim.deleted(LI).len(), 1);
    w.write(&mailbox(LI), &f.copy()).await.expect("rewrite");
    assert_faithful(&only(sim.messages(LI, FOLDER), "itm_Crash"), &f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_is_lost_is_not_written_twice() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    w.write(&mailbox(LI), &Fixture::new("itm_warm", vec![]).copy())
        .await
        .expect("write");
    sim.inject(Fault {
        after_processing: true,
        ..Fault::new("POST", "/messages", 504, None)
    });
    let f = Fixture::new(
        "itm_lost_answer",
        vec![attach("a.pdf", "application/pdf", 10 * KB, 1)],
    );
    let written = w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_lost_answer");
    assert_eq!(written.location, m.id);
    // An upload whose answer is lost: the copy is written again, whole, once.
    sim.inject(Fault {
        after_processing: true,
        ..Fault::new("PUT", "/upload/", 504, None)
    });
    let g = Fixture::new(
        "itm_lost_chunk",
        vec![attach("v.mp4", "video/mp4", 7 * MB, 2)],
    );
    w.write(&mailbox(LI), &g.copy()).await.expect("write");
    assert_faithful(&only(sim.messages(LI, FOLDER), "itm_lost_chunk"), &g);
    assert_limits_kept(&sim);
}

/// A stand-in for the IMAP writer a deployment would configure as the
/// fallback; it keeps what it is given.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(String, String, Vec<u8>)>>,
}

#[async_trait]
impl MailboxWriter for Recorder {
    fn describe(&self) -> String {
        "recorder".into()
    }
    async fn is_valid_user(&self, _: &Mailbox) -> Result<bool, WriteError> {
        Ok(true)
    }
    async fn find_existing(&self, _: &Mailbox, _: &Item) -> Result<Option<Written>, WriteError> {
        Ok(None)
    }
    async fn write(&self, mailbox: &Mailbox, copy: &Copy<'_>) -> Result<Written, WriteError> {
        let mut bytes = copy.trace_headers();
        bytes.extend_from_slice(&copy.content.to_bytes().await.expect("content"));
        self.got
            .lock()
            .unwrap()
            .push((mailbox.to_string(), copy.item.id.to_string(), bytes));
        Ok(Written {
            location: "fallback-1".into(),
            bytes: copy.len(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_graph_refuses_attachments_on_received_messages_nothing_half_written_stays() {
    let sim = sim_with(SimConfig {
        refuse_attachments_on_non_draft: true,
        ..SimConfig::default()
    })
    .await;
    let w = writer(&sim);
    let large = Fixture::new("itm_large", vec![attach("v.mp4", "video/mp4", 5 * MB, 3)]);
    match w.write(&mailbox(LI), &large.copy()).await {
        Err(WriteError::Copy(reason)) => {
            assert!(reason.contains("refuses to add attachments"), "{reason}")
        }
        other => panic!("expected a copy failure, got {other:?}"),
    }
    assert!(
        sim.messages(LI, FOLDER).is_empty(),
        "the incomplete copy was removed"
    );
    // Items whose attachments fit in the create request are unaffected.
    let small = Fixture::new(
        "itm_small",
        vec![attach("a.pdf", "application/pdf", 200 * KB, 4)],
    );
    w.write(&mailbox(LI), &small.copy()).await.expect("write");
    assert_faithful(&only(sim.messages(LI, FOLDER), "itm_small"), &small);

    let recorder = Arc::new(Recorder::default());
    let w = writer(&sim).with_large_item_fallback(recorder.clone());
    let written = w
        .write(&mailbox(LI), &large.copy())
        .await
        .expect("fallback write");
    assert_eq!(written.location, "fallback-1");
    let mut expected = large.copy().trace_headers();
    expected.extend_from_slice(&large.content.to_bytes().await.unwrap());
    let got = recorder.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, LI);
    assert!(got[0].2 == expected, "the fallback got the whole message");
    assert_eq!(
        sim.messages(LI, FOLDER).len(),
        1,
        "Graph holds only the small item"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_reused_until_it_expires() {
    let sim = sim_with(SimConfig {
        token_lifetime: Duration::from_secs(3),
        ..SimConfig::default()
    })
    .await;
    let w = writer(&sim);
    for i in 0..4 {
        w.write(
            &mailbox(LI),
            &Fixture::new(&format!("itm_tok_{i}"), vec![]).copy(),
        )
        .await
        .expect("write");
    }
    assert_eq!(sim.stats().token_requests, 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    w.write(&mailbox(LI), &Fixture::new("itm_tok_late", vec![]).copy())
        .await
        .expect("write");
    assert_eq!(sim.stats().token_requests, 2);
    assert_eq!(
        sim.stats().rejected_tokens,
        0,
        "the writer renews before Graph refuses the token"
    );
    // A token revoked early: one refusal, a new token, and the write goes on.
    sim.revoke_tokens();
    w.write(
        &mailbox(LI),
        &Fixture::new("itm_tok_revoked", vec![]).copy(),
    )
    .await
    .expect("write");
    assert_eq!(sim.stats().token_requests, 3);
    assert_eq!(sim.stats().rejected_tokens, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_a_target_error_that_does_not_show_the_secret() {
    let sim = sim_with(SimConfig::default()).await;
    let w = GraphWriter::new(config(&sim), Secret::new("wrong-secret-value")).expect("writer");
    match w.is_valid_user(&mailbox(LI)).await {
        Err(WriteError::Target(reason)) => {
            assert!(reason.contains("invalid_client"), "{reason}");
            assert!(!reason.contains("wrong-secret-value"));
        }
        other => panic!("expected a target error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_mail_readwrite_is_a_target_error() {
    let sim = sim_with(SimConfig {
        roles: vec!["User.Read.All".into()],
        ..SimConfig::default()
    })
    .await;
    let w = writer(&sim);
    assert!(matches!(
        w.write(&mailbox(LI), &Fixture::new("itm_r", vec![]).copy()).await,
        Err(WriteError::Target(r)) if r.contains("Mail.ReadWrite")
    ));
}

#[test]
fn plain_http_is_refused_unless_the_host_is_loopback() {
    let secret = || Secret::new("x");
    let mut c = GraphConfig::new("contoso.onmicrosoft.com", "client");
    c.graph_endpoint = Some("http://graph.example.net".into());
    assert!(
        matches!(GraphWriter::new(c.clone(), secret()), Err(WriteError::Target(r)) if r.contains("http://"))
    );
    c.graph_endpoint = None;
    c.login_endpoint = Some("http://login.example.net".into());
    assert!(matches!(
        GraphWriter::new(c.clone(), secret()),
        Err(WriteError::Target(_))
    ));
    c.login_endpoint = Some("http://127.0.0.1:1".into());
    c.graph_endpoint = Some("http://[::1]:1".into());
    assert!(GraphWriter::new(c.clone(), secret()).is_ok());
    assert_eq!(
        GraphWriter::new(c, secret()).unwrap().describe(),
        "graph:contoso.onmicrosoft.com"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_that_do_not_all_fit_in_the_create_request_follow_one_by_one() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let f = Fixture::new(
        "itm_three_medium",
        vec![
            attach("a.jpg", "image/jpeg", 1536 * KB, 1),
            attach("b.jpg", "image/jpeg", 1536 * KB, 2),
            attach("c.jpg", "image/jpeg", 1536 * KB, 3),
        ],
    );
    w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_three_medium");
    assert_faithful(&m, &f);
    let vias: Vec<Via> = m.attachments.iter().map(|a| a.via).collect();
    assert_eq!(vias, vec![Via::InCreate, Via::Post, Via::Post]);
    assert_limits_kept(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_too_long_for_one_request_is_attached_whole() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let text: String = "聊天记录 chat log line\r\n".repeat(100_000);
    let raw = mime_with_text("itm_long_body", &text, &[]);
    let f = Fixture {
        item: item("itm_long_body", &raw, &[]),
        content: Content::Memory(Bytes::from(raw)),
        attachments: vec![],
    };
    w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_long_body");
    assert!(!m.is_draft);
    assert!(
        m.body.contains("message.txt"),
        "the body points to the attachment"
    );
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].name, "message.txt");
    assert!(
        m.attachments[0].bytes == text.as_bytes(),
        "the text is attached unchanged"
    );
    assert_limits_kept(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_image_keeps_its_content_id() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let png = noise(30 * KB, 11);
    let raw = format!(
        "Message-ID: <itm_cid@archive.telemessage.sim>\r\nDate: Sun, 22 Nov 2026 08:15:00 +0000\r\nFrom: Li Wei <{LI}>\r\nTo: <{ZHANG}>\r\nSubject: photo\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p><img src=\"cid:img1@tm\"></p>\r\n--r\r\nContent-Type: image/png\r\nContent-ID: <img1@tm>\r\nContent-Disposition: inline; filename=\"photo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--r--\r\n",
        wrapped_base64(&png)
    );
    let f = Fixture {
        item: item("itm_cid", raw.as_bytes(), &[]),
        content: Content::Memory(Bytes::from(raw)),
        attachments: vec![],
    };
    w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_cid");
    assert_eq!(m.body_type, "html");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert!(a.is_inline);
    assert_eq!(a.content_id.as_deref(), Some("img1@tm"));
    assert_eq!(a.name, "photo.png");
    assert!(a.bytes == png);
}
