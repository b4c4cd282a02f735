//! Microsoft's Outlook limits, per application and mailbox: 4 requests at
//! once, 10,000 requests per 10 minutes, 150 MB uploaded per 5 minutes,
//! and a pause whenever Graph answers with `Retry-After`. The writer keeps
//! to them itself instead of learning them from 429s.

use std::time::Duration;

use crate::mailbox::oauth::Retry;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The budgets and retry policy the writer keeps to. The defaults are
/// Microsoft's documented Outlook limits; tests shrink them.
#[derive(Debug, Clone)]
pub struct GraphLimits {
    /// Requests in flight to one mailbox at a time.
    pub concurrent_per_mailbox: usize,
    /// Requests to one mailbox per `request_window`.
    pub requests_per_window: usize,
    pub request_window: Duration,
    /// Request-body bytes (POST, PUT, PATCH) to one mailbox per `upload_window`.
    pub upload_bytes_per_window: u64,
    pub upload_window: Duration,
    /// Attempts per request before giving up (throttling and server errors).
    pub max_attempts: u32,
    /// First backoff when Graph gives no `Retry-After`; doubles per attempt.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one fails the copy so
    /// the next run retries it instead of stalling this one.
    pub max_retry_after: Duration,
    /// Whole-request timeout (a 4 MB chunk on a slow link included).
    pub request_timeout: Duration,
    /// Bytes the writer may hold for copies being composed at once.
    pub memory_budget: u64,
}

impl Default for GraphLimits {
    fn default() -> Self {
        GraphLimits {
            concurrent_per_mailbox: 4,
            requests_per_window: 10_000,
            request_window: Duration::from_secs(600),
            upload_bytes_per_window: 150 * 1024 * 1024,
            upload_window: Duration::from_secs(300),
            max_attempts: 8,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            request_timeout: Duration::from_secs(300),
            memory_budget: 8 * 1024 * 1024,
        }
    }
}

impl GraphLimits {
    /// Exponential backoff with jitter (between half and all of the step).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.retry().backoff(attempt)
    }

    /// The retry policy for token requests, the same as for Graph's own.
    pub(crate) fn retry(&self) -> Retry {
        Retry {
            max_attempts: self.max_attempts,
            base_backoff: self.base_backoff,
            max_backoff: self.max_backoff,
            max_retry_after: self.max_retry_after,
        }
    }
}

/// Copies in progress per request slot of a mailbox.
const COPIES_PER_SLOT: usize = 2;

/// One mailbox's share of the limits.
pub(crate) struct Gate {
    permits: std::sync::Arc<Semaphore>,
    /// Copies in progress: one request at a time each, so twice as many
    /// as there are request slots keep the mailbox busy while some are
    /// being composed; more would only hold memory while they wait.
    copies: std::sync::Arc<Semaphore>,
    /// A large copy in progress: beside the others, so it does not wait
    /// behind every small copy queued for the mailbox and then hold up the
    /// end of the run with its upload session's requests in a row.
    large_copy: std::sync::Arc<Semaphore>,
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    paused_until: Option<Instant>,
    next_ticket: u64,
    /// Requests sent or in flight; `at` is set when the answer is in, so
    /// an entry never expires before Graph's own count of it does.
    entries: Vec<Entry>,
}

struct Entry {
    ticket: u64,
    at: Option<Instant>,
    bytes: u64,
}

/// Admission to send one request; hand it back with [`Gate::done`].
pub(crate) struct Ticket {
    id: u64,
    _permit: OwnedSemaphorePermit,
}

impl Gate {
    pub fn new(limits: &GraphLimits) -> Gate {
        Gate {
            permits: std::sync::Arc::new(Semaphore::new(limits.concurrent_per_mailbox.max(1))),
            copies: std::sync::Arc::new(Semaphore::new(
                limits.concurrent_per_mailbox.max(1) * COPIES_PER_SLOT,
            )),
            large_copy: std::sync::Arc::new(Semaphore::new(1)),
            state: Mutex::new(GateState::default()),
        }
    }

