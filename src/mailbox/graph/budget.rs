//! How much the writer holds in memory at once. With thousands of items in
//! flight, each copy being composed holds its item whole (the parsed MIME,
//! the decoded attachments, the JSON of the create request); this budget
//! bounds their sum, and a mailbox's copy slots (twice its request slots)
//! keep copies that could not send anyway from taking it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Composing a copy holds about this many times its content's size: the
/// raw bytes and the decoded attachments (the raw bytes go once the
/// request is composed).
const WORKING_SET_FACTOR: u64 = 2;

/// A writer-wide budget of bytes, counted in KiB.
pub(crate) struct MemoryBudget {
    kib: u32,
    permits: Arc<Semaphore>,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> MemoryBudget {
        let kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        MemoryBudget {
            kib,
            permits: Arc::new(Semaphore::new(kib as usize)),
        }
    }

    /// Waits until composing a copy of `content_len` bytes fits; a copy
    /// larger than the whole budget waits for all of it and goes alone.
    pub async fn reserve(&self, content_len: u64) -> OwnedSemaphorePermit {
        let want = content_len
            .saturating_mul(WORKING_SET_FACTOR)
            .div_ceil(1024)
            .clamp(1, u64::from(self.kib));
        self.permits
            .clone()
            .acquire_many_owned(want as u32)
            .await
            .expect("the budget's semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_copy_waits_until_its_share_is_free_and_a_huge_one_goes_alone() {
        let budget = MemoryBudget::new(2 * 1024 * 1024);
        let small = budget.reserve(512 * 1024).await;
        assert_eq!(small.num_permits(), 2 * 512, "twice the content");
        assert!(
            budget.reserve(100 * 1024 * 1024).now_or_never().is_none(),
            "a huge copy waits while anything else holds memory"
        );
        drop(small);
        let whole = budget.reserve(100 * 1024 * 1024).await;
        assert_eq!(whole.num_permits(), 2 * 1024, "and then takes it all");
        assert!(budget.reserve(1).now_or_never().is_none());
    }
}
