//! Folder ids a target caches per mailbox (Graph).

use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError};
use crate::types::Mailbox;

impl Ledger {
    /// A folder id a target cached for a mailbox (Graph).
    pub fn folder_id(
        &self,
        connector: &str,
        mailbox: &Mailbox,
    ) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT folder_id FROM folders WHERE connector = ?1 AND mailbox = ?2",
                params![connector, mailbox.key()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every folder id cached for a connector: (mailbox key, folder id).
    pub fn folder_ids(&self, connector: &str) -> Result<Vec<(String, String)>, LedgerError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT mailbox, folder_id FROM folders WHERE connector = ?1")?;
        let rows = stmt.query_map(params![connector], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_folder_id(
        &self,
        connector: &str,
        mailbox: &Mailbox,
        folder_id: &str,
    ) -> Result<(), LedgerError> {
        self.write_conn()?.execute(
            "INSERT OR REPLACE INTO folders (connector, mailbox, folder_id) VALUES (?1, ?2, ?3)",
            params![connector, mailbox.key(), folder_id],
        )?;
        Ok(())
    }
}
