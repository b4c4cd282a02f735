//! Adopting copies the target holds and the ledger does not know: a lost
//! ledger, one restored from an older backup, a new home or a second
//! connector pointed at an existing archive. Each archive folder is looked
//! in at most once per run, in one pass, and only when its mark (see
//! `MailboxWriter::folder_mark`) differs from the one the ledger stored
//! after its last complete run there; a normal run reads the mark only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio::sync::OnceCell;

use super::{Run, SyncError};
use crate::ledger::{Ledger, LedgerError};
use crate::mailbox::{FolderCopies, Found, MailboxWriter};
use crate::telemessage::Item;
use crate::types::Mailbox;

/// What a run knows of one archive folder.
#[derive(Debug, Clone)]
pub(crate) enum Folder {
    /// The ledger knows every copy in it (the marks agree).
    Known,
    /// The copies found in one pass over it.
    Looked(Arc<FolderCopies>),
    /// It could not be looked in: nothing is written there this run (a
    /// duplicate would be worse than a retry).
    Unchecked(String),
}

/// A folder's mailbox and what the run decided about it, once.
type FolderCell = (Mailbox, Arc<OnceCell<Folder>>);

/// The folders of one run, each decided once.
#[derive(Default)]
pub(crate) struct Adoption {
    folders: Mutex<HashMap<String, FolderCell>>,
    /// Whether a folder that could not be looked in is looked in again by
    /// the next item (see [`Adoption::retrying`]).
    retry_unchecked: bool,
}

impl Adoption {
    /// For a run that lives as long as a server (`receive`): a folder that
    /// could not be looked in while the target was down is looked in again
    /// by the next message, rather than failing every message for that
    /// mailbox until the process ends. A batch run keeps the one look.
    pub(crate) fn retrying() -> Adoption {
        Adoption {
            retry_unchecked: true,
            ..Adoption::default()
        }
    }

    /// What the run knows of `mailbox`'s folder, looking in it the first
    /// time if its mark changed since the ledger's last complete run.
    pub(crate) async fn folder(
        &self,
        ledger: &Ledger,
        writer: &dyn MailboxWriter,
        connector: &str,
        mailbox: &Mailbox,
    ) -> Result<Folder, LedgerError> {
        let cell = {
            let mut folders = self.folders.lock().unwrap_or_else(|p| p.into_inner());
            let entry = folders
                .entry(mailbox.key().to_owned())
                .or_insert_with(|| (mailbox.clone(), Arc::new(OnceCell::new())));
            Arc::clone(&entry.1)
        };
        let folder = cell
            .get_or_try_init(|| decide(ledger, writer, connector, mailbox))
            .await?
            .clone();
        if self.retry_unchecked && matches!(folder, Folder::Unchecked(_)) {
            self.forget(mailbox, &cell);
        }
        Ok(folder)
    }

    /// Drops `mailbox`'s decision, if it is still `cell`, so the next item
    /// decides again.
    fn forget(&self, mailbox: &Mailbox, cell: &Arc<OnceCell<Folder>>) {
        let mut folders = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        if folders
            .get(mailbox.key())
            .is_some_and(|(_, current)| Arc::ptr_eq(current, cell))
        {
            folders.remove(mailbox.key());
        }
    }

    /// The folders this run decided on and could look in.
    fn decided(&self) -> Vec<(Mailbox, Folder)> {
        let folders = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        folders
            .values()
            .filter_map(|(mailbox, cell)| match cell.get() {
                Some(Folder::Unchecked(_)) | None => None,
                Some(folder) => Some((mailbox.clone(), folder.clone())),
            })
            .collect()
    }