    /// Waits until this mailbox has room for one more large copy.
    pub async fn large_copy_slot(&self) -> OwnedSemaphorePermit {
        self.large_copy
            .clone()
            .acquire_owned()
            .await
            .expect("the gate's semaphore is never closed")
    }

    /// Waits until this mailbox has room for one more copy in progress.
    pub async fn copy_slot(&self) -> OwnedSemaphorePermit {
        self.copies
            .clone()
            .acquire_owned()
            .await
            .expect("the gate's semaphore is never closed")
    }

    /// Waits for a free slot, the end of any pause, and room in both
    /// budgets; then counts the request.
    pub async fn admit(&self, limits: &GraphLimits, upload_bytes: u64) -> Ticket {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the gate's semaphore is never closed");
        loop {
            let wait = {
                let mut st = self.state.lock().await;
                match st.wait_needed(limits, upload_bytes, Instant::now()) {
                    None => {
                        let id = st.next_ticket;
                        st.next_ticket += 1;
                        st.entries.push(Entry {
                            ticket: id,
                            at: None,
                            bytes: upload_bytes,
                        });
                        return Ticket {
                            id,
                            _permit: permit,
                        };
                    }
                    Some(wait) => wait,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The request's answer is in (or it failed): its budget entry starts
    /// ageing now, and the slot is freed.
    pub async fn done(&self, ticket: Ticket) {
        let mut st = self.state.lock().await;
        let now = Instant::now();
        if let Some(e) = st.entries.iter_mut().find(|e| e.ticket == ticket.id) {
            e.at = Some(now);
        }
    }

    /// Graph asked for a pause: nobody sends to this mailbox until it ends.
    pub async fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut st = self.state.lock().await;
        st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
    }
}

impl GateState {
    fn wait_needed(&mut self, limits: &GraphLimits, bytes: u64, now: Instant) -> Option<Duration> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Some(until - now);
            }
            self.paused_until = None;
        }
        let horizon = limits.request_window.max(limits.upload_window);
        self.entries
            .retain(|e| e.at.is_none_or(|at| at + horizon > now));
        let live = |window: Duration| {
            self.entries
                .iter()
                .filter(move |e| e.at.is_none_or(|at| at + window > now))
        };
        let requests = live(limits.request_window).count();
        let uploaded: u64 = live(limits.upload_window).map(|e| e.bytes).sum();
        let over_requests = requests >= limits.requests_per_window;
        // A single request larger than the whole budget still goes, alone.
        let over_bytes =
            bytes > 0 && uploaded > 0 && uploaded + bytes > limits.upload_bytes_per_window;
        if !over_requests && !over_bytes {
            return None;
        }
        let window = if over_requests {
            limits.request_window
        } else {
            limits.upload_window
        };
        let first_expiry = live(window)
            .filter_map(|e| e.at)
            .map(|at| at + window)
            .min();
        const POLL: Duration = Duration::from_millis(50);
        Some(first_expiry.map_or(POLL, |t| {
            t.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        }))
    }
}

/// Parses `Retry-After`: seconds (fractions allowed, as Graph sends them)
/// or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    crate::http::parse_retry_after(value, std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_fractions_and_dates() {
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let past = httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH);
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let limits = GraphLimits::default();
        assert!(limits.backoff(1) <= Duration::from_millis(500));
        assert!(limits.backoff(1) >= Duration::from_millis(250));
        assert!(limits.backoff(40) <= limits.max_backoff);
    }

    #[tokio::test]
    async fn request_budget_makes_the_next_request_wait() {
        let limits = GraphLimits {
            requests_per_window: 2,
            request_window: Duration::from_millis(300),
            ..GraphLimits::default()
        };
        let gate = Gate::new(&limits);
        let start = Instant::now();
        for _ in 0..2 {
            let t = gate.admit(&limits, 0).await;
            gate.done(t).await;
        }
        let t = gate.admit(&limits, 0).await;
        gate.done(t).await;
        assert!(Instant::now() - start >= Duration::from_millis(300));
    }
}
