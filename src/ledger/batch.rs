//! Batched writes: a run's hot-path records share one SQLite transaction,
//! committed when old or full, by any other write, by a background thread
//! when idle, and on drop; only after the target made the copies durable.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Ledger, LedgerError};

/// Run before each commit of recorded copies: makes the copies durable on
/// the target (Maildir defers its directory fsyncs to this point).
pub type BeforeCommit = Box<dyn Fn() -> Result<(), String> + Send>;

/// Recorded copies and item states are committed in batches: one SQLite
/// transaction per batch instead of one per row (each of which rewrites
/// whole pages into the WAL). A batch is committed once it is this old...
const BATCH_AGE: Duration = Duration::from_millis(200);
/// ...or holds this many writes, whichever comes first.
const BATCH_WRITES: u32 = 1000;

pub(super) struct Shared {
    state: Mutex<State>,
}

struct State {
    conn: Connection,
    /// The open write batch, if any.
    batch: Option<Batch>,
    /// A batch could not be committed: rows reported as recorded are not.
    lost_records: bool,
    /// How many batches were lost, for a caller waiting on its rows (see
    /// [`Committer`]).
    lost_batches: u64,
    /// Whether writes are batched (the commit thread is running).
    batching: bool,
    before_commit: Option<BeforeCommit>,
}

struct Batch {
    opened: Instant,
    writes: u32,
}

impl Ledger {
    /// Sets (or clears) what must happen before recorded copies are
    /// committed; the open batch is committed first.
    pub fn set_before_commit(&self, hook: Option<BeforeCommit>) -> Result<(), LedgerError> {
        let mut state = self.state();
        state.commit()?;
        state.before_commit = hook;
        Ok(())
    }

    /// A handle that commits this ledger's open batch from another thread
    /// (an LMTP server's group commit runs off its serving task).
    pub fn committer(&self) -> Committer {
        Committer(Arc::clone(&self.shared))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// The connection for a read; it sees the open batch.
    pub(super) fn conn(&self) -> ConnGuard<'_> {
        ConnGuard(self.state())
    }

    /// The connection for a write that must be in the file when the call
    /// returns. The open batch is committed first, so the file never holds
    /// a later row without an earlier one.
    pub(super) fn write_conn(&self) -> Result<ConnGuard<'_>, LedgerError> {
        let mut state = self.state();
        state.commit()?;
        Ok(ConnGuard(state))
    }

    /// Runs one write of the hot path inside the open batch.
    pub(super) fn batched(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), LedgerError> {
        let mut state = self.state();
        if !state.batching {
            state.run_before_commit()?;
            return Ok(write(&state.conn)?);
        }
        if state.batch.is_none() {
            state.conn.execute_batch("BEGIN IMMEDIATE")?;
            state.batch = Some(Batch {
                opened: Instant::now(),
                writes: 0,
            });
        }
        if let Err(e) = write(&state.conn) {
            state.after_failed_write();
            return Err(e.into());
        }
        let full = state
            .batch
            .as_mut()
            .map(|b| {
                b.writes += 1;
                b.writes >= BATCH_WRITES || b.opened.elapsed() >= BATCH_AGE
            })
            .unwrap_or(false);
        if full {
            state.commit()?;
        }
        Ok(())
    }
}

impl Shared {
    /// The ledger's state around its connection, with the thread that
    /// commits idle batches started (or, without it, no batching).
    pub(super) fn start(conn: Connection) -> Arc<Shared> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                conn,
                batch: None,
                lost_records: false,
                lost_batches: 0,
                batching: false,
                before_commit: None,
            }),
        });
        let batching = spawn_batch_committer(Arc::downgrade(&shared));
        shared.lock().batching = batching;
        shared
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Commits a ledger's open batch; see [`Ledger::committer`].
#[derive(Clone)]
pub struct Committer(Arc<Shared>);

