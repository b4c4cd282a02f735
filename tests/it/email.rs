//! E-mail sources (`telemessage-email.md`): `deliver`, `import` and the
//! LMTP server `receive`, run as the real binary into a Maildir.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestEnv, files_under};

/// Creates an e-mail connector `tm` writing into `archive/`.
pub fn email_connector(env: &TestEnv, extra: &[&str]) -> PathBuf {
    let archive = env.path("archive");
    email_connector_to(env, &format!("maildir:{}", archive.display()), extra);
    archive
}

/// Creates an e-mail connector `tm` writing into `target`.
pub fn email_connector_to(env: &TestEnv, target: &str, extra: &[&str]) {
    let mut args = vec![
        "create",
        "tm",
        "--source",
        "email",
        "--target",
        target,
        "--domain",
        "contoso.com",
        "--accept-terms",
    ];
    args.extend_from_slice(extra);
    env.run(&args).assert_code(0);
}

/// A forwarded message in TeleMessage's default participant format.
pub fn forwarded(id: Option<&str>, body: &str) -> String {
    let id = id
        .map(|i| format!("Message-ID: <{i}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: \"Li Wei +8613800138000\" <li.wei@contoso.com>\r\n\
To: \"Wang Fang +8613900139000\" <wang.fang@contoso.com>, \"Ext +8613700137000\" <ext@example.cn>\r\n\
{id}Date: Sun, 22 Nov 2026 08:15:00 +0000\r\nSubject: WeChat\r\n\r\n{body}\r\n"
    )
}

/// The archived copies in a mailbox's archive folder.
pub fn copies(archive: &Path, mailbox: &str) -> Vec<PathBuf> {
    files_under(&archive.join(mailbox).join(".WeChat Archiver").join("cur"))
}

pub fn deliver(env: &TestEnv, message: &[u8], extra: &[&str]) -> crate::support::Run {
    let mut cmd = env.command(["deliver"].iter().chain(extra));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // `deliver` stops reading a message over the limit: a broken pipe then.
    let _ = child.stdin.take().unwrap().write_all(message);
    child.wait_with_output().unwrap().into()
}

#[test]
fn deliver_archives_once_per_mailbox_and_maps_only_the_organisation() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let message = forwarded(Some("m1@telemessage"), "hello");
    deliver(&env, message.as_bytes(), &[]).assert_code(0);
    // An MTA retry, with a relay's trace field on top.
    let retried =
        format!("Received: from relay by mx; Sun, 22 Nov 2026 08:15:01 +0000\r\n{message}");
    deliver(&env, retried.as_bytes(), &[]).assert_code(0);
    for mailbox in ["li.wei@contoso.com", "wang.fang@contoso.com"] {
        let found = copies(&archive, mailbox);
        assert_eq!(found.len(), 1, "{mailbox}: {found:?}");
        let text = std::fs::read_to_string(&found[0]).unwrap();
        assert!(
            text.contains("X-WeChat-Archiver-Item-Id: <m1@telemessage>"),
            "{text}"
        );
        assert!(
            text.ends_with(&message),
            "the original is kept byte for byte"
        );
    }
    assert!(
        !archive.join("ext@example.cn").exists(),
        "an outside address is not a mailbox"
    );
}

#[test]
fn a_message_without_id_is_known_by_its_bytes_and_a_collision_keeps_both() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    deliver(&env, forwarded(None, "no id").as_bytes(), &[]).assert_code(0);
    deliver(&env, forwarded(None, "no id").as_bytes(), &[]).assert_code(0);
    assert_eq!(copies(&archive, "li.wei@contoso.com").len(), 1);
    deliver(&env, forwarded(Some("same@tm"), "first").as_bytes(), &[]).assert_code(0);
    deliver(&env, forwarded(Some("same@tm"), "second").as_bytes(), &[]).assert_code(0);
    let found = copies(&archive, "li.wei@contoso.com");
    assert_eq!(found.len(), 3, "{found:?}");
    let all: String = found
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(all.contains("Item-Id: sha256:"));
    assert!(all.contains("Item-Id: <same@tm>\r\n"));
    assert!(all.contains("Item-Id: <same@tm>#"));
}

