//! One authenticated IMAP connection. Commands are pipelined: any number
//! of tasks may send on it at once; a reader task routes each tagged
//! answer back to the task that sent the command, so APPENDs to one
//! mailbox overlap instead of waiting for each other's round trip.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf,
};
use tokio::net::TcpStream;
use tokio::sync::{Notify, RwLock, RwLockWriteGuard, Semaphore, oneshot};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::proto::{self, Capabilities, Line, Status, StatusLine};
use crate::secrets::Secret;
use routing::{Routing, mark_lost, read_answer, read_loop};

mod routing;

/// Non-synchronising literals allowed by LITERAL- (RFC 7888).
const LITERAL_MINUS_MAX: u64 = 4096;
const CHUNK: usize = 64 * 1024;
/// Messages up to this size may share a MULTIAPPEND; a bigger one goes
/// alone, so a refused batch (all or nothing) is cheap to resend.
const BATCH_MESSAGE_MAX: u64 = 1024 * 1024;
/// Limits of one MULTIAPPEND.
const BATCH_MAX: usize = 64;
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Reader = BufReader<ReadHalf<Box<dyn Io>>>;
type Writer = BufWriter<WriteHalf<Box<dyn Io>>>;

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub timeout: Duration,
}

/// Who to log in as.
pub enum Login<'a> {
    /// SASL PLAIN: `authz` is the mailbox, `authn` the admin.
    Plain {
        authz: &'a str,
        authn: &'a str,
        password: &'a Secret,
    },
    /// SASL XOAUTH2 for `user` with a bearer token.
    XOAuth2 { user: &'a str, token: &'a Secret },
}

/// How long a polite `LOGOUT` may wait for the server's answer.
const LOGOUT_WAIT: Duration = Duration::from_secs(10);

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Unreachable, TLS failed, or the server misbehaved before login.
    Connect(String),
    /// The server refused the login; the caller decides what that means.
    Refused(StatusLine),
    /// The login worked but the server shows no mailbox of the user
    /// (a server that lets an admin act as any address, as Cyrus does).
    NoMailbox(String),
}

/// Why a command got no answer.
#[derive(Debug)]
pub enum ConnError {
    /// The connection dropped, timed out or broke protocol; it is dead.
    Lost(String),
    /// The message to append could not be read; the connection is dead
    /// too (the server was left waiting for the rest of the literal).
    Content(std::io::Error),
}

/// The tagged answer to a command, with the untagged data sent before it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusLine,
    pub untagged: Vec<Vec<u8>>,
}

/// The sending side: the socket's write half, and a MULTIAPPEND left open
/// for the next message to join.
struct Outgoing {
    out: Writer,
    open: Option<OpenBatch>,
}

struct OpenBatch {
    tag: String,
    count: Arc<AtomicUsize>,
    bytes: u64,
}

/// The answer to an APPEND, and which message of it this one was when
/// several went in one MULTIAPPEND.
pub struct Appended {
    pub reply: Reply,
    pub batch: usize,
    pub index: usize,
}

/// An authenticated connection.
pub struct Conn {
    writer: Arc<tokio::sync::Mutex<Outgoing>>,
    routing: Arc<Mutex<Routing>>,
    reader: JoinHandle<()>,
    caps: Capabilities,
    timeout: Duration,
    tags: AtomicU64,
    /// APPENDs hold it shared; commands whose untagged answers must not
    /// mix with others' (EXAMINE, SEARCH, FETCH) hold it alone.
    exclusive: RwLock<()>,
    in_flight: Semaphore,
    /// Whether concurrent APPENDs may share one MULTIAPPEND command.
    batching: bool,
    /// Woken whenever the server answers a command.
    answered: Arc<Notify>,
}

