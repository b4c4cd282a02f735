//! XOAUTH2 against a stand-in for Exchange Online.

use std::sync::Arc;

use wechat_archiver::content::Content;
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter, WriteError};
use wechat_archiver::secrets::Secret;

use super::*;

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
        in_reply_to: None,
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
