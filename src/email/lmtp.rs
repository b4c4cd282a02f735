//! The LMTP server (RFC 2033) that a local MTA hands TeleMessage's SMTP
//! forwarding to. Each recipient's `250` goes out only after the message
//! is durable in every mailbox it belongs to and recorded in the ledger;
//! a target that is down gets `451` so the MTA keeps the message and
//! retries. Lines and messages are bounded; a stop request lets the
//! transaction in progress finish.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, MutexGuard, watch};

use super::{Accepted, Intake, MAX_MESSAGE_BYTES};

/// Longest command line (RFC 5321 allows 512; extensions add more).
const MAX_COMMAND_LINE: usize = 4096;
/// Most recipients in one transaction.
const MAX_RECIPIENTS: usize = 1000;
/// How long a client may stay silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 64;
/// A message is read into memory freely up to this size; a larger one
/// first waits for the one lane for large messages. Memory holds at most
/// `MAX_CONNECTIONS` small messages plus one large one (32 MiB), however
/// many large ones arrive at once; the others wait, unread, in their
/// sockets (TeleMessage's messages are a few KB).
const SMALL_MESSAGE: usize = 256 * 1024;

/// A byte stream from a client (TCP or Unix socket).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where the server listens.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Listener {
    async fn accept(&self) -> io::Result<Box<dyn Io>> {
        match self {
            Listener::Tcp(l) => {
                let stream = l.accept().await?.0;
                // Replies are whole lines already; do not hold them back.
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
            #[cfg(unix)]
            Listener::Unix(l, _) => Ok(Box::new(l.accept().await?.0)),
        }
    }
}