/// Kills the connection if a command is abandoned half-sent (its future
/// dropped): the server would read the next command as the rest of it.
struct Sending<'a> {
    conn: &'a Conn,
    done: bool,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.conn
                .kill("a command was interrupted while it was being sent");
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Connects, reads the greeting and logs in.
    pub async fn open(
        endpoint: &Endpoint,
        login: &Login<'_>,
        pipeline_depth: usize,
        multiappend: bool,
    ) -> Result<Conn, OpenError> {
        let limit = endpoint.timeout;
        let opened = tokio::time::timeout(limit, Self::handshake(endpoint, login)).await;
        let (reader, writer, caps) = opened.map_err(|_| {
            OpenError::Connect(format!(
                "no answer from {}:{} within {}s",
                endpoint.host,
                endpoint.port,
                limit.as_secs()
            ))
        })??;
        let routing = Arc::new(Mutex::new(Routing::default()));
        let answered = Arc::new(Notify::new());
        let reader = tokio::spawn(read_loop(reader, routing.clone(), answered.clone()));
        let batching = multiappend && caps.has("MULTIAPPEND") && caps.has("LITERAL+");
        Ok(Conn {
            writer: Arc::new(tokio::sync::Mutex::new(Outgoing {
                out: writer,
                open: None,
            })),
            batching,
            answered,
            routing,
            reader,
            caps,
            timeout: endpoint.timeout,
            tags: AtomicU64::new(1),
            exclusive: RwLock::new(()),
            in_flight: Semaphore::new(pipeline_depth.max(1)),
        })
    }

    async fn handshake(
        endpoint: &Endpoint,
        login: &Login<'_>,
    ) -> Result<(Reader, Writer, Capabilities), OpenError> {
        let stream = connect(endpoint).await?;
        let (read, write) = tokio::io::split(stream);
        let mut reader = BufReader::with_capacity(CHUNK, read);
        let mut writer = BufWriter::with_capacity(CHUNK, write);
        let lost = |e: std::io::Error| OpenError::Connect(format!("connection failed: {e}"));
        let greeting = read_answer(&mut reader).await.map_err(lost)?;
        let mut caps = greeting_caps(&greeting)?;
        if caps.is_empty() {
            caps = capability(&mut reader, &mut writer, "C0").await?;
        }
        let status = authenticate(&mut reader, &mut writer, &caps, login).await?;
        if status.status != Status::Ok {
            return Err(OpenError::Refused(status));
        }
        let caps = match Capabilities::from_code(status.code.as_deref()) {
            Some(caps) => caps,
            None => capability(&mut reader, &mut writer, "C2").await?,
        };
        Ok((reader, writer, caps))
    }

    /// Whether the server announced `capability` (after login).
    pub fn has(&self, capability: &str) -> bool {
        self.caps.has(capability)
    }

    /// Ends the session with `LOGOUT`, as a polite client does, then
    /// closes the connection. Waits for the server at most [`LOGOUT_WAIT`]
    /// and never fails: the connection is closed either way.
    pub async fn logout(&self) {
        if self.is_alive() {
            let _ = tokio::time::timeout(LOGOUT_WAIT, self.run("LOGOUT")).await;
        }
        self.kill("logged out");
    }

    pub fn is_alive(&self) -> bool {
        self.routing.lock().expect("routing lock").lost.is_none()
    }

    /// Marks the connection dead and wakes every waiter.
    pub fn kill(&self, reason: &str) {
        self.reader.abort();
        mark_lost(&self.routing, reason);
    }

    /// Waits until no other command is in flight and keeps it so while
    /// the guard lives: for a sequence such as EXAMINE, SEARCH, UNSELECT.
    pub async fn alone(&self) -> Alone<'_> {
        Alone {
            conn: self,
            _guard: self.exclusive.write().await,
        }
    }

    async fn run(&self, command: &str) -> Result<Reply, ConnError> {
        let tag = self.next_tag();
        let reply = self.register(&tag)?;
        {
            let mut outgoing = self.writer.lock().await;
            let mut sending = self.start_sending(&mut outgoing).await?;
            let line = format!("{tag} {command}\r\n");
            self.send(&mut outgoing.out, line.as_bytes()).await?;
            self.flush(&mut outgoing.out).await?;
            sending.done = true;
        }
        self.wait(reply).await
    }

    /// Checks the connection may take a new command, closing a
    /// MULTIAPPEND left open so the command does not land inside it.
    async fn start_sending(&self, outgoing: &mut Outgoing) -> Result<Sending<'_>, ConnError> {
        if !self.is_alive() {
            return Err(self.lost_reason());
        }
        if outgoing.open.take().is_some() {
            self.send(&mut outgoing.out, b"\r\n").await?;
        }
        Ok(Sending {
            conn: self,
            done: false,
        })
    }

    /// APPENDs a message streamed from `message` (exactly `len` bytes) to
    /// `folder` with `attributes` (flags and date), as a non-synchronising
    /// literal when the server allows it. With `may_batch`, a small message
    /// joins a MULTIAPPEND that other tasks are filling on this connection,
    /// so the server stores the lot in one transaction.
    pub async fn append(
        &self,
        folder: &str,
        attributes: &str,
        message: &mut (dyn AsyncRead + Unpin + Send),
        len: u64,
        may_batch: bool,
    ) -> Result<Appended, ConnError> {
        let _slot = self.in_flight.acquire().await.expect("never closed");
        let _shared = self.exclusive.read().await;
        let batching = may_batch && self.batching && len <= BATCH_MESSAGE_MAX;
        let mut outgoing = self.writer.lock().await;
        if !self.is_alive() {
            return Err(self.lost_reason());
        }
        let joinable = batching
            && outgoing.open.as_ref().is_some_and(|b| {
                b.count.load(Ordering::Relaxed) < BATCH_MAX && b.bytes + len <= BATCH_BYTES
            });
        let (tag, count, index, reply, mut sending) = if joinable {
            let batch = outgoing.open.as_mut().expect("open batch");
            let index = batch.count.fetch_add(1, Ordering::Relaxed);
            batch.bytes += len;
            let (tag, count) = (batch.tag.clone(), batch.count.clone());
            let reply = self.register(&tag)?;
            let sending = Sending {
                conn: self,
                done: false,
            };
            let head = format!(" {attributes} {{{len}+}}\r\n");
            self.send(&mut outgoing.out, head.as_bytes()).await?;
            (tag, count, index, reply, sending)
        } else {
            let sending = self.start_sending(&mut outgoing).await?;
            let tag = self.next_tag();
            let mut reply = self.register(&tag)?;
            let plus = self.caps.has("LITERAL+")
                || (self.caps.has("LITERAL-") && len <= LITERAL_MINUS_MAX);
            let marker = if plus { "+" } else { "" };
            let head = format!("{tag} APPEND {folder} {attributes} {{{len}{marker}}}\r\n");
            self.send(&mut outgoing.out, head.as_bytes()).await?;
            if !plus {
                let go_on = self.register_continuation()?;
                self.flush(&mut outgoing.out).await?;
                if let Some(early) = self.await_continuation(go_on, &mut reply).await? {
                    let mut sending = sending;
                    sending.done = true;
                    return Ok(Appended {
                        reply: early,
                        batch: 1,
                        index: 0,
                    });
                }
            }
            (tag, Arc::new(AtomicUsize::new(1)), 0, reply, sending)
        };
        self.send_literal(&mut outgoing.out, message, len).await?;
        if batching {
            if !joinable {
                outgoing.open = Some(OpenBatch {
                    tag: tag.clone(),
                    count: count.clone(),
                    bytes: len,
                });
            }
            sending.done = true;
            drop(outgoing);
            if !joinable {
                self.close_later(tag);
            }
        } else {
            self.send(&mut outgoing.out, b"\r\n").await?;
            self.flush(&mut outgoing.out).await?;
            sending.done = true;
            drop(outgoing);
        }
        let reply = self.wait(reply).await?;
        let batch = count.load(Ordering::Relaxed);
        if index == 0 {
            tracing::trace!(batch, status = ?reply.status.status, "APPEND answered");
        }
        Ok(Appended {
            reply,
            batch,
            index,
        })
    }

    /// Ends the MULTIAPPEND `tag` once the server has answered every
    /// other command on the connection: until then it could not start on
    /// this one anyway, so messages arriving meanwhile join it for free.
    fn close_later(&self, tag: String) {
        let writer = self.writer.clone();
        let routing = self.routing.clone();
        let answered = self.answered.clone();
        let limit = self.timeout;
        tokio::spawn(async move {
            loop {
                let notified = answered.notified();
                let mut outgoing = writer.lock().await;
                let Some(batch) = outgoing.open.as_ref().filter(|b| b.tag == tag) else {
                    return;
                };
                let full =
                    batch.count.load(Ordering::Relaxed) >= BATCH_MAX || batch.bytes >= BATCH_BYTES;
                let busy = routing
                    .lock()
                    .expect("routing lock")
                    .waiting
                    .keys()
                    .any(|t| *t != tag);
                if full || !busy {
                    outgoing.open = None;
                    let sent = tokio::time::timeout(limit, async {
                        outgoing.out.write_all(b"\r\n").await?;
                        outgoing.out.flush().await
                    })
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        mark_lost(&routing, "sending failed");
                    }
                    return;
                }
                drop(outgoing);
                let _ = tokio::time::timeout(limit, notified).await;
            }
        });
    }

    /// Waits for the server's `+`; returns its tagged answer instead if it
    /// refused the command before the literal.
    async fn await_continuation(
        &self,
        go_on: oneshot::Receiver<()>,
        reply: &mut oneshot::Receiver<Reply>,
    ) -> Result<Option<Reply>, ConnError> {
        let waited = tokio::time::timeout(self.timeout, async {
            tokio::select! {
                cont = go_on => cont.map(|_| None),
                early = &mut *reply => early.map(Some),
            }
        })
        .await;
        match waited {
            Ok(Ok(early)) => {
                self.routing.lock().expect("routing lock").continuation = None;
                Ok(early)
            }
            Ok(Err(_)) => Err(self.lost_reason()),
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn send_literal(
        &self,
        writer: &mut Writer,
        message: &mut (dyn AsyncRead + Unpin + Send),
        len: u64,
    ) -> Result<(), ConnError> {
        let mut buf = vec![0u8; (len as usize).clamp(1, CHUNK)];
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let got = message
                .read(&mut buf[..want])
                .await
                .map_err(|e| self.content_failed(e))?;
            if got == 0 {
                let short = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the message ended {left} bytes before its announced length"),
                );
                return Err(self.content_failed(short));
            }
            self.send(writer, &buf[..got]).await?;
            left -= got as u64;
        }
        let extra = message
            .read(&mut buf[..1])
            .await
            .map_err(|e| self.content_failed(e))?;
        if extra > 0 {
            let long = std::io::Error::other("the message is longer than its announced length");
            return Err(self.content_failed(long));
        }
        Ok(())
    }

    fn content_failed(&self, error: std::io::Error) -> ConnError {
        self.kill("a message could not be read while it was being sent");
        ConnError::Content(error)
    }

    async fn send(&self, writer: &mut Writer, bytes: &[u8]) -> Result<(), ConnError> {
        match tokio::time::timeout(self.timeout, writer.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.broken(&format!("sending failed: {e}"))),
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn flush(&self, writer: &mut Writer) -> Result<(), ConnError> {
        match tokio::time::timeout(self.timeout, writer.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.broken(&format!("sending failed: {e}"))),
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn wait(&self, reply: oneshot::Receiver<Reply>) -> Result<Reply, ConnError> {
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(self.lost_reason()),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn next_tag(&self) -> String {
        format!("W{}", self.tags.fetch_add(1, Ordering::Relaxed))
    }

    fn register(&self, tag: &str) -> Result<oneshot::Receiver<Reply>, ConnError> {
        let (tx, rx) = oneshot::channel();
        let mut routing = self.routing.lock().expect("routing lock");
        if let Some(reason) = &routing.lost {
            return Err(ConnError::Lost(reason.clone()));
        }
        routing.waiting.entry(tag.to_owned()).or_default().push(tx);
        Ok(rx)
    }

    fn register_continuation(&self) -> Result<oneshot::Receiver<()>, ConnError> {
        let (tx, rx) = oneshot::channel();
        let mut routing = self.routing.lock().expect("routing lock");
        if let Some(reason) = &routing.lost {
            return Err(ConnError::Lost(reason.clone()));
        }
        routing.continuation = Some(tx);
        Ok(rx)
    }

    fn lost_reason(&self) -> ConnError {
        let routing = self.routing.lock().expect("routing lock");
        ConnError::Lost(
            routing
                .lost
                .clone()
                .unwrap_or_else(|| "the connection closed".to_owned()),
        )
    }

    fn broken(&self, reason: &str) -> ConnError {
        self.kill(reason);
        self.lost_reason()
    }

    fn timed_out(&self) -> ConnError {
        let reason = format!(
            "no answer within {}",
            crate::text::human_duration(self.timeout)
        );
        self.broken(&reason)
    }
}

/// Sole use of a connection; see [`Conn::alone`].
pub struct Alone<'a> {
    conn: &'a Conn,
    _guard: RwLockWriteGuard<'a, ()>,
}

impl Alone<'_> {
    pub async fn run(&self, command: &str) -> Result<Reply, ConnError> {
        self.conn.run(command).await
    }
}

