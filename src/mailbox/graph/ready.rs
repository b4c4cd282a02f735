//! A copy ready to send: the create request serialized once, the
//! attachments that follow it, and the digest the manifest keeps. A large
//! item is made ready once for all its mailboxes (its copies are the same
//! in each): composing one holds its attachments decoded, and with one
//! composition per copy its copies went one after another through the
//! large-item lane while their mailboxes idled (`bench/graph`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{OnceCell, OwnedSemaphorePermit};

use super::budget::MemoryBudget;
use super::compose::{Attachment, Plan};
use super::read::Canonical;
use crate::mailbox::WriteError;
use crate::types::ItemId;

/// What one copy sends.
pub(crate) struct Ready {
    /// The create request's JSON, with the attachments that fit in it.
    pub create: Bytes,
    /// Attachments small enough for one `POST .../attachments` each.
    pub separate: Vec<Attachment>,
    /// Attachments that need an upload session.
    pub sessions: Vec<Attachment>,
    /// What a read-back of the finished copy digests to.
    pub digest: String,
}

impl Ready {
    pub fn of(plan: Plan, item: &ItemId) -> Ready {
        let digest = Canonical::of_plan(&plan, item).digest();
        Ready {
            create: Bytes::from(plan.create.to_string()),
            separate: plan.separate,
            sessions: plan.sessions,
            digest,
        }
    }

    pub fn needs_attachments_after_create(&self) -> bool {
        !self.separate.is_empty() || !self.sessions.is_empty()
    }
}

/// The large items whose copies are being written, by id.
#[derive(Default)]
pub(crate) struct LargeItems {
    entries: Mutex<HashMap<ItemId, Arc<Shared>>>,
}

#[derive(Default)]
struct Shared {
    lane: OnceCell<OwnedSemaphorePermit>,
    ready: OnceCell<Arc<Ready>>,
}

/// One copy's share of a large item; the item's place in the lane and its
/// composition go when the last of its copies drops its share.
pub(crate) struct LargeItem<'a> {
    items: &'a LargeItems,
    id: ItemId,
    shared: Arc<Shared>,
}

impl LargeItems {
    pub fn join(&self, id: &ItemId) -> LargeItem<'_> {
        let shared = self.lock().entry(id.clone()).or_default().clone();
        LargeItem {
            items: self,
            id: id.clone(),
            shared,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ItemId, Arc<Shared>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl LargeItem<'_> {
    /// Waits for the item's place in the large-item lane. Taken before a
    /// mailbox's copy slot, so a copy waiting for the lane never holds a
    /// slot that a copy of the item in the lane waits for.
    pub async fn enter_lane(&self, budget: &MemoryBudget) {
        self.shared.lane.get_or_init(|| budget.large_lane()).await;
    }

    /// The item made ready by the first of its copies to get here.
    pub async fn ready<F, Fut>(&self, compose: F) -> Result<Arc<Ready>, WriteError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Ready, WriteError>>,
    {
        self.shared
            .ready
            .get_or_try_init(|| async { compose().await.map(Arc::new) })
            .await
            .cloned()
    }
}

impl Drop for LargeItem<'_> {
    fn drop(&mut self) {
        let mut entries = self.items.lock();
        let last = entries
            .get(&self.id)
            .is_some_and(|e| Arc::ptr_eq(e, &self.shared) && Arc::strong_count(e) == 2);
        if last {
            entries.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures_util::FutureExt;

    use super::*;

    fn ready() -> Ready {
        Ready {
            create: Bytes::from_static(b"{}"),
            separate: Vec::new(),
            sessions: Vec::new(),
            digest: "d".into(),
        }
    }

    #[tokio::test]
    async fn copies_of_a_large_item_share_one_composition_and_one_place_in_the_lane() {
        let budget = MemoryBudget::new(1024 * 1024);
        let items = LargeItems::default();
        let id = ItemId::parse("itm_1").unwrap();
        let composed = AtomicU32::new(0);
        let compose = || async {
            composed.fetch_add(1, Ordering::SeqCst);
            Ok(ready())
        };
        let first = items.join(&id);
        let second = items.join(&id);
        first.enter_lane(&budget).await;
        assert!(
            second.enter_lane(&budget).now_or_never().is_some(),
            "the item's second copy is already in the lane"
        );
        let other = items.join(&ItemId::parse("itm_2").unwrap());
        assert!(
            other.enter_lane(&budget).now_or_never().is_none(),
            "another large item waits for the lane"
        );
        first.ready(compose).await.unwrap();
        second.ready(compose).await.unwrap();
        assert_eq!(composed.load(Ordering::SeqCst), 1, "composed once");
        drop(first);
        assert_eq!(items.len(), 2, "kept while a copy still needs it");
        drop(second);
        assert_eq!(items.len(), 1, "dropped with the item's last copy");
        assert!(
            other.enter_lane(&budget).now_or_never().is_some(),
            "and the lane is free"
        );
    }
}
