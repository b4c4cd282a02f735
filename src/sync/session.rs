//! A run fed item by item with content in hand, for TeleMessage's e-mail
//! delivery: the LMTP server, the pipe and the importer each open one and
//! hand it messages. Every item takes the same path as a listed one
//! (`Run::deliver_item`), so mapping, ledger and exactly-once rules are
//! the API source's.

use std::time::Instant;

use super::adopt::Adoption;
use super::{Engine, Run, SyncError, SyncPlan, SyncReport};
use crate::content::Content;
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
}

impl Engine {
    /// Opens a run for items that come with their content. The caller
    /// holds the connector's lock for the session's life.
    pub fn session<'a>(&'a self, plan: &'a SyncPlan) -> Result<Session<'a>, SyncError> {
        let started = Instant::now();
        let mut run = self.start(plan)?;
        // A session lives as long as `receive` does: a target that was
        // down is looked at afresh by the next message.
        run.adoption = Adoption::retrying();
        Ok(Session { run, started })
    }
}

impl Session<'_> {
    /// Archives one item whose content is given. Returns once every copy
    /// is written and recorded (the record reaches the ledger file at the
    /// next [`Session::commit`]).
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

    /// Makes every copy written so far durable and commits their records:
    /// after this, a crash loses nothing already delivered.
    pub fn commit(&self) -> Result<(), SyncError> {
        Ok(self.run.engine.ledger.commit()?)
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
