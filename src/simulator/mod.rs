//! A TeleMessage archive API server (`telemessage-api.md`, section 6) that
//! serves generated, seed-determined data over real HTTP on loopback and
//! injects faults on demand. Tests, benchmarks and the demo use it.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use wechat_archiver::simulator::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { items: 500, ..SimConfig::default() })?;
//! sim.faults().arm_spec("429x2,drop-body:1@4096").unwrap();
//! let url = sim.url();
//! # let _ = url;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Besides the contract's endpoints the server offers `POST /_sim/faults`
//! (body: a fault spec, see [`faults`]) and `GET /_sim/stats` (JSON
//! [`Stats`]) so a simulator in another process can be steered.

pub mod config;
mod content;
pub mod dataset;
pub mod faults;
mod names;
mod server;
pub mod stats;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

pub use config::{AuthRefusal, ConfigError, HandMade, SimConfig};
pub use dataset::Dataset;
pub use faults::{Endpoint, Fault, FaultControl, FaultSpecError, Scope};
pub use stats::Stats;

use server::Shared;

/// A running simulator. It has its own runtime thread, so it works from
/// plain `#[test]`s as well as from any async runtime; dropping the handle
/// stops it.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl Simulator {
    /// Generates the data and serves it on `127.0.0.1` on a free port.
    pub fn start(config: SimConfig) -> std::io::Result<Simulator> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<Simulator> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("simulator")
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        std::thread::Builder::new()
            .name("simulator".into())
            .spawn(move || {
                runtime.block_on(run(listener, app, stop_rx));
                runtime.shutdown_timeout(Duration::from_millis(500));
                let _ = done_tx.send(());
            })?;
        Ok(Simulator {
            addr,
            shared,
            stop: Some(stop_tx),
            done: Some(done_rx),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    pub fn dataset(&self) -> Arc<Dataset> {
        self.shared.dataset.clone()
    }

    pub fn faults(&self) -> &FaultControl {
        &self.shared.faults
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Zeroes the counters (and forgets any running `Retry-After`).
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// Stops serving; open connections get two seconds to finish.
    pub async fn shutdown(mut self) {
        self.stop.take();
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.take();
    }
}

async fn run(listener: std::net::TcpListener, app: axum::Router, stop: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let stopping = Arc::new(Notify::new());
    let signal = {
        let stopping = stopping.clone();
        async move {
            let _ = stop.await;
            stopping.notify_one();
        }
    };
    let serve = axum::serve(listener, app).with_graceful_shutdown(signal);
    tokio::select! {
        _ = serve => {}
        _ = async { stopping.notified().await; tokio::time::sleep(Duration::from_secs(2)).await } => {}
    }
}

/// Serves until the process ends, on the caller's runtime: the hidden
/// `simulate` command. Prints `simulator listening on http://ADDR` on
/// standard output once bound, so a script can use port 0 and read it.
pub async fn serve_forever(config: SimConfig, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let shared = Arc::new(Shared::new(config));
    let mut out = std::io::stdout();
    writeln!(
        out,
        "simulator listening on http://{}",
        listener.local_addr()?
    )?;
    out.flush()?;
    axum::serve(listener, server::router(shared)).await
}