async fn connect(endpoint: &Endpoint) -> Result<Box<dyn Io>, OpenError> {
    let failed = |e: &dyn std::fmt::Display| {
        OpenError::Connect(format!(
            "cannot connect to {}:{}: {e}",
            endpoint.host, endpoint.port
        ))
    };
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| failed(&e))?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &endpoint.tls else {
        return Ok(Box::new(tcp));
    };
    let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| {
        failed(&format!(
            "{:?} is not a valid TLS server name ({e})",
            endpoint.host
        ))
    })?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| failed(&format!("TLS handshake failed: {e}")))?;
    Ok(Box::new(stream))
}

fn greeting_caps(greeting: &[u8]) -> Result<Capabilities, OpenError> {
    let text = String::from_utf8_lossy(greeting);
    let status = text
        .strip_prefix("* ")
        .and_then(proto::parse_status)
        .ok_or_else(|| OpenError::Connect(format!("not an IMAP server (it said {text:?})")))?;
    match status.status {
        Status::Ok => Ok(Capabilities::from_code(status.code.as_deref()).unwrap_or_default()),
        Status::Preauth => Err(OpenError::Connect(
            "the server logged the connection in by itself (PREAUTH), so no mailbox can be chosen"
                .to_owned(),
        )),
        _ => Err(OpenError::Connect(format!(
            "the server turned the connection away: {}",
            status.describe()
        ))),
    }
}