#[cfg(unix)]
impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves until `stop` turns true, then lets each connection finish the
/// transaction it is in and closes it with `421`.
pub async fn serve(listener: &Listener, intake: &Intake<'_>, mut stop: watch::Receiver<bool>) {
    let large_lane = Mutex::new(());
    let mut connections = FuturesUnordered::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => match accepted {
                Ok(io) => connections.push(connection(io, intake, &large_lane, stop.clone())),
                Err(e) => {
                    tracing::warn!("cannot accept an LMTP connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(()) = connections.next(), if !connections.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    while connections.next().await.is_some() {}
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn connection(
    io: Box<dyn Io>,
    intake: &Intake<'_>,
    large_lane: &Mutex<()>,
    stop: watch::Receiver<bool>,
) {
    let (reader, writer) = tokio::io::split(io);
    let mut conn = Connection {
        reader: BufReader::new(reader),
        writer,
        intake,
        large_lane,
        stop,
        from: None,
        recipients: Vec::new(),
    };
    if let Err(e) = conn.run().await {
        tracing::debug!("LMTP connection ended: {e}");
    }
}

struct Connection<'i, 's, R, W> {
    reader: BufReader<R>,
    writer: W,
    intake: &'i Intake<'s>,
    large_lane: &'i Mutex<()>,
    stop: watch::Receiver<bool>,
    from: Option<String>,
    recipients: Vec<String>,
}

/// What a bounded line read found.
enum Line {
    Text(Vec<u8>),
    TooLong,
    Closed,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<'_, '_, R, W> {
    async fn run(&mut self) -> io::Result<()> {
        self.reply("220 wechat-archiver LMTP ready").await?;
        loop {
            let line = tokio::select! {
                line = tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut self.reader, MAX_COMMAND_LINE)) => line,
                () = stopped(&mut self.stop) => {
                    return self.reply("421 4.3.2 shutting down; try again later").await;
                }
            };
            let line = match line {
                Err(_) => return self.reply("421 4.4.2 idle too long").await,
                Ok(line) => line?,
            };
            let line = match line {
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    self.reply("500 5.5.2 line too long").await?;
                    continue;
                }
                Line::Text(t) => String::from_utf8_lossy(&t).trim_end().to_owned(),
            };
            if !self.command(&line).await? {
                return Ok(());
            }
            if *self.stop.borrow() && self.from.is_none() {
                return self.reply("421 4.3.2 shutting down; try again later").await;
            }
        }
    }

    /// Handles one command; `false` ends the connection.
    async fn command(&mut self, line: &str) -> io::Result<bool> {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let arg = line.get(verb.len()..).unwrap_or_default().trim();
        match verb.as_str() {
            "LHLO" => {
                self.reset();
                let size = format!("250-SIZE {MAX_MESSAGE_BYTES}");
                let lines = [
                    "250-wechat-archiver",
                    "250-PIPELINING",
                    "250-ENHANCEDSTATUSCODES",
                    "250-8BITMIME",
                    &size,
                    "250 SMTPUTF8",
                ];
                self.reply(&lines.join("\r\n")).await?;
            }
            "HELO" | "EHLO" => self.reply("500 5.5.1 this is LMTP: use LHLO").await?,
            "MAIL" => self.mail(arg).await?,
            "RCPT" => self.rcpt(arg).await?,
            "DATA" => self.data().await?,
            "RSET" => {
                self.reset();
                self.reply("250 2.0.0 OK").await?;
            }
            "NOOP" => self.reply("250 2.0.0 OK").await?,
            "VRFY" => self.reply("252 2.5.2 cannot verify").await?,
            "QUIT" => {
                self.reply("221 2.0.0 bye").await?;
                return Ok(false);
            }
            _ => self.reply("500 5.5.2 unknown command").await?,
        }
        Ok(true)
    }

    fn reset(&mut self) {
        self.from = None;
        self.recipients.clear();
    }

    async fn mail(&mut self, arg: &str) -> io::Result<()> {
        if self.from.is_some() {
            return self.reply("503 5.5.1 nested MAIL command").await;
        }
        let Some(path) = path_arg(arg, "FROM:") else {
            return self.reply("501 5.5.4 syntax: MAIL FROM:<address>").await;
        };
        let declared = arg.split_whitespace().find_map(|p| {
            p.get(..5)
                .filter(|k| k.eq_ignore_ascii_case("SIZE="))
                .and_then(|_| p[5..].parse::<u64>().ok())
        });
        if declared.is_some_and(|s| s > MAX_MESSAGE_BYTES as u64) {
            return self
                .reply("552 5.3.4 message larger than this server accepts")
                .await;
        }
        self.from = Some(path);
        self.reply("250 2.1.0 OK").await
    }

    async fn rcpt(&mut self, arg: &str) -> io::Result<()> {
        if self.from.is_none() {
            return self.reply("503 5.5.1 MAIL first").await;
        }
        let Some(path) = path_arg(arg, "TO:").filter(|p| !p.is_empty()) else {
            return self.reply("501 5.5.4 syntax: RCPT TO:<address>").await;
        };
        if self.recipients.len() >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 too many recipients").await;
        }
        self.recipients.push(path);
        self.reply("250 2.1.5 OK").await
    }

    async fn data(&mut self) -> io::Result<()> {
        if self.from.is_none() || self.recipients.is_empty() {
            return self.reply("503 5.5.1 no valid recipients").await;
        }
        self.reply("354 end data with <CRLF>.<CRLF>").await?;
        let (message, _lane) = read_data(&mut self.reader, self.large_lane).await?;
        let recipients = std::mem::take(&mut self.recipients);
        self.from = None;
        let reply = match message {
            None => "552 5.3.4 message larger than this server accepts".to_owned(),
            Some(bytes) => outcome_reply(self.intake.accept(bytes, &recipients).await),
        };
        let replies = vec![reply; recipients.len()].join("\r\n");
        self.reply(&replies).await
    }

    /// Sends a reply in one write: a reply split over two small writes
    /// waits for the client's delayed ACK (Nagle), about 40 ms a reply.
    async fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut line = Vec::with_capacity(text.len() + 2);
        line.extend_from_slice(text.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.writer.write_all(&line).await?;
        self.writer.flush().await
    }
}

/// The reply every recipient gets for a delivery's outcome.
fn outcome_reply(outcome: Result<Accepted, super::EmailError>) -> String {
    match outcome {
        Ok(Accepted::Archived { id, .. }) => {
            format!("250 2.0.0 archived as {}", printable(id.as_str()))
        }
        Ok(Accepted::Unmapped { id }) => format!(
            "250 2.0.0 kept as {} (no participant maps to a mailbox yet)",
            printable(id.as_str())
        ),
        Ok(Accepted::Quarantined { .. }) => {
            "250 2.0.0 accepted into quarantine (cannot be parsed)".to_owned()
        }
        Ok(Accepted::Failed { reason, .. }) => {
            format!(
                "451 4.3.0 not archived yet, try again later: {}",
                printable(&reason)
            )
        }
        Err(e) => format!(
            "451 4.3.0 not archived yet, try again later: {}",
            printable(&e.to_string())
        ),
    }
}

/// Text safe for one reply line.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect()
}

