//! Retries: the items a later run tries again (failed ones always,
//! unmapped ones while recent, on a mapping change, and weekly).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError, time};
use crate::telemessage::Item;

/// The last time a run retried every unmapped item, and the mapping it
/// used (a fingerprint: see `sync::setup::mapping_fingerprint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmappedRetry {
    pub mapping: String,
    pub at: DateTime<Utc>,
}

/// The items to retry. Without `INDEXED BY` SQLite prefers the primary
/// key's `connector` prefix and reads every item of the connector: seconds
/// at millions of items, on every run. Items without a listing (see the
/// upgrade to version 4) wait to be listed again.
const RETRY_QUERY: &str = "SELECT item_id, meta FROM items INDEXED BY items_to_retry \
     WHERE connector = ?1 AND state IN ('unmapped', 'failed') AND meta <> '' \
     ORDER BY archived_at, item_id";
/// Unmapped items archived since ?2, through the problems' partial index.
const RECENT_UNMAPPED_QUERY: &str = "SELECT item_id, meta FROM items \
     INDEXED BY items_with_problems WHERE connector = ?1 \
     AND state IN ('unmapped', 'failed', 'gone') AND state = 'unmapped' \
     AND archived_at >= ?2 AND meta <> '' ORDER BY archived_at, item_id";
/// The failed items alone. The index's own condition is repeated: SQLite
/// uses a partial index only when the query's conditions imply its own.
const FAILED_RETRY_QUERY: &str = "SELECT item_id, meta FROM items INDEXED BY items_to_retry \
     WHERE connector = ?1 AND state IN ('unmapped', 'failed') AND state = 'failed' \
     AND meta <> '' ORDER BY archived_at, item_id";

impl Ledger {
    /// Items an earlier run left unmapped or failed, to try again.
    pub fn items_to_retry(&self, connector: &str) -> Result<Vec<Item>, LedgerError> {
        self.retries(RETRY_QUERY, params![connector])
    }

    /// Items an earlier run left failed, to try again; the unmapped ones
    /// wait for a change of mapping (see [`Ledger::unmapped_retry`]).
    pub fn failed_items_to_retry(&self, connector: &str) -> Result<Vec<Item>, LedgerError> {
        self.retries(FAILED_RETRY_QUERY, params![connector])
    }

