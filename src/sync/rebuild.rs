//! `ledger rebuild`: the ledger's copies rebuilt from what the target
//! holds, for an admin who lost the home or restored an older one. It is
//! a sync of the window that writes nothing: every archive folder it meets
//! is looked in (its stored mark is forgotten first), each copy found is
//! recorded as a sync would adopt it, and a copy the target lacks is only
//! reported, its item recorded as failed so the next sync writes it
//! whatever that sync's window.

use super::{Engine, Run, Settled, SyncError, SyncPlan, SyncReport};
use crate::ledger::ItemState;
use crate::telemessage::Item;
use crate::types::Mailbox;

/// Why an item is left for the next sync after a rebuild.
pub const MISSING_REASON: &str =
    "ledger rebuild: a copy is not on the target yet; the next sync writes it";

impl Engine {
    /// Rebuilds the ledger's copies of the plan's window from the target.
    /// The plan's `dry_run` and `advance_checkpoint` are ignored: a rebuild
    /// records what it finds and leaves the checkpoint alone.
    pub async fn rebuild(&self, plan: &SyncPlan) -> Result<SyncReport, SyncError> {
        self.ledger.clear_folder_marks(&plan.connector)?;
        let plan = SyncPlan {
            connector: plan.connector.clone(),
            dry_run: false,
            advance_checkpoint: false,
            spool_dir: plan.spool_dir.clone(),
            mapping_fingerprint: plan.mapping_fingerprint.clone(),
            manifest_dir: plan.manifest_dir.clone(),
            fallback_mailbox: plan.fallback_mailbox.clone(),
            ..*plan
        };
        self.run_as(&plan, true).await
    }
}

impl Run<'_> {
    /// Reports the copies of an item the target lacks and records the
    /// item as failed, so the next sync writes them.
    pub(super) fn missing_on_target(
        &self,
        item: &Item,
        pending: &[Mailbox],
    ) -> Result<Settled, SyncError> {
        self.report().plan(item, pending);
        self.note_item(item, ItemState::Failed)?;
        self.engine.ledger.record_item(
            &self.plan.connector,
            item,
            ItemState::Failed,
            Some(MISSING_REASON),
            self.id,
        )?;
        Ok(Settled::Planned)
    }
}
