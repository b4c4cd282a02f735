//! Shared fixtures for the Graph writer's tests: TeleMessage-shaped
//! items, a writer pointed at the simulator, and the checks every test uses.

pub(super) use std::sync::{Arc, Mutex};
pub(super) use std::time::Duration;

pub(super) use async_trait::async_trait;
pub(super) use base64::Engine;
pub(super) use bytes::Bytes;
pub(super) use serde_json::json;

pub(super) use wechat_archiver::content::Content;
pub(super) use wechat_archiver::mailbox::graph::{GraphConfig, GraphLimits, GraphWriter};
pub(super) use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError, Written};
pub(super) use wechat_archiver::secrets::Secret;
pub(super) use wechat_archiver::telemessage::Item;
pub(super) use wechat_archiver::types::Mailbox;

pub(super) use crate::support::graph_sim::{
    Fault, GraphSim, MailboxKind, SimConfig, StoredMessage, Via,
};

pub(super) const FOLDER: &str = "WeChat Archiver";
pub(super) const LI: &str = "li.wei@contoso.com";
pub(super) const ZHANG: &str = "zhang.min@contoso.com";
pub(super) const KB: usize = 1024;
pub(super) const MB: usize = 1024 * 1024;

/// Bytes that differ everywhere, so a shifted or truncated copy shows.
pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
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

pub(super) fn wrapped_base64(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push_str("\r\n");
    }
    out
}

pub(super) struct Attach {
    pub(super) name: &'static str,
    pub(super) content_type: &'static str,
    pub(super) bytes: Vec<u8>,
}

pub(super) fn attach(
    name: &'static str,
    content_type: &'static str,
    len: usize,
    seed: u64,
) -> Attach {
    Attach {
        name,
        content_type,
        bytes: noise(len, seed),
    }
}

pub(super) const SENT_AT: &str = "2026-11-22T08:15:00Z";
pub(super) const TEXT: &str = "报价单已发 – the quote is attached, 请查收";

/// A TeleMessage-shaped RFC 5322 message (as the content endpoint serves
/// it): Message-ID, Date, From, To, encoded Subject, X-TeleMessage-*
/// headers, a base64 UTF-8 text part, and base64 attachments.
pub(super) fn mime(id: &str, attachments: &[Attach]) -> Vec<u8> {
    mime_with_text(id, TEXT, attachments)
}

pub(super) fn mime_with_text(id: &str, text: &str, attachments: &[Attach]) -> Vec<u8> {
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
pub(super) fn item(id: &str, content: &[u8], attachments: &[Attach]) -> Item {
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
pub(super) struct Fixture {
    pub(super) item: Item,
    pub(super) content: Content,
    pub(super) attachments: Vec<Attach>,
}

impl Fixture {
    pub(super) fn new(id: &str, attachments: Vec<Attach>) -> Fixture {
        let raw = mime(id, &attachments);
        Fixture {
            item: item(id, &raw, &attachments),
            content: Content::Memory(Bytes::from(raw)),
            attachments,
        }
    }

    pub(super) fn copy(&self) -> Copy<'_> {
        Copy {
            item: &self.item,
            connector: "contoso-wechat",
            content: &self.content,
            in_reply_to: None,
        }
    }
}

pub(super) fn mailbox(address: &str) -> Mailbox {
    Mailbox::parse(address).expect("address")
}

pub(super) fn fast_limits() -> GraphLimits {
    GraphLimits {
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        ..GraphLimits::default()
    }
}

pub(super) fn config(sim: &GraphSim) -> GraphConfig {
    let cfg = &sim.sim.config;
    let mut c = GraphConfig::new(cfg.tenant.clone(), cfg.client_id.clone());
    c.graph_endpoint = Some(sim.url.clone());
    c.login_endpoint = Some(sim.url.clone());
    c.limits = fast_limits();
    c
}

pub(super) fn writer(sim: &GraphSim) -> GraphWriter {
    writer_with(sim, config(sim))
}

pub(super) fn writer_with(sim: &GraphSim, config: GraphConfig) -> GraphWriter {
    GraphWriter::new(config, Secret::new(sim.sim.config.client_secret.clone())).expect("writer")
}

pub(super) async fn sim_with(config: SimConfig) -> GraphSim {
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
    assert_eq!(
        s.unsupported_queries, 0,
        "a query option the v1.0 metadata marks unsupported"
    );
}

pub(super) fn only(messages: Vec<StoredMessage>, id: &str) -> StoredMessage {
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
pub(super) fn assert_faithful(m: &StoredMessage, f: &Fixture) {
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
