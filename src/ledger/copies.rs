//! Copies: which (item, mailbox) copies were written, and where.

use std::collections::HashSet;

use rusqlite::params;

use super::items::item_row;
use super::{Ledger, LedgerError, RunId, now};
use crate::mailbox::Written;
use crate::telemessage::Item;
use crate::types::{ItemId, Mailbox};

/// The mailboxes holding a copy of an item: read from the two indexes alone.
pub(super) const COPIES_OF_QUERY: &str = "SELECT c.mailbox FROM items AS i \
     JOIN copies AS c ON c.item_ref = i.id WHERE i.connector = ?1 AND i.item_id = ?2";

impl Ledger {
    /// The mailboxes (lowercase keys) that already hold a copy of the item.
    pub fn copies_of(
        &self,
        connector: &str,
        item: &ItemId,
    ) -> Result<HashSet<String>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(COPIES_OF_QUERY)?;
        let rows = stmt.query_map(params![connector, item.as_str()], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every copy of a connector, as (mailbox, item id, location), by
    /// mailbox: what `ledger check` compares with the target.
    pub fn copies_by_mailbox(
        &self,
        connector: &str,
    ) -> Result<Vec<(String, String, String)>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.mailbox, i.item_id, c.location FROM copies AS c \
             JOIN items AS i ON i.id = c.item_ref WHERE c.connector = ?1 \
             ORDER BY c.mailbox, i.item_id",
        )?;
        let rows = stmt.query_map(params![connector], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a written copy. It reaches the file only after the
    /// before-commit hook made it durable (see [`Ledger::set_before_commit`]).
    pub fn record_copy(
        &self,
        connector: &str,
        item: &Item,
        mailbox: &Mailbox,
        written: &Written,
        run: RunId,
    ) -> Result<(), LedgerError> {
        self.batched(|conn| {
            let item_ref = item_row(conn, connector, item, run)?;
            let mut stmt = conn.prepare_cached(
                "INSERT INTO copies \
                 (item_ref, connector, mailbox, item_type, location, bytes, run_id, written_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (item_ref, mailbox) DO UPDATE SET \
                 item_type = excluded.item_type, location = excluded.location, \
                 bytes = excluded.bytes, run_id = excluded.run_id, written_at = excluded.written_at",
            )?;
            stmt.execute(params![
                item_ref,
                connector,
                mailbox.key(),
                item.kind.as_str(),
                written.location,
                written.bytes as i64,
                run.0,
                now()
            ])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{begin_day_run, item};

    #[test]
    fn copies_survive_reopening_and_are_keyed_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let run = begin_day_run(&ledger);
        let it = item("itm_1");
        let written = Written {
            location: "x/cur/1".into(),
            bytes: 12,
        };
        let mailbox = Mailbox::parse("Li.Wei@Contoso.com").unwrap();
        ledger
            .record_copy("c", &it, &mailbox, &written, run)
            .unwrap();
        drop(ledger);
        let ledger = Ledger::open(&path).unwrap();
        let copies = ledger.copies_of("c", &it.id).unwrap();
        assert!(copies.contains("li.wei@contoso.com"));
        assert!(ledger.copies_of("other", &it.id).unwrap().is_empty());
        assert_eq!(ledger.mailbox_totals("c").unwrap()[0].bytes, 12);
    }

    /// A copy must belong to an item the ledger holds.
    #[test]
    fn a_copy_of_no_item_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let refused = ledger.conn().execute(
            "INSERT INTO copies (item_ref, connector, mailbox, item_type, location, bytes, run_id, written_at) \
             VALUES (42, 'c', 'li.wei@contoso.com', 'chat', 'li/cur/1', 1, 1, 'x')",
            [],
        );
        let err = refused.expect_err("a copy of no item was recorded");
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    }
}
