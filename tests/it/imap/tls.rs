//! Plain IMAP only on loopback; imaps only with a verified certificate.

use std::sync::Arc;

use wechat_archiver::content::Content;
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError};
use wechat_archiver::secrets::Secret;

use super::*;
use crate::support::dovecot::{ADMIN, ADMIN_PASSWORD, Dovecot, User};

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
        in_reply_to: None,
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