    /// After a run that recorded every copy it wrote or found: stores each
    /// folder's mark as it is now, so the next run only compares marks;
    /// except for a folder holding more copies than the ledger knows in
    /// that mailbox (copies of items outside this run's window), which
    /// the next run looks in again. Marks are read as many at once as the
    /// writer reads in parallel: one after another, a Graph run of 36
    /// mailboxes spent 18 s here after 6 s of writing (`bench/graph`).
    pub(crate) async fn store_marks(
        &self,
        ledger: &Ledger,
        writer: &dyn MailboxWriter,
        connector: &str,
    ) -> Result<(), LedgerError> {
        let mut to_mark = Vec::new();
        for (mailbox, folder) in self.decided() {
            if let Folder::Looked(copies) = &folder {
                let recorded = ledger.copies_in_mailbox(&mailbox)?;
                if copies.len() as u64 > recorded {
                    tracing::info!(
                        "{mailbox}'s archive folder holds {} copies, the ledger {recorded}: \
                         the next run looks in it again",
                        copies.len()
                    );
                    continue;
                }
            }
            to_mark.push(mailbox);
        }
        let mut marks = futures_util::stream::iter(to_mark)
            .map(|mailbox| async move {
                let mark = writer.folder_mark(&mailbox).await;
                (mailbox, mark)
            })
            .buffer_unordered(writer.read_parallelism().max(1));
        while let Some((mailbox, mark)) = marks.next().await {
            match mark {
                Ok(Some(mark)) => ledger.set_folder_mark(connector, &mailbox, &mark)?,
                Ok(None) => {}
                Err(e) => tracing::info!("cannot read the mark of {mailbox}'s folder: {e}"),
            }
        }
        Ok(())
    }
}

async fn decide(
    ledger: &Ledger,
    writer: &dyn MailboxWriter,
    connector: &str,
    mailbox: &Mailbox,
) -> Result<Folder, LedgerError> {
    let stored = ledger.folder_mark(connector, mailbox)?;
    let now = match writer.folder_mark(mailbox).await {
        Ok(now) => now,
        Err(e) => return Ok(unchecked(mailbox, e)),
    };
    if now.is_some() && now == stored {
        return Ok(Folder::Known);
    }
    match writer.existing_copies(mailbox).await {
        Ok(copies) => {
            tracing::info!(
                "looked in {mailbox}'s archive folder for copies the ledger does not know: {} found",
                copies.len()
            );
            Ok(Folder::Looked(Arc::new(copies)))
        }
        Err(e) => Ok(unchecked(mailbox, e)),
    }
}

fn unchecked(mailbox: &Mailbox, e: impl std::fmt::Display) -> Folder {
    let reason = format!("cannot look in {mailbox}'s archive folder for copies already there: {e}");
    tracing::warn!("{reason}");
    Folder::Unchecked(reason)
}

/// Whether a copy already in the target was adopted.
pub(super) enum Adopted {
    Yes,
    No,
    /// The folder could not be looked in: the copy is not written.
    Unchecked(String),
}

impl Run<'_> {
    /// Adopts the mailbox's copy of the item if its archive folder holds
    /// one the ledger does not know: recorded as written (where it is),
    /// counted as already archived, never written again.
    pub(super) async fn adopt(&self, item: &Item, mailbox: &Mailbox) -> Result<Adopted, SyncError> {
        let engine = self.engine;
        let writer = engine.writer.as_ref();
        let connector = &self.plan.connector;
        let folder = self
            .adoption
            .folder(&engine.ledger, writer, connector, mailbox)
            .await?;
        let found = match folder {
            Folder::Known => return Ok(Adopted::No),
            Folder::Unchecked(reason) => return Ok(Adopted::Unchecked(reason)),
            Folder::Looked(copies) => match copies.get(&item.id) {
                Some(found) => found.clone(),
                None => return Ok(Adopted::No),
            },
        };
        let found: Found = match writer.confirm(item, found).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(Adopted::No),
            Err(e) => {
                let reason = format!("cannot read a copy already there: {e}");
                return Ok(Adopted::Unchecked(reason));
            }
        };
        if !self.plan.dry_run {
            self.record_copy(item, mailbox, &found.written, None)?;
            self.report().adopted += 1;
            if let Some(other) = found.connector.as_deref().filter(|c| c != connector) {
                tracing::warn!(
                    "item {} in {mailbox} was written by connector {other:?}, not {connector:?}: adopted",
                    item.id
                );
                engine
                    .ledger
                    .record_foreign_copy(connector, mailbox, other)?;
            }
        }
        self.report().already_archived(mailbox);
        Ok(Adopted::Yes)
    }

    /// Stores the marks of the folders this run looked in or wrote to,
    /// once every copy it wrote or found is recorded.
    pub(super) async fn store_folder_marks(&self) -> Result<(), SyncError> {
        let clean = !self.plan.dry_run && self.report().failed == 0;
        if clean {
            let engine = self.engine;
            self.adoption
                .store_marks(&engine.ledger, engine.writer.as_ref(), &self.plan.connector)
                .await?;
        }
        Ok(())
    }
}
