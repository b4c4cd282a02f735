//! The IMAP writer against a hostile server on loopback: absurd literal
//! lengths, a line that never ends, an `APPENDUID` naming four billion
//! UIDs. Each write ends with an error or a verdict well before the
//! connection timeout, without a panic and without reading the lie into
//! memory.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::secrets::Secret;

use super::*;

/// What the server answers to an `APPEND`.
#[derive(Clone, Copy)]
enum Lie {
    /// An untagged literal of 2^64-1 bytes, then silence.
    EndlessLiteral,
    /// Bytes without a line end, until the client hangs up.
    EndlessLine,
    /// A tagged OK whose APPENDUID names UIDs 1 to 4,294,967,295.
    HugeUidRange,
}

/// Serves one hostile IMAP server on a kernel-chosen loopback port.
async fn hostile_server(lie: Lie) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("port").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, lie));
        }
    });
    port
}

async fn serve(stream: TcpStream, lie: Lie) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let caps = "IMAP4rev1 SASL-IR AUTH=PLAIN LITERAL+ NAMESPACE UIDPLUS";
    let greeting = format!("* OK [CAPABILITY {caps}] hostile\r\n");
    if write.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    while let Some(command) = read_command(&mut read, &mut write).await {
        let mut words = command.split(' ');
        let tag = words.next().unwrap_or("*").to_owned();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let answer = match verb.as_str() {
            "AUTHENTICATE" | "LOGIN" => format!("{tag} OK [CAPABILITY {caps}] in\r\n"),
            "CAPABILITY" => format!("* CAPABILITY {caps}\r\n{tag} OK done\r\n"),
            "NAMESPACE" => format!("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n{tag} OK done\r\n"),
            "STATUS" => format!("* STATUS INBOX (MESSAGES 0)\r\n{tag} OK done\r\n"),
            "APPEND" => {
                lie_to(&mut write, &tag, lie).await;
                return;
            }
            _ => format!("{tag} OK done\r\n"),
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one command, literals included (answering a synchronising one).
async fn read_command(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Option<String> {
    let mut command = String::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches("\r\n").to_owned();
        command.push_str(&line);
        let Some(open) = line.rfind('{').filter(|_| line.ends_with('}')) else {
            return Some(command);
        };
        let spec = &line[open + 1..line.len() - 1];
        let (digits, sync) = match spec.strip_suffix('+') {
            Some(d) => (d, false),
            None => (spec, true),
        };
        let len: u64 = digits.parse().ok()?;
        if sync {
            write.write_all(b"+ go\r\n").await.ok()?;
        }
        let mut literal = vec![0; usize::try_from(len).ok()?];
        read.read_exact(&mut literal).await.ok()?;
    }
}

async fn lie_to(write: &mut tokio::net::tcp::OwnedWriteHalf, tag: &str, lie: Lie) {
    match lie {
        Lie::EndlessLiteral => {
            let _ = write
                .write_all(b"* 1 FETCH (BODY[] {18446744073709551615}\r\nxx")
                .await;
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        Lie::EndlessLine => {
            let chunk = vec![b'x'; 64 * 1024];
            let _ = write.write_all(b"* OK ").await;
            // Until the client hangs up; the test's deadline stops a client
            // that never does.
            while write.write_all(&chunk).await.is_ok() {}
        }
        Lie::HugeUidRange => {
            let answer = format!("{tag} OK [APPENDUID 1 1:4294967295] done\r\n");
            let _ = write.write_all(answer.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    }
}

/// Writes one copy into the hostile server; what the writer answered,
/// within a deadline far below the writer's 120 s connection timeout.
async fn write_into(lie: Lie) -> Result<Written, WriteError> {
    let port = hostile_server(lie).await;
    let config = ImapConfig::new(false, "127.0.0.1", port, "admin", FOLDER);
    let writer = ImapWriter::new(config, Secret::new("admin-secret")).expect("writer");
    let li = mailbox(LI);
    tokio::time::timeout(
        Duration::from_secs(60),
        write_message(&writer, &li, "itm_hostile", "2026-11-22T08:15:00Z", 2_000),
    )
    .await
    .expect("the write ends on its own, not by the connection timeout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_literal_fails_the_copy_instead_of_being_read() {
    let error = write_into(Lie::EndlessLiteral)
        .await
        .expect_err("a literal of 2^64-1 bytes is no answer");
    assert!(error.to_string().contains("oversized answer"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_never_ends_fails_the_copy_at_the_answer_cap() {
    let error = write_into(Lie::EndlessLine)
        .await
        .expect_err("an answer without end is no answer");
    assert!(error.to_string().contains("oversized answer"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appenduid_naming_four_billion_uids_is_not_expanded() {
    // Either verdict is honest (the APPEND succeeded; its UID is unknown),
    // but the writer must not build a list of four billion UIDs.
    match write_into(Lie::HugeUidRange).await {
        Ok(written) => assert!(
            written.location.len() < 1_000,
            "location: {} bytes",
            written.location.len()
        ),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
