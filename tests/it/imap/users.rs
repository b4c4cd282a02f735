//! Who counts as a user of the target, and what a wrong admin password
//! does.

use wechat_archiver::mailbox::imap::ImapWriter;
use wechat_archiver::mailbox::{MailboxWriter, WriteError};
use wechat_archiver::secrets::Secret;

use super::*;
use crate::support::dovecot::{ADMIN, Dovecot};

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