/// The `<path>` after `FROM:` / `TO:`, without brackets.
fn path_arg(arg: &str, key: &str) -> Option<String> {
    let rest = arg
        .get(..key.len())
        .filter(|k| k.eq_ignore_ascii_case(key))
        .map(|_| arg[key.len()..].trim_start())?;
    let path = rest.split_whitespace().next().unwrap_or_default();
    let bare = path.strip_prefix('<')?.strip_suffix('>')?;
    Some(bare.to_owned())
}

/// Reads one line of at most `max` bytes (the rest of a longer line is
/// discarded).
async fn read_line(reader: &mut (impl AsyncBufRead + Unpin), max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                Line::Closed
            } else {
                Line::Text(line)
            });
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(pos) => (pos + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            if line.len() + take > max + 2 {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(&buf[..take]);
            }
        }
        reader.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}

/// Reads a message up to the lone `.`, dot-unstuffed; `None` when it is
/// larger than the limit (read to its end all the same). A message past
/// [`SMALL_MESSAGE`] holds the large lane, returned with it, until the
/// caller is done with the message.
async fn read_data<'l>(
    reader: &mut (impl AsyncBufRead + Unpin),
    large_lane: &'l Mutex<()>,
) -> io::Result<(Option<Bytes>, Option<MutexGuard<'l, ()>>)> {
    let mut message = Vec::new();
    let mut lane = None;
    let mut too_big = false;
    loop {
        let line = tokio::time::timeout(IDLE_TIMEOUT, read_line(reader, MAX_MESSAGE_BYTES))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle in DATA"))??;
        let line = match line {
            Line::Closed => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in DATA",
                ));
            }
            Line::TooLong => {
                too_big = true;
                continue;
            }
            Line::Text(line) => line,
        };
        if line == b".\r\n" || line == b".\n" || line == b"." {
            break;
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + line.len() > MAX_MESSAGE_BYTES {
            too_big = true;
            message = Vec::new();
        }
        if too_big {
            continue;
        }
        if lane.is_none() && message.len() + line.len() > SMALL_MESSAGE {
            lane = Some(large_lane.lock().await);
        }
        message.extend_from_slice(line);
    }
    Ok(((!too_big).then(|| Bytes::from(message)), lane))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_from_mail_and_rcpt() {
        assert_eq!(
            path_arg("FROM:<a@b> SIZE=10", "FROM:").as_deref(),
            Some("a@b")
        );
        assert_eq!(path_arg("from: <>", "FROM:").as_deref(), Some(""));
        assert_eq!(path_arg("TO:a@b", "TO:"), None);
    }

    #[tokio::test]
    async fn data_is_dot_unstuffed_and_bounded() {
        let mut input: &[u8] = b"Subject: x\r\n\r\n..dot\r\n.\r\nNEXT\r\n";
        let mut reader = BufReader::new(&mut input);
        let lane = Mutex::new(());
        let (got, held) = read_data(&mut reader, &lane).await.unwrap();
        assert!(held.is_none(), "a small message took the large lane");
        let got = got.unwrap();
        assert_eq!(&got[..], b"Subject: x\r\n\r\n.dot\r\n");
        let Line::Text(next) = read_line(&mut reader, 100).await.unwrap() else {
            panic!("no next line")
        };
        assert_eq!(next, b"NEXT\r\n");
    }
}
