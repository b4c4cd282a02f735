//! A copy ready to send: the create request serialized once, the
//! attachments that follow it, and the digest the manifest keeps. A large
//! item is made ready once for all its mailboxes (its copies are the same
//! in each): composing one reads all of it, and one composition per copy
//! held the large-copy lanes while their mailboxes idled (`bench/graph`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::OnceCell;

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
    ready: OnceCell<Arc<Ready>>,
}

/// One copy's share of a large item; its composition goes when the last
/// of its copies drops its share.
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
    async fn copies_of_a_large_item_share_one_composition_while_any_needs_it() {
        let items = LargeItems::default();
        let id = ItemId::parse("itm_1").unwrap();
        let composed = AtomicU32::new(0);
        let compose = || async {
            composed.fetch_add(1, Ordering::SeqCst);
            Ok(ready())
        };
        let first = items.join(&id);
        let second = items.join(&id);
        let other = items.join(&ItemId::parse("itm_2").unwrap());
        first.ready(compose).await.unwrap();
        second.ready(compose).await.unwrap();
        assert_eq!(composed.load(Ordering::SeqCst), 1, "composed once");
        other.ready(compose).await.unwrap();
        assert_eq!(
            composed.load(Ordering::SeqCst),
            2,
            "another item has its own"
        );
        drop(first);
        assert_eq!(items.len(), 2, "kept while a copy still needs it");
        drop(second);
        assert_eq!(items.len(), 1, "dropped with the item's last copy");
        drop(other);
        assert_eq!(items.len(), 0);
    }
}
