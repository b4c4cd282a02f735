//! How much the writer holds in memory at once. With thousands of items in
//! flight, each copy being composed holds its item whole (the parsed MIME,
//! the decoded attachments, the JSON of the create request); this budget
//! bounds their sum, and a mailbox's copy slots (twice its request slots)
//! keep copies that could not send anyway from taking it.
//!
//! A large copy (more than half the budget) does not take from the
//! budget: it waits for one of [`LARGE_LANES`] lanes, and an item's large
//! copies share one composition (`ready.rs`) that leaves long attachments
//! in the spool file (`elided.rs`). When it waited for the
//! whole budget instead, every copy queued behind it (the budget is first
//! come, first served) and it then held the budget for its whole upload:
//! every mailbox idled for seconds per large copy (`bench/graph`, ratio
//! 0.46 with two 11 MB items among 1,500). Memory stays bounded: the
//! budget plus the large copies' lanes.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Composing a copy holds about this many times its content's size: the
/// raw bytes and the decoded attachments (the raw bytes go once the
/// request is composed).
const WORKING_SET_FACTOR: u64 = 2;
/// Large copies written at once: each holds an upload chunk (3.2 MB) and
/// its item's composition (small when its attachments stay in the spool).
const LARGE_LANES: usize = 2;
/// A copy needing more than this share of the budget is a large copy.
const LARGE_SHARE: u64 = 2;

/// The budget grows by this much per mailbox written to, once that is
/// more than the configured budget: a copy holds its share from composing
/// to its last request's answer, so a fixed budget capped the copies in
/// flight across all mailboxes (8 MiB: about 150, 600 requests/s at
/// 250 ms, whatever the number of mailboxes; `bench/graph` at 200
/// mailboxes, 0.23 of what the limits allow; 0.50 with this).
const KIB_PER_MAILBOX: u64 = 192;

/// A writer-wide budget of bytes, counted in KiB.
pub(crate) struct MemoryBudget {
    /// The configured budget; large copies are measured against it.
    kib: u32,
    permits: Arc<Semaphore>,
    /// Mailboxes written to, and the budget now in KiB (the configured
    /// one, or more with many mailboxes).
    growth: std::sync::Mutex<(u64, u64)>,
    /// The large-copy lanes.
    large: Arc<Semaphore>,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> MemoryBudget {
        let kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        MemoryBudget {
            kib,
            permits: Arc::new(Semaphore::new(kib as usize)),
            growth: std::sync::Mutex::new((0, u64::from(kib))),
            large: Arc::new(Semaphore::new(LARGE_LANES)),
        }
    }

    /// One more mailbox is written to: the budget becomes the larger of
    /// the configured one and [`KIB_PER_MAILBOX`] per mailbox.
    pub fn add_mailbox(&self) {
        let mut guard = self.growth.lock().unwrap_or_else(|p| p.into_inner());
        let (mailboxes, total) = &mut *guard;
        *mailboxes += 1;
        let wanted = mailboxes.saturating_mul(KIB_PER_MAILBOX);
        if wanted > *total {
            let more = usize::try_from(wanted - *total).unwrap_or(0);
            if more > 0 && self.permits.available_permits() <= Semaphore::MAX_PERMITS - more {
                self.permits.add_permits(more);
                *total = wanted;
            }
        }
    }

    fn kib_of(content_len: u64) -> u64 {
        content_len
            .saturating_mul(WORKING_SET_FACTOR)
            .div_ceil(1024)
            .max(1)
    }

    /// Whether a copy of `content_len` bytes goes through the large-item
    /// lane instead of the budget.
    pub fn is_large(&self, content_len: u64) -> bool {
        Self::kib_of(content_len) > u64::from(self.kib) / LARGE_SHARE
    }

    /// Waits until composing a copy of `content_len` bytes (not a large
    /// one) fits in the budget.
    pub async fn reserve(&self, content_len: u64) -> OwnedSemaphorePermit {
        let permits = Self::kib_of(content_len).min(u64::from(self.kib)) as u32;
        self.permits
            .clone()
            .acquire_many_owned(permits)
            .await
            .expect("the budget's semaphores are never closed")
    }

    /// Waits for a large-copy lane.
    pub async fn large_lane(&self) -> OwnedSemaphorePermit {
        self.large
            .clone()
            .acquire_owned()
            .await
            .expect("the budget's semaphores are never closed")
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn small_copies_share_the_budget_and_large_ones_take_lanes_beside_it() {
        let budget = MemoryBudget::new(2 * 1024 * 1024);
        let small = budget.reserve(128 * 1024).await;
        assert_eq!(small.num_permits(), 2 * 128, "twice the content");
        assert!(budget.is_large(100 * 1024 * 1024) && !budget.is_large(128 * 1024));
        let lanes: Vec<_> = (0..LARGE_LANES)
            .map(|_| budget.large_lane().now_or_never().expect("a free lane"))
            .collect();
        assert!(
            budget.large_lane().now_or_never().is_none(),
            "a further large copy waits for a lane"
        );
        let others: Vec<_> = (0..7)
            .map(|_| budget.reserve(128 * 1024).now_or_never())
            .collect();
        assert!(
            others.iter().all(Option::is_some),
            "small copies never queue behind a large one"
        );
        assert!(
            budget.reserve(128 * 1024).now_or_never().is_none(),
            "and the budget still bounds them"
        );
        drop((small, lanes));
        assert!(budget.large_lane().now_or_never().is_some());
    }

    #[tokio::test]
    async fn the_budget_grows_with_the_mailboxes_beyond_the_configured_one() {
        let budget = MemoryBudget::new(KIB_PER_MAILBOX * 1024 * 4);
        let fill = |n| {
            (0..n)
                .map(|_| budget.reserve(KIB_PER_MAILBOX * 1024 / 2).now_or_never())
                .collect::<Vec<_>>()
        };
        for _ in 0..4 {
            budget.add_mailbox();
        }
        let held = fill(4);
        assert!(held.iter().all(Option::is_some));
        assert!(
            fill(1)[0].is_none(),
            "four mailboxes: the configured budget"
        );
        budget.add_mailbox();
        assert!(fill(1)[0].is_some(), "a fifth mailbox adds its share");
    }
}
