//! A relay between the writer and the server that cuts connections and
//! counts APPEND commands.

use std::sync::Arc;

/// A TCP relay between the writer and Dovecot that can cut a connection
/// at a chosen moment, as a network fault would.
pub struct CutProxy {
    pub port: u16,
    pub cut: Arc<std::sync::Mutex<Cut>>,
    /// APPEND commands seen from the writer (a MULTIAPPEND counts once).
    pub appends: Arc<std::sync::atomic::AtomicUsize>,
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
        let (shared, counter) = (cut.clone(), appends.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                    .await
                    .expect("upstream");
                tokio::spawn(relay(client, server, shared.clone(), counter.clone()));
            }
        });
        CutProxy { port, cut, appends }
    }

    pub fn arm(&self, cut: Cut) {
        *self.cut.lock().expect("cut") = cut;
    }

    pub fn state(&self) -> Cut {
        *self.cut.lock().expect("cut")
    }
}

async fn relay(
    mut client: tokio::net::TcpStream,
    mut server: tokio::net::TcpStream,
    cut: Arc<std::sync::Mutex<Cut>>,
    appends: Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tail: Vec<u8> = Vec::new();
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            n = client.read(&mut up) => {
                let Ok(n @ 1..) = n else { return };
                count_appends(&mut tail, &up[..n], &appends);
                let pass = client_bytes_to_pass(&cut, n);
                if server.write_all(&up[..pass]).await.is_err() || pass < n {
                    return;
                }
            }
            n = server.read(&mut down) => {
                let Ok(n @ 1..) = n else { return };
                {
                    let mut state = cut.lock().expect("cut");
                    let reply = down[..n].windows(9).any(|w| w == b"APPENDUID");
                    if *state == Cut::BeforeAppendReply && reply {
                        *state = Cut::Done;
                        return;
                    }
                }
                if client.write_all(&down[..n]).await.is_err() { return; }
            }
        }
    }
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
