//! What the simulator saw: enough for a test to assert that faults fired,
//! that the client resumed with `Range`, bounded its concurrency, and
//! waited out every `Retry-After`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Requests per endpoint: `token`, `account`, `users`, `list`, `content`.
    pub requests: BTreeMap<String, u64>,
    /// Firings per fault name (`429`, `503`, `drop-body`, `purge`, ...).
    pub faults_fired: BTreeMap<String, u64>,
    pub tokens_issued: u64,
    /// Content requests that carried a `Range` header.
    pub range_requests: u64,
    /// The most content bodies in flight at once.
    pub max_concurrent_downloads: u64,
    /// Requests that arrived while an announced `Retry-After` was running
    /// (after a short grace for requests already in flight).
    pub hammering_requests: u64,
    /// Content body bytes handed to the network.
    pub content_bytes_served: u64,
}

impl Stats {
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.requests.get(endpoint).copied().unwrap_or(0)
    }

    pub fn fired(&self, fault: &str) -> u64 {
        self.faults_fired.get(fault).copied().unwrap_or(0)
    }
}

/// Requests sent this soon after a `429` are taken to have been in flight.
const GRACE: Duration = Duration::from_millis(100);
/// Tolerance for a client that rounds its wait.
const SLACK: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub(crate) struct StatsInner {
    counters: Mutex<Stats>,
    in_flight: AtomicU64,
    quiet_until: Mutex<Option<(Instant, Instant)>>,
}

impl StatsInner {
    pub fn snapshot(&self) -> Stats {
        self.lock().clone()
    }

    pub fn request(&self, endpoint: &str) {
        let now = Instant::now();
        let hammering = self
            .quiet_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|(from, until)| now > from && now + SLACK < until);
        let mut c = self.lock();
        *c.requests.entry(endpoint.to_owned()).or_default() += 1;
        if hammering {
            c.hammering_requests += 1;
        }
    }

    /// Records that the client was told to keep quiet for `wait`.
    pub fn retry_after(&self, wait: Duration) {
        let now = Instant::now();
        *self.quiet_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((now + GRACE, now + wait));
    }

    pub fn fault_fired(&self, name: &str) {
        *self.lock().faults_fired.entry(name.to_owned()).or_default() += 1;
    }

    pub fn token_issued(&self) {
        self.lock().tokens_issued += 1;
    }

    pub fn range_request(&self) {
        self.lock().range_requests += 1;
    }

    pub fn bytes_served(&self, n: u64) {
        self.lock().content_bytes_served += n;
    }

    /// Counts a content body in flight until the guard is dropped.
    pub fn download(self: &std::sync::Arc<Self>) -> DownloadGuard {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mut c = self.lock();
        c.max_concurrent_downloads = c.max_concurrent_downloads.max(now);
        drop(c);
        DownloadGuard(self.clone())
    }

    pub fn reset(&self) {
        *self.lock() = Stats::default();
        *self.quiet_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct DownloadGuard(std::sync::Arc<StatsInner>);

impl Drop for DownloadGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
