//! A real Postfix in front of `receive`, as an admin runs it: TeleMessage's
//! SMTP forwarding arrives at Postfix, Postfix hands it over LMTP, and the
//! copies land in the mapped mailboxes once. Every wait is on Postfix's
//! own log line for the message, which it writes only after `receive`'s
//! reply: so the copies must be there when the line is.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::email::{Receiver, copies, email_connector, forwarded};
use crate::support::dovecot::make_certificates;
use crate::support::postfix::{Extra, Postfix, Relay, Smtp};
use crate::support::{TestEnv, binary};

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

/// The README's other set-up: Postfix's `pipe` runs `deliver` for each
/// recipient as an unprivileged user. While the target is down `deliver`
/// exits 75, so Postfix keeps the message; once the target is back it
/// lands once.
#[test]
fn postfix_pipes_each_message_to_deliver_and_keeps_what_deliver_defers() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    std::fs::create_dir_all(&archive).unwrap();
    // `deliver` runs as `nobody`: its own copy of the binary, and the
    // home and archive are its, as they would be the service user's.
    let bin = env.path("wechat-archiver");
    std::fs::hard_link(binary(), &bin)
        .or_else(|_| std::fs::copy(binary(), &bin).map(drop))
        .unwrap();
    let chown = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(env.dir.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let argv = format!(
        "{} --home {} deliver --connector tm --recipient ${{recipient}}",
        bin.display(),
        env.home.display()
    );
    let postfix = Postfix::start_relaying("contoso.com", Relay::Pipe(&argv));

    let queued = postfix.send(
        "forward@telemessage.com",
        &["archive@contoso.com"],
        &forwarded(Some("pipe1@tm"), "piped"),
    );
    let sent = postfix.wait_for(&queued, "status=sent", 1);
    assert!(sent[0].contains("via wechat service"), "{sent:?}");
    for mailbox in MAPPED {
        let found = copies(&archive, mailbox);
        assert_eq!(found.len(), 1, "{mailbox}: {found:?}");
        let text = std::fs::read_to_string(&found[0]).unwrap();
        assert!(text.contains("<pipe1@tm>"), "{text}");
    }

    let moved = env.path("archive-away");
    std::fs::rename(&archive, &moved).unwrap();
    std::fs::write(&archive, b"not a directory").unwrap();
    let queued = postfix.send(
        "forward@telemessage.com",
        &["archive@contoso.com"],
        &forwarded(Some("pipe-down@tm"), "while down"),
    );
    postfix.wait_for(&queued, "status=deferred", 1);
    postfix.wait_deferred(&queued);
    std::fs::remove_file(&archive).unwrap();
    std::fs::rename(&moved, &archive).unwrap();
    postfix.flush();
    postfix.wait_for(&queued, "status=sent", 1);
    assert!(postfix.queue().is_empty(), "{:?}", postfix.queue());
    for mailbox in MAPPED {
        let texts: Vec<String> = copies(&archive, mailbox)
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(texts.len(), 2, "{mailbox}");
        assert_eq!(
            texts
                .iter()
                .filter(|t| t.contains("<pipe-down@tm>"))
                .count(),
            1,
            "{mailbox}"
        );
    }
}

/// The README's Postfix lines, as written there: TLS required, only the
/// archive address accepted, handed to `receive` by the transport map.
#[test]
fn the_readme_postfix_setup_requires_tls_and_hands_the_archive_address_to_receive() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let receiver = Receiver::start(&env);
    let certs = tempfile::Builder::new().prefix("certs-").tempdir().unwrap();
    let certs = certs.path();
    // Postfix's smtpd reads them as its own user.
    std::fs::set_permissions(certs, std::fs::Permissions::from_mode(0o755)).unwrap();
    make_certificates(certs);
    let readme = include_str!("../../README.md");
    let postfix =
        Postfix::start_configured("wechat.contoso.com", Relay::Lmtp(receiver.port), |conf| {
            let main_cf = readme_lines(readme, "# /etc/postfix/main.cf (added)")
                .replace(
                    "/etc/letsencrypt/live/wechat.contoso.com/fullchain.pem",
                    &certs.join("server.pem").display().to_string(),
                )
                .replace(
                    "/etc/letsencrypt/live/wechat.contoso.com/privkey.pem",
                    &certs.join("server.key").display().to_string(),
                )
                .replace("hash:/etc/postfix/", &format!("hash:{}/", conf.display()));
            let transport = readme_lines(readme, "# /etc/postfix/transport")
                .replace("127.0.0.1:2424", &format!("127.0.0.1:{}", receiver.port));
            let recipients = readme_lines(readme, "# /etc/postfix/wechat-recipients");
            Extra {
                main_cf,
                tables: vec![
                    ("transport".into(), transport),
                    ("wechat-recipients".into(), recipients),
                ],
            }
        });

    let mut smtp = Smtp::connect(postfix.smtp_port);
    let refused = smtp.command("MAIL FROM:<forward@telemessage.com>", "530");
    assert!(refused.contains("STARTTLS"), "{refused}");
    smtp.start_tls(&certs.join("ca.pem"));
    smtp.command("MAIL FROM:<forward@telemessage.com>", "250");
    smtp.command("RCPT TO:<someone.else@wechat.contoso.com>", "550");
    smtp.command("RSET", "250");
    let queued = smtp.send(
        "forward@telemessage.com",
        &["archive@wechat.contoso.com"],
        &forwarded(Some("tls1@tm"), "over TLS"),
    );
    smtp.quit();
    let sent = postfix.wait_for(&queued, "status=sent", 1);
    assert!(sent[0].contains("relay=127.0.0.1"), "{sent:?}");
    assert!(
        postfix.logs().contains("TLS connection established from"),
        "{}",
        postfix.logs()
    );
    for mailbox in MAPPED {
        let found = copies(&archive, mailbox);
        assert_eq!(found.len(), 1, "{mailbox}: {found:?}");
        assert!(
            std::fs::read_to_string(&found[0])
                .unwrap()
                .contains("<tls1@tm>")
        );
    }
    assert_eq!(receiver.stop(), 0);
}

/// The lines after the line starting with `heading` in the README, up to
/// a blank line or the next `# ` heading, each ending in a newline.
fn readme_lines(readme: &str, heading: &str) -> String {
    let start = readme
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("the README has no {heading:?}"));
    let body = &readme[start + 1..];
    body[body.find('\n').unwrap() + 1..]
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("# ") && !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect()
}