/// How many batches a ledger had lost when a caller started writing: if
/// more are lost by the time its rows should be committed, they may be
/// among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossMark(u64);

impl Committer {
    /// Commits the open batch (after the before-commit hook). Blocks on
    /// fsyncs: call it from a blocking thread.
    pub fn commit(&self) -> Result<(), LedgerError> {
        self.0.lock().commit()
    }

    /// The mark to compare with [`Committer::kept_since`] later.
    pub fn loss_mark(&self) -> LossMark {
        LossMark(self.0.lock().lost_batches)
    }

    /// Whether no batch was lost since `mark` was taken.
    pub fn kept_since(&self, mark: LossMark) -> bool {
        self.0.lock().lost_batches == mark.0
    }
}

#[cfg(test)]
impl Ledger {
    /// Loses the open batch, as a failed disk write does.
    pub(super) fn lose_batch_for_test(&self) {
        let mut state = self.state();
        state.conn.execute_batch("ROLLBACK").unwrap();
        state.after_failed_write();
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Err(e) = self.state().commit() {
            tracing::error!("the ledger could not save its last records: {e}");
        }
    }
}

impl State {
    /// Commits the open batch, if any. A batch that cannot be committed is
    /// rolled back and remembered (see [`Ledger::finish_run`]).
    pub(super) fn commit(&mut self) -> Result<(), LedgerError> {
        if self.batch.is_none() {
            return Ok(());
        }
        if let Err(e) = self.run_before_commit() {
            self.batch = None;
            let _ = self.conn.execute_batch("ROLLBACK");
            self.lose_batch();
            return Err(e);
        }
        self.batch = None;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.lose_batch();
            return Err(e.into());
        }
        Ok(())
    }

    fn lose_batch(&mut self) {
        self.lost_records = true;
        self.lost_batches += 1;
    }

    fn run_before_commit(&self) -> Result<(), LedgerError> {
        match &self.before_commit {
            Some(hook) => hook().map_err(LedgerError::NotDurable),
            None => Ok(()),
        }
    }

    /// After a failed statement SQLite keeps the transaction, or for some
    /// errors (disk full, I/O) rolls all of it back, losing the batch.
    pub(super) fn after_failed_write(&mut self) {
        if self.batch.is_some() && self.conn.is_autocommit() {
            self.batch = None;
            self.lose_batch();
        }
    }
}

/// The connection, with any batch committed; see [`Ledger::conn`].
pub(super) struct ConnGuard<'a>(MutexGuard<'a, State>);

impl ConnGuard<'_> {
    /// Whether a batch of this ledger could not be committed: rows reported
    /// as recorded are not (see [`Ledger::finish_run`]).
    pub(super) fn lost_records(&self) -> bool {
        self.0.lost_records
    }
}

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

