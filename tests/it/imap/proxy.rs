//! A relay between the writer and the server that cuts connections and
//! counts APPEND commands, connections, and the connections the writer
//! logged out of before closing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A TCP relay between the writer and the server that can cut a
/// connection at a chosen moment, as a network fault would.
pub struct CutProxy {
    pub port: u16,
    pub cut: Arc<std::sync::Mutex<Cut>>,
    /// APPEND commands seen from the writer (a MULTIAPPEND counts once).
    pub appends: Arc<std::sync::atomic::AtomicUsize>,
    pub sessions: Arc<Sessions>,
}

/// What the writer did with its connections.
#[derive(Default)]
pub struct Sessions {
    /// Connections the writer opened.
    pub opened: AtomicUsize,
    /// Connections the writer closed after sending `LOGOUT`.
    pub logged_out: AtomicUsize,
    /// Connections the writer closed without it.
    pub dropped: AtomicUsize,
}

impl Sessions {
    /// (opened, logged out, dropped).
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.opened.load(Ordering::SeqCst),
            self.logged_out.load(Ordering::SeqCst),
            self.dropped.load(Ordering::SeqCst),
        )
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Cut {
    Never,
    /// After this many more bytes from the writer (mid-APPEND).
    AfterClientBytes(usize),
    /// Instead of passing on the server's answer containing `APPENDUID`:
    /// the server stored the copy, the writer never hears so.
    BeforeAppendReply,
    /// Set once a cut happened (the next connections pass untouched).
    Done,
}

impl CutProxy {
    pub async fn start(upstream: u16) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(std::sync::Mutex::new(Cut::Never));
        let appends = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sessions = Arc::new(Sessions::default());
        let (shared, counter, seen) = (cut.clone(), appends.clone(), sessions.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                    .await
                    .expect("upstream");
                seen.opened.fetch_add(1, Ordering::SeqCst);
                let (shared, counter, seen) = (shared.clone(), counter.clone(), seen.clone());
                tokio::spawn(async move {
                    let logged_out = relay(client, server, shared, counter).await;
                    match logged_out {
                        Some(true) => seen.logged_out.fetch_add(1, Ordering::SeqCst),
                        Some(false) => seen.dropped.fetch_add(1, Ordering::SeqCst),
                        None => 0,
                    };
                });
            }
        });
        CutProxy {
            port,
            cut,
            appends,
            sessions,
        }
    }

    pub fn arm(&self, cut: Cut) {
        *self.cut.lock().expect("cut") = cut;
    }

    pub fn state(&self) -> Cut {
        *self.cut.lock().expect("cut")
    }
}

/// Relays until either side closes: `Some(whether the writer sent LOGOUT)`,
/// or `None` when the proxy cut the connection.
async fn relay(
    mut client: tokio::net::TcpStream,
    mut server: tokio::net::TcpStream,
    cut: Arc<std::sync::Mutex<Cut>>,
    appends: Arc<std::sync::atomic::AtomicUsize>,
) -> Option<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tail: Vec<u8> = Vec::new();
    let mut logout = Vec::new();
    let mut logged_out = false;
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            n = client.read(&mut up) => {
                let Ok(n @ 1..) = n else { return Some(logged_out) };
                count_appends(&mut tail, &up[..n], &appends);
                logged_out |= contains_across(&mut logout, &up[..n], b" LOGOUT\r\n");
                let pass = client_bytes_to_pass(&cut, n);
                if pass < n {
                    let _ = server.write_all(&up[..pass]).await;
                    return None;
                }
                if server.write_all(&up[..pass]).await.is_err() {
                    return Some(logged_out);
                }
            }
            n = server.read(&mut down) => {
                let Ok(n @ 1..) = n else { return Some(logged_out) };
                {
                    let mut state = cut.lock().expect("cut");
                    let reply = down[..n].windows(9).any(|w| w == b"APPENDUID");
                    if *state == Cut::BeforeAppendReply && reply {
                        *state = Cut::Done;
                        return None;
                    }
                }
                if client.write_all(&down[..n]).await.is_err() { return Some(logged_out); }
            }
        }
    }
}

/// Whether `needle` is in the stream so far, across chunk boundaries.
fn contains_across(tail: &mut Vec<u8>, chunk: &[u8], needle: &[u8]) -> bool {
    tail.extend_from_slice(chunk);
    let found = tail.windows(needle.len()).any(|w| w == needle);
    let keep = tail.len().min(needle.len() - 1);
    tail.drain(..tail.len() - keep);
    found
}

/// Counts ` APPEND "` in the writer's stream, across chunk boundaries.
fn count_appends(tail: &mut Vec<u8>, chunk: &[u8], appends: &std::sync::atomic::AtomicUsize) {
    const NEEDLE: &[u8] = b" APPEND \"";
    tail.extend_from_slice(chunk);
    let found = tail.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count();
    appends.fetch_add(found, std::sync::atomic::Ordering::Relaxed);
    let keep = tail.len().min(NEEDLE.len() - 1);
    tail.drain(..tail.len() - keep);
}

/// How many of `n` bytes from the writer to pass on; fewer than `n`
/// means the connection is cut after them.
fn client_bytes_to_pass(cut: &std::sync::Mutex<Cut>, n: usize) -> usize {
    let mut state = cut.lock().expect("cut");
    match *state {
        Cut::AfterClientBytes(left) if n >= left => {
            *state = Cut::Done;
            left
        }
        Cut::AfterClientBytes(left) => {
            *state = Cut::AfterClientBytes(left - n);
            n
        }
        _ => n,
    }
}
