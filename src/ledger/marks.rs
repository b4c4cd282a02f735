//! Folder marks and foreign copies: what this ledger last knew of each
//! archive folder, so a run can tell cheaply whether the folder may hold
//! copies the ledger does not know (a lost or older ledger, another home
//! writing to the same archive), and the copies it adopted that another
//! connector name wrote, which `status` warns about.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Ledger, LedgerError, now};
use crate::types::Mailbox;

/// Copies found in a mailbox that another connector name wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignCopies {
    pub mailbox: String,
    /// The connector named in the copies' trace header.
    pub written_by: String,
    pub copies: u64,
    pub last_seen: String,
}

impl Ledger {
    /// The folder's mark as the writer gave it after this ledger's last
    /// complete pass over the folder (see `MailboxWriter::folder_mark`).
    pub fn folder_mark(
        &self,
        connector: &str,
        mailbox: &Mailbox,
    ) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT mark FROM folder_marks WHERE connector = ?1 AND mailbox = ?2",
                params![connector, mailbox.key()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records the folder's mark once every copy the folder holds of this
    /// connector's items is recorded. Nothing if some of this ledger's
    /// records were lost: the folder then holds copies the ledger lacks,
    /// and the next run must look.
    pub fn set_folder_mark(
        &self,
        connector: &str,
        mailbox: &Mailbox,
        mark: &str,
    ) -> Result<(), LedgerError> {
        let conn = self.write_conn()?;
        if conn.lost_records() {
            return Ok(());
        }
        conn.execute(
            "INSERT INTO folder_marks (connector, mailbox, mark) VALUES (?1, ?2, ?3) \
             ON CONFLICT (connector, mailbox) DO UPDATE SET mark = excluded.mark",
            params![connector, mailbox.key(), mark],
        )?;
        Ok(())
    }

    /// Forgets every folder mark of a connector: its next run looks in
    /// every folder it writes to (after `ledger rebuild`).
    pub fn clear_folder_marks(&self, connector: &str) -> Result<(), LedgerError> {
        self.write_conn()?.execute(
            "DELETE FROM folder_marks WHERE connector = ?1",
            params![connector],
        )?;
        Ok(())
    }

    /// Counts a copy adopted in `mailbox` whose trace header names another
    /// connector (`written_by`).
    pub fn record_foreign_copy(
        &self,
        connector: &str,
        mailbox: &Mailbox,
        written_by: &str,
    ) -> Result<(), LedgerError> {
        self.write_conn()?.execute(
            "INSERT INTO foreign_copies (connector, mailbox, written_by, copies, last_seen) \
             VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT (connector, mailbox, written_by) \
             DO UPDATE SET copies = copies + 1, last_seen = excluded.last_seen",
            params![connector, mailbox.key(), written_by, now()],
        )?;
        Ok(())
    }

    /// The copies adopted that another connector name wrote, per mailbox.
    pub fn foreign_copies(&self, connector: &str) -> Result<Vec<ForeignCopies>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT mailbox, written_by, copies, last_seen FROM foreign_copies \
             WHERE connector = ?1 ORDER BY mailbox, written_by",
        )?;
        let rows = stmt.query_map(params![connector], |r| {
            Ok(ForeignCopies {
                mailbox: r.get(0)?,
                written_by: r.get(1)?,
                copies: r.get::<_, i64>(2)? as u64,
                last_seen: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{begin_day_run, record_copies};

    #[test]
    fn marks_are_per_connector_and_mailbox_and_not_kept_after_lost_records() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let li = Mailbox::parse("Li.Wei@contoso.com").unwrap();
        assert_eq!(ledger.folder_mark("c", &li).unwrap(), None);
        ledger.set_folder_mark("c", &li, "m1").unwrap();
        ledger.set_folder_mark("c", &li, "m2").unwrap();
        assert_eq!(ledger.folder_mark("c", &li).unwrap().as_deref(), Some("m2"));
        assert_eq!(ledger.folder_mark("other", &li).unwrap(), None);
        ledger.clear_folder_marks("c").unwrap();
        assert_eq!(ledger.folder_mark("c", &li).unwrap(), None);

        let run = begin_day_run(&ledger);
        record_copies(&ledger, run, 2);
        ledger.lose_batch_for_test();
        ledger.set_folder_mark("c", &li, "m3").unwrap();
        assert_eq!(ledger.folder_mark("c", &li).unwrap(), None);
    }

    #[test]
    fn foreign_copies_are_counted_per_mailbox_and_writer() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let li = Mailbox::parse("li.wei@contoso.com").unwrap();
        for _ in 0..3 {
            ledger.record_foreign_copy("c", &li, "old-name").unwrap();
        }
        let found = ledger.foreign_copies("c").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].written_by.as_str(), found[0].copies),
            ("old-name", 3)
        );
        assert!(ledger.foreign_copies("old-name").unwrap().is_empty());
    }
}