/// Commits batches left idle (a long download, the end of a run) so no
/// record waits longer than about [`BATCH_AGE`] and the write lock is not
/// held while nothing is written. Ends when the ledger is dropped.
fn spawn_batch_committer(shared: Weak<Shared>) -> bool {
    let spawned = std::thread::Builder::new()
        .name("ledger-commit".into())
        .spawn(move || {
            loop {
                std::thread::sleep(BATCH_AGE / 4);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let mut state = shared.lock();
                let due = state
                    .batch
                    .as_ref()
                    .is_some_and(|b| b.opened.elapsed() >= BATCH_AGE);
                if due && let Err(e) = state.commit() {
                    tracing::error!("the ledger could not save a batch of records: {e}");
                }
            }
        });
    match spawned {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("cannot start the ledger's commit thread ({e}); committing every write");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{begin_day_run, item, record_copies, recorded_elsewhere};
    use crate::ledger::{RunFigures, RunOutcome};

    #[test]
    fn batched_records_reach_the_file_soon_without_another_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let run = begin_day_run(&ledger);
        record_copies(&ledger, run, 3);
        assert_eq!(ledger.copies_of("c", &item("itm_2").id).unwrap().len(), 1);
        let deadline = Instant::now() + BATCH_AGE * 10;
        while recorded_elsewhere(&path) < 3 {
            assert!(Instant::now() < deadline, "the batch was never committed");
            std::thread::sleep(BATCH_AGE / 4);
        }
    }

    #[test]
    fn finishing_a_run_and_dropping_the_ledger_commit_the_batch_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let run = begin_day_run(&ledger);
        record_copies(&ledger, run, 5);
        ledger
            .finish_run(run, &RunFigures::default(), RunOutcome::Ok, None)
            .unwrap();
        assert_eq!(recorded_elsewhere(&path), 5);
        record_copies(&ledger, run, 7);
        drop(ledger);
        assert_eq!(recorded_elsewhere(&path), 7);
    }

    #[test]
    fn copies_are_committed_only_after_the_target_made_them_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let run = begin_day_run(&ledger);
        let seen_at_sync = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&seen_at_sync);
        let hook_path = path.clone();
        ledger
            .set_before_commit(Some(Box::new(move || {
                seen.lock().unwrap().push(recorded_elsewhere(&hook_path));
                Ok(())
            })))
            .unwrap();
        record_copies(&ledger, run, 4);
        ledger
            .finish_run(run, &RunFigures::default(), RunOutcome::Ok, None)
            .unwrap();
        assert_eq!(recorded_elsewhere(&path), 4);
        assert_eq!(seen_at_sync.lock().unwrap().first(), Some(&0));
    }

    #[test]
    fn a_batch_the_target_cannot_make_durable_is_not_committed_and_the_run_crashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let run = begin_day_run(&ledger);
        ledger
            .set_before_commit(Some(Box::new(|| Err("cannot fsync /a/cur: EIO".into()))))
            .unwrap();
        record_copies(&ledger, run, 3);
        let finished = ledger.finish_run(run, &RunFigures::default(), RunOutcome::Ok, None);
        assert!(
            matches!(&finished, Err(LedgerError::NotDurable(m)) if m.contains("EIO")),
            "{finished:?}"
        );
        assert_eq!(recorded_elsewhere(&path), 0);
        ledger.set_before_commit(None).unwrap();
        ledger
            .finish_run(run, &RunFigures::default(), RunOutcome::Ok, None)
            .unwrap();
        let last = &ledger.last_runs("c", 1).unwrap()[0];
        assert_eq!(last.outcome, RunOutcome::Crashed);
        assert_eq!(recorded_elsewhere(&path), 0);
    }

    /// A run that lost records must not count as having retried every
    /// unmapped item: the next run retries them, looking for copies the
    /// lost records named.
    #[test]
    fn a_run_that_lost_records_does_not_record_its_unmapped_retry() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = begin_day_run(&ledger);
        record_copies(&ledger, run, 2);
        {
            let mut state = ledger.state();
            state.conn.execute_batch("ROLLBACK").unwrap();
            state.after_failed_write();
        }
        let at = item("x").archived_at;
        ledger.record_unmapped_retry("c", "f", at).unwrap();
        assert_eq!(ledger.unmapped_retry("c").unwrap(), None);
    }

    #[test]
    fn a_run_whose_batch_was_lost_is_recorded_as_crashed() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = begin_day_run(&ledger);
        record_copies(&ledger, run, 2);
        {
            let mut state = ledger.state();
            state.conn.execute_batch("ROLLBACK").unwrap();
            state.after_failed_write();
        }
        assert!(ledger.copies_of("c", &item("itm_1").id).unwrap().is_empty());
        ledger
            .finish_run(run, &RunFigures::default(), RunOutcome::Ok, None)
            .unwrap();
        let last = &ledger.last_runs("c", 1).unwrap()[0];
        assert_eq!(last.outcome, RunOutcome::Crashed);
        assert!(last.error.as_deref().unwrap().contains("could not save"));
    }
}
