//! What `status` shows: copies and bytes per mailbox and item type, items
//! per state, and the problem items, read from running totals.

use rusqlite::params;
use serde::Serialize;

use super::{Ledger, LedgerError};

/// Copies and bytes per mailbox or per item type.
#[derive(Debug, Clone, Serialize)]
pub struct Total {
    pub key: String,
    pub copies: u64,
    pub bytes: u64,
}

/// `status`'s queries: running totals and a partial index, so they answer
/// at once however many copies the ledger holds.
pub(super) const MAILBOX_TOTALS_QUERY: &str = "SELECT mailbox, sum(copies), sum(bytes) FROM copy_totals \
     WHERE connector = ?1 GROUP BY mailbox HAVING sum(copies) > 0 ORDER BY mailbox";
pub(super) const TYPE_TOTALS_QUERY: &str = "SELECT item_type, sum(copies), sum(bytes) FROM copy_totals \
     WHERE connector = ?1 GROUP BY item_type HAVING sum(copies) > 0 ORDER BY item_type";
pub(super) const ITEM_COUNTS_QUERY: &str =
    "SELECT state, items FROM item_counts WHERE connector = ?1 AND items > 0 ORDER BY state";
pub(super) const PROBLEM_ITEMS_QUERY: &str = "SELECT item_id, state, reason FROM items \
     WHERE connector = ?1 AND state IN ('unmapped', 'failed', 'gone') \
     ORDER BY archived_at DESC LIMIT ?2";

impl Ledger {
    /// Counts of items per state.
    pub fn item_counts(&self, connector: &str) -> Result<Vec<(String, u64)>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(ITEM_COUNTS_QUERY)?;
        let rows = stmt.query_map(params![connector], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Items that are failed or unmapped, with the reason, newest first.
    pub fn problem_items(
        &self,
        connector: &str,
        limit: u32,
    ) -> Result<Vec<(String, String, Option<String>)>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(PROBLEM_ITEMS_QUERY)?;
        let rows = stmt.query_map(params![connector, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
    /// The copies recorded in a mailbox, by every connector of the ledger.
    pub fn copies_in_mailbox(&self, mailbox: &crate::types::Mailbox) -> Result<u64, LedgerError> {
        let copies: i64 = self.conn().query_row(
            "SELECT coalesce(sum(copies), 0) FROM copy_totals WHERE mailbox = ?1",
            params![mailbox.key()],
            |r| r.get(0),
        )?;
        Ok(copies as u64)
    }

    /// Copies and bytes per mailbox.
    pub fn mailbox_totals(&self, connector: &str) -> Result<Vec<Total>, LedgerError> {
        self.totals(MAILBOX_TOTALS_QUERY, connector)
    }

    /// Copies and bytes per item type.
    pub fn type_totals(&self, connector: &str) -> Result<Vec<Total>, LedgerError> {
        self.totals(TYPE_TOTALS_QUERY, connector)
    }

    fn totals(&self, sql: &str, connector: &str) -> Result<Vec<Total>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![connector], |r| {
            Ok(Total {
                key: r.get(0)?,
                copies: r.get::<_, i64>(1)? as u64,
                bytes: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{begin_day_run, item, recount, shown};
    use crate::ledger::{ItemState, RunFigures, RunOutcome};
    use crate::mailbox::Written;
    use crate::telemessage::{Item, ItemType};
    use crate::types::Mailbox;

    /// `status` reads running totals; they must agree with the rows after
    /// copies are rewritten and items move between states.
    #[test]
    fn status_totals_agree_with_the_rows_after_rewrites_and_retries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let run = begin_day_run(&ledger);
        let li = Mailbox::parse("li.wei@contoso.com").unwrap();
        let zhang = Mailbox::parse("zhang.min@contoso.com").unwrap();
        let copy = |connector, it: &Item, mailbox: &Mailbox, bytes| {
            let written = Written {
                location: "x/cur/1".into(),
                bytes,
            };
            ledger
                .record_copy(connector, it, mailbox, &written, run)
                .unwrap()
        };
        let set = |connector, it: &Item, state, reason| {
            ledger
                .record_item(connector, it, state, reason, run)
                .unwrap()
        };
        let (a, mut b, c) = (item("itm_A"), item("itm_B"), item("itm_C"));
        b.kind = ItemType::Call;
        copy("c", &a, &li, 100);
        copy("c", &a, &zhang, 100);
        set("c", &a, ItemState::Archived, None);
        copy("c", &b, &li, 7);
        set("c", &b, ItemState::Failed, Some("disk full"));
        set("c", &c, ItemState::Unmapped, None);
        // A copy whose item's outcome is never recorded: the item is failed.
        copy("c", &item("itm_D"), &li, 5);

        copy("c", &b, &li, 9);
        copy("c", &b, &zhang, 9);
        set("c", &b, ItemState::Archived, None);
        set("c", &c, ItemState::Unmapped, None);
        copy("other", &a, &li, 1000);
        set("other", &a, ItemState::Archived, None);
        ledger
            .finish_run(run, &RunFigures::default(), RunOutcome::Ok, None)
            .unwrap();

        let (copies, items) = shown(&ledger);
        assert_eq!(
            copies,
            [
                ("li.wei@contoso.com".to_string(), 3, 114),
                ("zhang.min@contoso.com".to_string(), 2, 109)
            ]
        );
        assert_eq!(
            items,
            [
                ("archived".to_string(), 2),
                ("failed".to_string(), 1),
                ("unmapped".to_string(), 1)
            ]
        );
        assert_eq!((copies, items), recount(&path));
        let types = ledger.type_totals("c").unwrap();
        let types: Vec<_> = types.iter().map(|t| (t.key.as_str(), t.copies)).collect();
        assert_eq!(types, [("call", 2), ("chat", 3)]);
    }
}
