//! A run fed item by item with content in hand, for TeleMessage's e-mail
//! delivery: the LMTP server, the pipe and the importer each open one and
//! hand it messages. Every item takes the same path as a listed one
//! (`Run::deliver_item`), so mapping, ledger and exactly-once rules are
//! the API source's.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::adopt::Adoption;
use super::{Engine, Run, SyncError, SyncPlan, SyncReport};
use crate::content::Content;
use crate::ledger::{Committer, Ledger, LedgerError, LossMark};
use crate::telemessage::Item;

/// What became of one item handed to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Every copy it needs is written (now or before).
    Archived,
    /// No participant maps to a mailbox; kept as unmapped (and written to
    /// the fallback mailbox, if there is one).
    Unmapped,
    /// Some copy could not be written; why.
    Failed(String),
    /// A dry run: nothing written.
    Planned,
}

/// An open run that items are handed to one at a time (or several at once
/// from several tasks). Close it with [`Session::finish`].
pub struct Session<'a> {
    run: Run<'a>,
    started: Instant,
    group: GroupCommit,
}

/// Taken before an item is handed to a session; see [`Session::saved`].
#[derive(Debug, Clone, Copy)]
pub struct Handover(LossMark);

impl Engine {
    /// Opens a run for items that come with their content. The caller
    /// holds the connector's lock for the session's life.
    pub fn session<'a>(&'a self, plan: &'a SyncPlan) -> Result<Session<'a>, SyncError> {
        let started = Instant::now();
        let mut run = self.start(plan)?;
        // A session lives as long as `receive` does: a target that was
        // down is looked at afresh by the next message.
        run.adoption = Adoption::retrying();
        let group = GroupCommit::new(self.ledger.committer());
        Ok(Session {
            run,
            started,
            group,
        })
    }
}

impl Session<'_> {
    /// The ledger, for records that belong with an item's (an e-mail's
    /// identity).
    pub fn ledger(&self) -> &Ledger {
        &self.run.engine.ledger
    }

    /// Marks the start of an item's handover, before anything of it is
    /// recorded; [`Session::saved`] later says whether its records were
    /// saved.
    pub fn handover(&self) -> Handover {
        Handover(self.group.committer.loss_mark())
    }

    /// Archives one item whose content is given. Returns once every copy
    /// is written and recorded (the record reaches the ledger file by
    /// [`Session::saved`]).
    pub async fn deliver(&self, item: &Item, content: &Content) -> Result<Settled, SyncError> {
        let run = &self.run;
        run.count_listed(item, true);
        let state = run
            .engine
            .ledger
            .item_state(&run.plan.connector, &item.id)?
            .map(|(state, _)| state);
        let settled = run
            .deliver_item(item, state.as_deref(), Some(content))
            .await;
        if let Some(p) = &run.engine.progress {
            p.item_done(item.size);
        }
        settled
    }

    /// Returns once every copy handed over since `handover` is durable and
    /// its records are committed: after this, a crash loses nothing of it.
    /// Callers waiting at once share one commit (see [`GroupCommit`]).
    pub async fn saved(&self, handover: Handover) -> Result<(), SyncError> {
        self.group.covering().await?;
        if !self.group.committer.kept_since(handover.0) {
            return Err(LedgerError::NotDurable(
                "a batch of records that may hold this item's could not be saved".into(),
            )
            .into());
        }
        Ok(())
    }

    /// The figures so far.
    pub fn report(&self) -> SyncReport {
        self.run.report().clone()
    }

    /// Records the run's end: stores the marks of the archive folders it
    /// looked in or wrote to (so the next session need not look in them
    /// again) and ends the target's sessions (IMAP `LOGOUT`).
    pub async fn finish(self) -> Result<SyncReport, SyncError> {
        let engine = self.run.engine;
        let result = self.run.store_folder_marks().await;
        engine.writer.close().await;
        engine.end(self.run, result, self.started)
    }
}

/// A group commit: callers whose records are in the ledger's open batch
/// wait for one commit that covers them all, run on a blocking thread, so
/// many messages share one ledger commit and one fsync per directory, and
/// the task serving connections never waits on a disk.
struct GroupCommit {
    committer: Committer,
    /// Held by the caller running the commit; the others queue on it.
    leader: tokio::sync::Mutex<()>,
    counts: Mutex<Counts>,
}

/// Commits numbered from 1 in the order they started.
#[derive(Default)]
struct Counts {
    started: u64,
    finished: u64,
}

impl GroupCommit {
    fn new(committer: Committer) -> GroupCommit {
        GroupCommit {
            committer,
            leader: tokio::sync::Mutex::new(()),
            counts: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a commit that starts after this call: it covers every
    /// record the caller made before calling. Whether that commit kept
    /// them is for the caller to check (a lost batch is counted).
    async fn covering(&self) -> Result<(), LedgerError> {
        let needed = self.counts().started + 1;
        let _leading = self.leader.lock().await;
        if self.counts().finished >= needed {
            return Ok(());
        }
        let this = {
            let mut counts = self.counts();
            counts.started += 1;
            counts.started
        };
        let committer = self.committer.clone();
        let committed = tokio::task::spawn_blocking(move || committer.commit())
            .await
            .map_err(|e| LedgerError::NotDurable(format!("the ledger's commit stopped: {e}")))?;
        let mut counts = self.counts();
        counts.finished = counts.finished.max(this);
        committed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_waiting_at_once_share_commits_and_find_their_records_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let commits = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&commits);
        ledger
            .set_before_commit(Some(Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(30));
                Ok(())
            })))
            .unwrap();
        let group = GroupCommit::new(ledger.committer());
        let callers = (0..16).map(|i| {
            let (ledger, group) = (&ledger, &group);
            async move {
                let id = format!("<{i}@x>");
                ledger.email_identity("c", &id, "d", "-").unwrap();
                group.covering().await.unwrap();
            }
        });
        futures_util::future::join_all(callers).await;

        let outside = rusqlite::Connection::open(&path).unwrap();
        let saved: u32 = outside
            .query_row("SELECT count(*) FROM email_identities", [], |r| r.get(0))
            .unwrap();
        assert_eq!(saved, 16, "a caller returned before its record was saved");
        let commits = commits.load(Ordering::SeqCst);
        assert!(commits <= 4, "16 callers took {commits} commits");
    }
}