async fn capability(
    reader: &mut Reader,
    writer: &mut Writer,
    tag: &str,
) -> Result<Capabilities, OpenError> {
    let lost = |e: std::io::Error| OpenError::Connect(format!("connection failed: {e}"));
    writer
        .write_all(format!("{tag} CAPABILITY\r\n").as_bytes())
        .await
        .map_err(lost)?;
    writer.flush().await.map_err(lost)?;
    let mut caps = Capabilities::default();
    loop {
        let answer = read_answer(reader).await.map_err(lost)?;
        match proto::classify(&answer).map_err(OpenError::Connect)? {
            Line::Untagged(data) => {
                if let Some(found) = Capabilities::from_untagged(&data) {
                    caps = found;
                }
            }
            Line::Tagged { .. } => return Ok(caps),
            Line::Continuation => {
                return Err(OpenError::Connect(
                    "unexpected '+' from the server".to_owned(),
                ));
            }
        }
    }
}

async fn authenticate(
    reader: &mut Reader,
    writer: &mut Writer,
    caps: &Capabilities,
    login: &Login<'_>,
) -> Result<StatusLine, OpenError> {
    let (mechanism, response, cancel) = sasl_response(login);
    let lost = |e: std::io::Error| OpenError::Connect(format!("connection failed: {e}"));
    let command = if caps.has("SASL-IR") {
        Zeroizing::new(format!(
            "A1 AUTHENTICATE {mechanism} {}\r\n",
            response.as_str()
        ))
    } else {
        Zeroizing::new(format!("A1 AUTHENTICATE {mechanism}\r\n"))
    };
    writer.write_all(command.as_bytes()).await.map_err(lost)?;
    writer.flush().await.map_err(lost)?;
    let mut sent = caps.has("SASL-IR");
    loop {
        let answer = read_answer(reader).await.map_err(lost)?;
        match proto::classify(&answer).map_err(OpenError::Connect)? {
            Line::Continuation => {
                let reply = if sent {
                    cancel.to_owned()
                } else {
                    sent = true;
                    response.as_str().to_owned()
                };
                let reply = Zeroizing::new(format!("{reply}\r\n"));
                writer.write_all(reply.as_bytes()).await.map_err(lost)?;
                writer.flush().await.map_err(lost)?;
            }
            Line::Untagged(_) => {}
            Line::Tagged { status, .. } => return Ok(status),
        }
    }
}

/// The SASL mechanism, its base64 initial response, and what to answer a
/// server challenge after it (XOAUTH2 sends an error as a challenge and
/// expects an empty line; PLAIN has no challenge, so cancel).
fn sasl_response(login: &Login<'_>) -> (&'static str, Zeroizing<String>, &'static str) {
    let engine = base64::engine::general_purpose::STANDARD;
    match login {
        Login::Plain {
            authz,
            authn,
            password,
        } => {
            let raw = Zeroizing::new(format!("{authz}\0{authn}\0{}", password.expose()));
            ("PLAIN", Zeroizing::new(engine.encode(raw.as_bytes())), "*")
        }
        Login::XOAuth2 { user, token } => {
            let raw = Zeroizing::new(format!(
                "user={user}\x01auth=Bearer {}\x01\x01",
                token.expose()
            ));
            ("XOAUTH2", Zeroizing::new(engine.encode(raw.as_bytes())), "")
        }
    }
}