#[test]
fn a_journal_report_is_archived_as_its_original_and_its_envelope_counts() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let original = "From: \"Li Wei +8613800138000\" <li.wei@contoso.com>\r\nTo: ext@example.cn\r\n\
Message-ID: <orig@tm>\r\nSubject: inner\r\n\r\nhello from inside\r\n";
    let report = format!(
        "From: journal@contoso.com\r\nTo: archive@contoso.com\r\nMessage-ID: <envelope@x>\r\n\
X-MS-Journal-Report:\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nSender: li.wei@contoso.com\r\nRecipient: zhao.lei@contoso.com\r\n\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n--b--\r\n"
    );
    deliver(&env, report.as_bytes(), &[]).assert_code(0);
    for mailbox in ["li.wei@contoso.com", "zhao.lei@contoso.com"] {
        let found = copies(&archive, mailbox);
        assert_eq!(found.len(), 1, "{mailbox}");
        let text = std::fs::read_to_string(&found[0]).unwrap();
        assert!(text.contains("Item-Id: <orig@tm>"), "{text}");
        assert!(!text.contains("X-MS-Journal-Report"), "{text}");
        assert!(text.contains(original.trim_end()), "{text}");
    }
    assert!(!archive.join("archive@contoso.com").exists());
}

#[test]
fn garbage_is_quarantined_and_a_huge_message_is_a_data_error() {
    let env = TestEnv::new();
    email_connector(&env, &[]);
    deliver(&env, b"\x00\x01\x02 not mail", &[]).assert_code(0);
    let kept: Vec<_> = files_under(&env.home.join("quarantine").join("tm"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(std::fs::read(&kept[0]).unwrap(), b"\x00\x01\x02 not mail");
    let status = env.run(["status", "--json"]);
    status.assert_code(0);
    assert_eq!(
        status.json()["connectors"][0]["quarantine"]["messages"],
        1,
        "{}",
        status.stdout
    );
    let human = env.run(["status"]);
    assert!(
        human
            .stdout
            .contains("1 received messages could not be parsed")
            && human.stdout.contains("import --connector tm"),
        "{}",
        human.stdout
    );
    let huge = vec![b'a'; 33 * 1024 * 1024];
    deliver(&env, &huge, &[]).assert_code(65);
}

#[test]
fn a_target_that_is_down_is_a_temporary_failure_for_deliver() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    deliver(&env, forwarded(Some("up@tm"), "x").as_bytes(), &[]).assert_code(0);
    let moved = env.path("archive-away");
    std::fs::rename(&archive, &moved).unwrap();
    std::fs::write(&archive, b"not a directory").unwrap();
    let run = deliver(&env, forwarded(Some("down@tm"), "y").as_bytes(), &[]);
    run.assert_code(75);
    std::fs::remove_file(&archive).unwrap();
    std::fs::rename(&moved, &archive).unwrap();
    deliver(&env, forwarded(Some("down@tm"), "y").as_bytes(), &[]).assert_code(0);
    assert_eq!(copies(&archive, "li.wei@contoso.com").len(), 2);
}

#[test]
fn the_recipient_names_the_mailbox_when_asked() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &["--mailbox-from-recipient"]);
    let message = "From: \"Ext +8613700137000\" <ext@example.cn>\r\nTo: other@example.cn\r\n\
Message-ID: <r@tm>\r\n\r\nhi\r\n";
    deliver(
        &env,
        message.as_bytes(),
        &["--recipient", "zhao.lei+wechat@contoso.com"],
    )
    .assert_code(0);
    assert_eq!(copies(&archive, "zhao.lei@contoso.com").len(), 1);
}

/// Writes a ZIP batch with the given entries (name, content).
pub fn zip_batch(path: &Path, entries: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn import_takes_a_valid_batch_once_and_refuses_a_bad_one_whole() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let (a, b) = (
        forwarded(Some("z1@tm"), "one"),
        forwarded(Some("z2@tm"), "two"),
    );
    let good = env.path("202611220000-TeleMessage_1_0100.zip");
    zip_batch(
        &good,
        &[
            ("a.eml", a.as_bytes()),
            ("b.eml", b.as_bytes()),
            ("batch.mf", b"Count: 2\r\na.eml\r\nb.eml\r\n"),
        ],
    );
    let wrong_count = env.path("202611220000-TeleMessage_2_0100.zip");
    let c = forwarded(Some("z3@tm"), "three");
    zip_batch(
        &wrong_count,
        &[
            ("c.eml", c.as_bytes()),
            ("batch.mf", b"Count: 2\r\nc.eml\r\n"),
        ],
    );
    let missing = env.path("202611220000-TeleMessage_3_0100.zip");
    let d = forwarded(Some("z4@tm"), "four");
    zip_batch(
        &missing,
        &[
            ("d.eml", d.as_bytes()),
            ("batch.mf", b"Count: 1\r\ne.eml\r\n"),
        ],
    );
    let run = env.run([
        "import".as_ref(),
        "--json".as_ref(),
        good.as_os_str(),
        wrong_count.as_os_str(),
        missing.as_os_str(),
    ]);
    run.assert_code(3);
    let json = run.json();
    let batches = json["batches"].as_array().unwrap();
    assert_eq!(batches[0]["valid"], true);
    assert_eq!(batches[1]["valid"], false);
    assert!(
        batches[1]["problems"][0]
            .as_str()
            .unwrap()
            .contains("Count: is 2")
    );
    assert_eq!(batches[2]["valid"], false);
    let problems = batches[2]["problems"].to_string();
    assert!(
        problems.contains("e.eml is listed in the manifest but missing"),
        "{problems}"
    );
    assert_eq!(json["written"], 4, "two messages, two mailboxes each");
    assert_eq!(
        copies(&archive, "li.wei@contoso.com").len(),
        2,
        "nothing from the refused batches"
    );
    let again = env.run(["import".as_ref(), "--json".as_ref(), good.as_os_str()]);
    again.assert_code(0);
    assert_eq!(again.json()["written"], 0);
    assert_eq!(again.json()["already_archived"], 4);
}

