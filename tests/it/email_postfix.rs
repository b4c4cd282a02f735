//! A real Postfix in front of `receive`, as an admin runs it: TeleMessage's
//! SMTP forwarding arrives at Postfix, Postfix hands it over LMTP, and the
//! copies land in the mapped mailboxes once. Every wait is on Postfix's
//! own log line for the message, which it writes only after `receive`'s
//! reply: so the copies must be there when the line is.

use crate::email::{Receiver, copies, email_connector, forwarded};
use crate::support::TestEnv;
use crate::support::postfix::Postfix;

const MAPPED: [&str; 2] = ["li.wei@contoso.com", "wang.fang@contoso.com"];

#[test]
fn smtp_through_postfix_lands_once_in_every_mapped_mailbox() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let receiver = Receiver::start(&env);
    let postfix = Postfix::start("contoso.com", receiver.port);
    let message = forwarded(Some("pf1@tm"), ".a line with a leading dot");
    // Two envelope recipients: Postfix sends both in one LMTP transaction.
    let queued = postfix.send(
        "forward@telemessage.com",
        &["archive@contoso.com", "journal@contoso.com"],
        &message,
    );
    let sent = postfix.wait_for(&queued, "status=sent", 2);
    assert!(
        sent.iter().all(|l| l.contains("relay=127.0.0.1")),
        "{sent:?}"
    );
    for mailbox in MAPPED {
        let found = copies(&archive, mailbox);
        assert_eq!(found.len(), 1, "{mailbox}: {found:?}");
        let text = std::fs::read_to_string(&found[0]).unwrap();
        assert!(
            text.contains("X-WeChat-Archiver-Item-Id: <pf1@tm>"),
            "{text}"
        );
        // Postfix adds its Received: line; the forwarded message is intact.
        assert!(text.ends_with(&message), "{text}");
    }
    // TeleMessage sends the same message again (its own retry): once still.
    let again = postfix.send(
        "forward@telemessage.com",
        &["archive@contoso.com"],
        &message,
    );
    postfix.wait_for(&again, "status=sent", 1);
    for mailbox in MAPPED {
        assert_eq!(copies(&archive, mailbox).len(), 1, "{mailbox}");
    }
    assert!(postfix.queue().is_empty());
    assert_eq!(receiver.stop(), 0);
}

#[test]
fn postfix_keeps_a_message_while_the_target_is_down_and_delivers_it_once_after() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let receiver = Receiver::start(&env);
    let postfix = Postfix::start("contoso.com", receiver.port);
    // The target goes away: a Maildir root that is a file.
    let moved = env.path("archive-away");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::rename(&archive, &moved).unwrap();
    std::fs::write(&archive, b"not a directory").unwrap();
    let queued = postfix.send(
        "forward@telemessage.com",
        &["archive@contoso.com"],
        &forwarded(Some("pf-down@tm"), "while down"),
    );
    let deferred = postfix.wait_for(&queued, "status=deferred", 1);
    assert!(deferred[0].contains("said: 451 4."), "{deferred:?}");
    // Postfix keeps it, and only it.
    postfix.wait_deferred(&queued);
    assert_eq!(postfix.queue().len(), 1, "{:?}", postfix.queue());
    // The target is back; Postfix retries (now, rather than in minutes).
    std::fs::remove_file(&archive).unwrap();
    std::fs::rename(&moved, &archive).unwrap();
    postfix.flush();
    postfix.wait_for(&queued, "status=sent", 1);
    assert!(postfix.queue().is_empty(), "delivered, so no longer queued");
    for mailbox in MAPPED {
        let found = copies(&archive, mailbox);
        assert_eq!(found.len(), 1, "{mailbox}: {found:?}");
        assert!(
            std::fs::read_to_string(&found[0])
                .unwrap()
                .contains("<pf-down@tm>")
        );
    }
    assert_eq!(receiver.stop(), 0);
}