    /// Unmapped items archived since `since`, which every run retries.
    pub fn unmapped_items_since(
        &self,
        connector: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Item>, LedgerError> {
        self.retries(RECENT_UNMAPPED_QUERY, params![connector, time(since)])
    }

    /// The items of a retry query's rows (item id, listing).
    fn retries(&self, query: &str, args: impl rusqlite::Params) -> Result<Vec<Item>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(query)?;
        let mut rows = stmt.query(args)?;
        let mut items = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let meta: String = row.get(1)?;
            let item = serde_json::from_str(&meta).map_err(|e| LedgerError::Corrupt {
                item: id,
                message: e.to_string(),
            })?;
            items.push(item);
        }
        Ok(items)
    }

    /// When a run last retried every unmapped item of the connector, and
    /// under which mapping.
    pub fn unmapped_retry(&self, connector: &str) -> Result<Option<UnmappedRetry>, LedgerError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT mapping, retried_at FROM unmapped_retries WHERE connector = ?1",
                params![connector],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(mapping, at)| {
            let at = DateTime::parse_from_rfc3339(&at).ok()?.with_timezone(&Utc);
            Some(UnmappedRetry { mapping, at })
        }))
    }

    /// Records that a run retried every unmapped item under `mapping`;
    /// nothing if some of the run's records were lost (the next run must
    /// retry them all again, looking for copies written but not recorded).
    pub fn record_unmapped_retry(
        &self,
        connector: &str,
        mapping: &str,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let conn = self.write_conn()?;
        if conn.lost_records() {
            return Ok(());
        }
        conn.execute(
            "INSERT INTO unmapped_retries (connector, mapping, retried_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (connector) DO UPDATE SET \
             mapping = excluded.mapping, retried_at = excluded.retried_at",
            params![connector, mapping, time(at)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::ItemState;
    use crate::ledger::testing::{assert_plan_step, begin_day_run, item};
    use chrono::TimeZone;

    #[test]
    fn failed_and_unmapped_items_come_back_for_retry_until_archived() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = begin_day_run(&ledger);
        ledger
            .record_item("c", &item("a"), ItemState::Failed, Some("disk full"), run)
            .unwrap();
        ledger
            .record_item("c", &item("b"), ItemState::Unmapped, None, run)
            .unwrap();
        ledger
            .record_item("c", &item("g"), ItemState::Gone, Some("404"), run)
            .unwrap();
        let ids: Vec<String> = ledger
            .items_to_retry("c")
            .unwrap()
            .into_iter()
            .map(|i| i.id.to_string())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        ledger
            .record_item("c", &item("a"), ItemState::Archived, None, run)
            .unwrap();
        assert_eq!(ledger.items_to_retry("c").unwrap().len(), 1);
        ledger
            .record_item("c", &item("a"), ItemState::Failed, Some("again"), run)
            .unwrap();
        let retried = ledger.items_to_retry("c").unwrap();
        assert_eq!(retried.len(), 2);
        assert_eq!(retried[0].sender.mobile.as_deref(), Some("+8613800138000"));
    }
    #[test]
    fn finding_items_to_retry_reads_the_partial_index_not_every_item() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let conn = ledger.conn();
        for query in [RETRY_QUERY, FAILED_RETRY_QUERY] {
            let seek = "USING INDEX items_to_retry (connector=? AND state=?)";
            assert_plan_step(&conn, query, &[&"c"], seek);
        }
    }

    /// Failed items are retried by every run; unmapped ones only when the
    /// run retries them (see `sync::UNMAPPED_RETRY_DAYS`), which it records.
    #[test]
    fn failed_items_can_be_retried_without_the_unmapped_ones() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = begin_day_run(&ledger);
        ledger
            .record_item("c", &item("a"), ItemState::Unmapped, None, run)
            .unwrap();
        ledger
            .record_item("c", &item("b"), ItemState::Failed, Some("disk full"), run)
            .unwrap();
        let failed = ledger.failed_items_to_retry("c").unwrap();
        let failed: Vec<_> = failed.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(failed, ["b"]);
        assert_eq!(ledger.items_to_retry("c").unwrap().len(), 2);

        assert_eq!(ledger.unmapped_retry("c").unwrap(), None);
        let at = item("x").archived_at;
        ledger.record_unmapped_retry("c", "f1", at).unwrap();
        ledger.record_unmapped_retry("c", "f2", at).unwrap();
        let last = ledger.unmapped_retry("c").unwrap().unwrap();
        assert_eq!((last.mapping.as_str(), last.at), ("f2", at));
        assert_eq!(ledger.unmapped_retry("other").unwrap(), None);
    }

    /// Recent unmapped items are found by archive time through the
    /// problems' partial index, whatever the older ones number.
    #[test]
    fn recent_unmapped_items_are_found_by_archive_time() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = begin_day_run(&ledger);
        let day = |id: &str, d: u32| {
            let mut it = item(id);
            it.archived_at = Utc.with_ymd_and_hms(2026, 11, d, 8, 0, 0).unwrap();
            it
        };
        for (it, state) in [
            (day("old", 1), ItemState::Unmapped),
            (day("new", 20), ItemState::Unmapped),
            (day("failed", 20), ItemState::Failed),
            (day("done", 20), ItemState::Archived),
        ] {
            ledger.record_item("c", &it, state, None, run).unwrap();
        }
        let since = Utc.with_ymd_and_hms(2026, 11, 15, 0, 0, 0).unwrap();
        let recent = ledger.unmapped_items_since("c", since).unwrap();
        let recent: Vec<_> = recent.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(recent, ["new"]);
        let since = time(since);
        let seek = "USING INDEX items_with_problems (connector=? AND archived_at>?)";
        assert_plan_step(&ledger.conn(), RECENT_UNMAPPED_QUERY, &[&"c", &since], seek);
    }
}