#[test]
fn import_refuses_paths_inside_a_batch_and_reads_loose_files_and_directories() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let evil = env.path("evil.zip");
    let m = forwarded(Some("e1@tm"), "x");
    zip_batch(
        &evil,
        &[
            ("../a.eml", m.as_bytes()),
            ("batch.mf", b"Count: 1\r\n../a.eml\r\n"),
        ],
    );
    let run = env.run(["import".as_ref(), evil.as_os_str()]);
    run.assert_code(3);
    assert!(
        run.stdout.contains("not a plain file name"),
        "{}",
        run.stdout
    );
    let dir = env.path("drop");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/one.eml"), forwarded(Some("l1@tm"), "1")).unwrap();
    std::fs::write(dir.join("two.eml"), forwarded(Some("l2@tm"), "2")).unwrap();
    std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    env.run(["import".as_ref(), dir.as_os_str()]).assert_code(0);
    assert_eq!(copies(&archive, "wang.fang@contoso.com").len(), 2);
}

/// A running `receive` on a free loopback port.
pub struct Receiver {
    pub child: Child,
    pub port: u16,
}

impl Receiver {
    pub fn start(env: &TestEnv) -> Receiver {
        Receiver::start_with_secrets(env, None)
    }

    /// With `WECHAT_ARCHIVER_PASSWORD_FILE` set, for a target with a secret.
    pub fn start_with_secrets(env: &TestEnv, secrets: Option<&Path>) -> Receiver {
        let port = free_port();
        let mut command = env.command(["receive", "--listen", &format!("127.0.0.1:{port}")]);
        if let Some(file) = secrets {
            command.env("WECHAT_ARCHIVER_PASSWORD_FILE", file);
        }
        let child = command.stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "receive did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Receiver { child, port }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> i32 {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal LMTP client: one transaction, the replies after DATA.
pub struct Lmtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Lmtp {
    pub fn connect(port: u16) -> Lmtp {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut c = Lmtp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert!(c.reply().starts_with("220"));
        c.send("LHLO test");
        assert!(c.reply().starts_with("250"));
        c
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// One whole reply (multi-line replies joined).
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    /// Sends a message to the recipients; the reply per recipient.
    pub fn deliver(&mut self, recipients: &[&str], message: &str) -> Vec<String> {
        self.send("MAIL FROM:<tm@telemessage.com>");
        assert!(self.reply().starts_with("250"));
        for r in recipients {
            self.send(&format!("RCPT TO:<{r}>"));
            assert!(self.reply().starts_with("250"));
        }
        self.send("DATA");
        assert!(self.reply().starts_with("354"));
        for line in message.split_inclusive("\r\n") {
            if line.starts_with('.') {
                self.writer.write_all(b".").unwrap();
            }
            self.writer.write_all(line.as_bytes()).unwrap();
        }
        self.send(".");
        recipients.iter().map(|_| self.reply()).collect()
    }
}

#[test]
fn receive_replies_per_recipient_only_once_durable_and_451_while_the_target_is_down() {
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let receiver = Receiver::start(&env);
    let mut lmtp = Lmtp::connect(receiver.port);
    let message = forwarded(Some("lm1@tm"), ".a line with a leading dot");
    let replies = lmtp.deliver(&["archive@contoso.com", "second@contoso.com"], &message);
    assert_eq!(replies.len(), 2);
    assert!(replies.iter().all(|r| r.starts_with("250 ")), "{replies:?}");
    let found = copies(&archive, "li.wei@contoso.com");
    assert_eq!(found.len(), 1, "the copy is there when 250 is sent");
    assert!(
        std::fs::read_to_string(&found[0])
            .unwrap()
            .ends_with(&message)
    );
    // The same message again (an MTA retry) is archived once.
    let replies = lmtp.deliver(&["archive@contoso.com"], &message);
    assert!(replies[0].starts_with("250 "), "{replies:?}");
    assert_eq!(copies(&archive, "li.wei@contoso.com").len(), 1);
    // The target goes away: 451, so the MTA keeps the message.
    let moved = env.path("archive-away");
    std::fs::rename(&archive, &moved).unwrap();
    std::fs::write(&archive, b"not a directory").unwrap();
    let replies = lmtp.deliver(
        &["archive@contoso.com"],
        &forwarded(Some("lm2@tm"), "later"),
    );
    assert!(replies[0].starts_with("451 4."), "{replies:?}");
    std::fs::remove_file(&archive).unwrap();
    std::fs::rename(&moved, &archive).unwrap();
    let replies = lmtp.deliver(
        &["archive@contoso.com"],
        &forwarded(Some("lm2@tm"), "later"),
    );
    assert!(replies[0].starts_with("250 "), "{replies:?}");
    // Garbage is accepted into the quarantine, never bounced.
    let replies = lmtp.deliver(&["archive@contoso.com"], "\u{1}\u{2} garbage\r\n");
    assert!(replies[0].starts_with("250 "), "{replies:?}");
    lmtp.send("QUIT");
    assert_eq!(receiver.stop(), 0);
    assert_eq!(copies(&archive, "li.wei@contoso.com").len(), 2);
}

#[test]
fn receive_refuses_a_message_too_large_and_a_public_address() {
    let env = TestEnv::new();
    email_connector(&env, &[]);
    env.run(["receive", "--listen", "0.0.0.0:2424"])
        .assert_code(2);
    let receiver = Receiver::start(&env);
    let mut lmtp = Lmtp::connect(receiver.port);
    lmtp.send("MAIL FROM:<a@b> SIZE=999999999");
    assert!(lmtp.reply().starts_with("552 5.3.4"));
    let big = format!("{}\r\n", "x".repeat(998)).repeat(34 * 1024);
    let replies = lmtp.deliver(
        &["archive@contoso.com"],
        &format!("Subject: big\r\n\r\n{big}"),
    );
    assert!(replies[0].starts_with("552 5.3.4"), "{replies:?}");
    assert_eq!(receiver.stop(), 0);
}

#[test]
fn telemessage_s_own_mapping_file_validates_and_maps() {
    let env = TestEnv::new();
    let csv = env.path("telemessage.csv");
    std::fs::write(
        &csv,
        "External User ID,Microsoft 365 User Mailbox\r\n8613700137000,zhao.lei@contoso.com\r\n",
    )
    .unwrap();
    let report = env.run([
        "map".as_ref(),
        "validate".as_ref(),
        "--json".as_ref(),
        csv.as_os_str(),
    ]);
    report.assert_code(0);
    assert_eq!(report.json()["valid"], 1);
    let archive = email_connector(&env, &["--mapping", csv.to_str().unwrap()]);
    // The number is only in the display name; the address is outside.
    deliver(&env, forwarded(Some("map@tm"), "x").as_bytes(), &[]).assert_code(0);
    assert_eq!(copies(&archive, "zhao.lei@contoso.com").len(), 1);
}

/// Many large messages at once: `receive` reads one large message at a
/// time (the others wait in their sockets), so its memory stays far below
/// their sum, and every one is archived.
#[test]
fn large_messages_arriving_at_once_are_all_archived_in_bounded_memory() {
    const SENDERS: usize = 12;
    let env = TestEnv::new();
    let archive = email_connector(&env, &[]);
    let receiver = Receiver::start(&env);
    let body = format!("{}\r\n", "x".repeat(998)).repeat(8 * 1024);
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let message = forwarded(Some(&format!("big{i}@tm")), &body);
            let port = receiver.port;
            std::thread::spawn(move || {
                Lmtp::connect(port).deliver(&["archive@contoso.com"], &message)
            })
        })
        .collect();
    for sender in senders {
        let replies = sender.join().unwrap();
        assert!(replies[0].starts_with("250 "), "{replies:?}");
    }
    let peak_mib = peak_rss_kib(receiver.child.id()) / 1024;
    assert_eq!(copies(&archive, "li.wei@contoso.com").len(), SENDERS);
    assert_eq!(receiver.stop(), 0);
    // The messages alone are 96 MiB.
    assert!(peak_mib < 64, "receive peaked at {peak_mib} MiB");
}

/// A process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}
