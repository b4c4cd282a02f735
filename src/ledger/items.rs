//! Items: where each listed item stands (archived, unmapped, failed,
//! gone), with the listing an item to retry keeps.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Ledger, LedgerError, RunId, time};
use crate::telemessage::Item;
use crate::types::ItemId;

/// The state of an item in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Every copy it needs is written.
    Archived,
    /// No participant maps to a mailbox; retried while recent, when the
    /// mapping changes, and weekly (see `sync::UNMAPPED_RETRY_DAYS`).
    Unmapped,
    /// Some copy could not be written; retried by the next run.
    Failed,
    /// Permanently unavailable (purged from TeleMessage).
    Gone,
}

impl ItemState {
    /// Whether a later run may try the item again without listing it, so
    /// the item keeps its listing (see `items_to_retry`).
    pub(super) fn is_retried(self) -> bool {
        matches!(self, ItemState::Unmapped | ItemState::Failed)
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            ItemState::Archived => "archived",
            ItemState::Unmapped => "unmapped",
            ItemState::Failed => "failed",
            ItemState::Gone => "gone",
        }
    }
}

/// The row of an item, which its copies point at.
const ITEM_ROW_QUERY: &str = "SELECT id FROM items WHERE connector = ?1 AND item_id = ?2";
/// Why an item whose copies are being written is failed until its outcome
/// is recorded: it stays so if the run stops in between.
pub(super) const UNSETTLED_REASON: &str = "its copies are being written; if no sync is running, the \
     last one stopped before finishing it, and the next one retries it";
/// The state of one item, found through its index.
pub(super) const ITEM_STATE_QUERY: &str =
    "SELECT state, reason FROM items WHERE connector = ?1 AND item_id = ?2";

/// The listing metadata an item to retry keeps.
fn listing(item: &Item) -> serde_json::Result<String> {
    serde_json::to_string(item)
}

/// The row of an item about to get a copy, created if the item is new: as
/// failed with [`UNSETTLED_REASON`] and its listing, so that a run stopping
/// before the item's outcome is recorded leaves it to be retried.
pub(super) fn item_row(
    conn: &Connection,
    connector: &str,
    item: &Item,
    run: RunId,
) -> rusqlite::Result<i64> {
    let mut find = conn.prepare_cached(ITEM_ROW_QUERY)?;
    let found = find
        .query_row(params![connector, item.id.as_str()], |r| r.get(0))
        .optional()?;
    if let Some(row) = found {
        return Ok(row);
    }
    let meta = listing(item).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO items (connector, item_id, archived_at, item_type, state, reason, meta, last_run) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
    )?;
    insert.query_row(
        params![
            connector,
            item.id.as_str(),
            time(item.archived_at),
            item.kind.as_str(),
            ItemState::Failed.as_str(),
            UNSETTLED_REASON,
            meta,
            run.0
        ],
        |r| r.get(0),
    )
}

impl Ledger {
    /// Records where an item stands. An item to retry (unmapped, failed)
    /// keeps its listing metadata so a later run can retry it without
    /// listing it again; the others keep none (it would be most of the
    /// ledger's size and of the pages each record rewrites).
    pub fn record_item(
        &self,
        connector: &str,
        item: &Item,
        state: ItemState,
        reason: Option<&str>,
        run: RunId,
    ) -> Result<(), LedgerError> {
        let meta = if state.is_retried() {
            listing(item).map_err(|e| LedgerError::Corrupt {
                item: item.id.to_string(),
                message: e.to_string(),
            })?
        } else {
            String::new()
        };
        self.batched(|conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO items (connector, item_id, archived_at, item_type, state, reason, meta, last_run) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (connector, item_id) DO UPDATE SET \
                 state = excluded.state, reason = excluded.reason, meta = excluded.meta, \
                 last_run = excluded.last_run",
            )?;
            stmt.execute(params![
                connector,
                item.id.as_str(),
                time(item.archived_at),
                item.kind.as_str(),
                state.as_str(),
                reason,
                meta,
                run.0
            ])?;
            Ok(())
        })
    }

    /// The state of one item, if the ledger knows it.
    pub fn item_state(
        &self,
        connector: &str,
        item: &ItemId,
    ) -> Result<Option<(String, Option<String>)>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(ITEM_STATE_QUERY)?;
        Ok(stmt
            .query_row(params![connector, item.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{begin_day_run, item};
    use crate::mailbox::Written;
    use crate::types::Mailbox;

    /// A run that stops after writing an item's first copy, before the
    /// item's outcome, leaves the item failed with its listing: the next run
    /// retries it even if it does not list its window again.
    #[test]
    fn an_item_with_copies_but_no_outcome_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let run = begin_day_run(&ledger);
        let li = Mailbox::parse("li.wei@contoso.com").unwrap();
        let written = Written {
            location: "li/cur/1".into(),
            bytes: 10,
        };
        ledger
            .record_copy("c", &item("itm_A"), &li, &written, run)
            .unwrap();
        drop(ledger);

        let ledger = Ledger::open(&path).unwrap();
        let (state, reason) = ledger.item_state("c", &item("itm_A").id).unwrap().unwrap();
        assert_eq!(
            (state.as_str(), reason.as_deref()),
            ("failed", Some(UNSETTLED_REASON))
        );
        let retried = ledger.items_to_retry("c").unwrap();
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].sender.mobile.as_deref(), Some("+8613800138000"));
        assert!(
            ledger
                .copies_of("c", &item("itm_A").id)
                .unwrap()
                .contains("li.wei@contoso.com")
        );
    }
}
