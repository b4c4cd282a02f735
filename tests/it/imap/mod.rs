//! The IMAP writer against a real Dovecot: what lands in each mailbox is
//! read back over IMAP (by the tests' own reader) and compared. One file
//! per concern; the helpers every file uses are here.

mod concurrency;
mod copies;
mod cyrus;
mod faults;
mod hostile;
mod proxy;
mod tls;
mod users;
mod xoauth2;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use wechat_archiver::Mailbox;
use wechat_archiver::content::Content;
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError, Written};
use wechat_archiver::secrets::Secret;
use wechat_archiver::telemessage::Item;

use crate::support::dovecot::{ADMIN, ADMIN_PASSWORD, Dovecot};

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
        in_reply_to: None,
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

fn folder_ids(dovecot: &Dovecot, user: &str) -> Vec<String> {
    dovecot
        .fetch_all(user, FOLDER)
        .expect("folder")
        .iter()
        .map(|m| m.item_id().expect("trace header"))
        .collect()
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
                in_reply_to: None,
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
