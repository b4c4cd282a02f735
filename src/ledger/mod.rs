//! The ledger: a SQLite file that remembers which (item, mailbox) copies
//! were written where, which items are unmapped or failed and why, every
//! run's figures, and each connector's checkpoint. It is what makes a
//! re-run write nothing and a crashed run resumable.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::mailbox::Written;
use crate::telemessage::Item;
use crate::types::{ItemId, Mailbox};
use prefetch::Prefetcher;

mod prefetch;
mod schema;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger {path} cannot be opened: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "the ledger {path} was written by a newer wechat-archiver (its tables are version {version}; this version reads up to {known})",
        known = schema::VERSION
    )]
    NewerVersion { path: String, version: i64 },
    #[error("the ledger failed: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the ledger holds an item it cannot read back ({item}): {message}")]
    Corrupt { item: String, message: String },
    /// The target could not make the batch's copies durable, so the batch
    /// was not committed; the next run looks for those copies.
    #[error("copies written could not be made durable, so they were not recorded: {0}")]
    NotDurable(String),
}

/// Run before each commit of recorded copies: makes the copies durable on
/// the target (Maildir defers its directory fsyncs to this point).
pub type BeforeCommit = Box<dyn Fn() -> Result<(), String> + Send>;

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
    fn is_retried(self) -> bool {
        matches!(self, ItemState::Unmapped | ItemState::Failed)
    }

    fn as_str(self) -> &'static str {
        match self {
            ItemState::Archived => "archived",
            ItemState::Unmapped => "unmapped",
            ItemState::Failed => "failed",
            ItemState::Gone => "gone",
        }
    }
}

/// The last time a run retried every unmapped item, and the mapping it
/// used (a fingerprint: see `sync::setup::mapping_fingerprint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmappedRetry {
    pub mapping: String,
    pub at: DateTime<Utc>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Running,
    Ok,
    Incomplete,
    Failed,
    /// The process died; found by the next run.
    Crashed,
}

impl RunOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Ok => "ok",
            RunOutcome::Incomplete => "incomplete",
            RunOutcome::Failed => "failed",
            RunOutcome::Crashed => "crashed",
        }
    }

    fn parse(s: &str) -> RunOutcome {
        match s {
            "ok" => RunOutcome::Ok,
            "incomplete" => RunOutcome::Incomplete,
            "failed" => RunOutcome::Failed,
            "crashed" => RunOutcome::Crashed,
            _ => RunOutcome::Running,
        }
    }
}

/// A run's figures, as `sync --json` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunFigures {
    pub listed: u64,
    pub written: u64,
    pub already_archived: u64,
    pub unmapped: u64,
    pub failed: u64,
    pub bytes_written: u64,
}

/// A run as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub connector: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub since: String,
    pub until: String,
    pub dry_run: bool,
    pub outcome: RunOutcome,
    #[serde(flatten)]
    pub figures: RunFigures,
    pub error: Option<String>,
}

/// Copies and bytes per mailbox or per item type.
#[derive(Debug, Clone, Serialize)]
pub struct Total {
    pub key: String,
    pub copies: u64,
    pub bytes: u64,
}

/// Which items of a run may already have copies on the target that the
/// ledger does not know (written by a run that crashed before recording
/// them), so the run must look there before writing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Items retried from the ledger (failed or unmapped): a crashed run
    /// may have retried them too.
    pub retries: bool,
    /// Items listed in the window: it overlaps a crashed run's window.
    pub listed: bool,
}

/// Identifies a run in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunId(pub i64);

/// Recorded copies and item states are committed in batches: one SQLite
/// transaction per batch instead of one per row (each of which rewrites
/// whole pages into the WAL). A batch is committed once it is this old...
const BATCH_AGE: Duration = Duration::from_millis(200);
/// ...or holds this many writes, whichever comes first.
const BATCH_WRITES: u32 = 1000;
/// How long a call waits for another process's write to the ledger.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening waits for another process upgrading the ledger's
/// tables (minutes at millions of copies): a cron run waits rather than fail.
const UPGRADE_WAIT: Duration = Duration::from_secs(15 * 60);
/// WAL pages between automatic checkpoints (SQLite's default is 1000).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 4000;
/// Page cache of the connection, in KiB (SQLite's default is 2000).
const CACHE_KIB: u32 = 8192;

/// The mailboxes holding a copy of an item: read from the two indexes alone.
const COPIES_OF_QUERY: &str = "SELECT c.mailbox FROM items AS i \
     JOIN copies AS c ON c.item_ref = i.id WHERE i.connector = ?1 AND i.item_id = ?2";
/// The row of an item, which its copies point at.
const ITEM_ROW_QUERY: &str = "SELECT id FROM items WHERE connector = ?1 AND item_id = ?2";
/// Why an item whose copies are being written is failed until its outcome
/// is recorded: it stays so if the run stops in between.
const UNSETTLED_REASON: &str = "its copies are being written; if no sync is running, the \
     last one stopped before finishing it, and the next one retries it";
/// The state of one item, found through its index.
const ITEM_STATE_QUERY: &str =
    "SELECT state, reason FROM items WHERE connector = ?1 AND item_id = ?2";

/// `status`'s queries: running totals and a partial index, so they answer
/// at once however many copies the ledger holds.
const MAILBOX_TOTALS_QUERY: &str = "SELECT mailbox, sum(copies), sum(bytes) FROM copy_totals \
     WHERE connector = ?1 GROUP BY mailbox HAVING sum(copies) > 0 ORDER BY mailbox";
const TYPE_TOTALS_QUERY: &str = "SELECT item_type, sum(copies), sum(bytes) FROM copy_totals \
     WHERE connector = ?1 GROUP BY item_type HAVING sum(copies) > 0 ORDER BY item_type";
const ITEM_COUNTS_QUERY: &str =
    "SELECT state, items FROM item_counts WHERE connector = ?1 AND items > 0 ORDER BY state";
const PROBLEM_ITEMS_QUERY: &str = "SELECT item_id, state, reason FROM items \
     WHERE connector = ?1 AND state IN ('unmapped', 'failed', 'gone') \
     ORDER BY archived_at DESC LIMIT ?2";

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

/// The ledger file. Calls are short and serialised through one connection.
///
/// Writes of a run's hot path ([`Ledger::record_copy`],
/// [`Ledger::record_item`]) are batched: they are visible to this ledger at
/// once but reach the file within `BATCH_AGE` (a background thread
/// commits an idle batch; any other write, and dropping the ledger, commits
/// it first). A process killed in between loses at most that batch: its
/// run stays `running`, the next run marks it crashed and asks the target
/// for the copies it wrote, exactly as after a crash before the record.
pub struct Ledger {
    shared: Arc<Shared>,
    prefetcher: Prefetcher,
}

struct Shared {
    state: Mutex<State>,
}

struct State {
    conn: Connection,
    /// The open write batch, if any.
    batch: Option<Batch>,
    /// A batch could not be committed: rows reported as recorded are not.
    lost_records: bool,
    /// Whether writes are batched (the commit thread is running).
    batching: bool,
    before_commit: Option<BeforeCommit>,
}

struct Batch {
    opened: Instant,
    writes: u32,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The listing metadata an item to retry keeps.
fn listing(item: &Item) -> serde_json::Result<String> {
    serde_json::to_string(item)
}

/// The row of an item about to get a copy, created if the item is new: as
/// failed with [`UNSETTLED_REASON`] and its listing, so that a run stopping
/// before the item's outcome is recorded leaves it to be retried.
fn item_row(conn: &Connection, connector: &str, item: &Item, run: RunId) -> rusqlite::Result<i64> {
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
    /// Opens (and creates) the ledger. WAL with `synchronous=NORMAL`: a
    /// copy recorded just before a power cut may be forgotten, which the
    /// writers' crash check (`find_existing`) repairs without duplicates.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let open_err = |source| LedgerError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        enable_wal(&conn).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(open_err)?;
        conn.pragma_update(None, "cache_size", -i64::from(CACHE_KIB))
            .map_err(open_err)?;
        conn.busy_timeout(UPGRADE_WAIT).map_err(open_err)?;
        let prepared = schema::prepare(&mut conn).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        match prepared {
            schema::Prepared::Newer { version } => {
                return Err(LedgerError::NewerVersion {
                    path: path.display().to_string(),
                    version,
                });
            }
            schema::Prepared::Upgraded { from, copies } => {
                tracing::info!("upgraded the ledger from version {from} ({copies} copies)")
            }
            schema::Prepared::Ready => {}
        }
        // After the upgrade, which would check each of millions of rows.
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                conn,
                batch: None,
                lost_records: false,
                batching: false,
                before_commit: None,
            }),
        });
        let batching = spawn_batch_committer(Arc::downgrade(&shared));
        shared.lock().batching = batching;
        let prefetcher = Prefetcher::new(path.to_path_buf(), prefetch::MIN_LEDGER_BYTES);
        Ok(Ledger { shared, prefetcher })
    }

    /// Sets (or clears) what must happen before recorded copies are
    /// committed; the open batch is committed first.
    pub fn set_before_commit(&self, hook: Option<BeforeCommit>) -> Result<(), LedgerError> {
        let mut state = self.state();
        state.commit()?;
        state.before_commit = hook;
        Ok(())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// The connection for a read; it sees the open batch.
    fn conn(&self) -> ConnGuard<'_> {
        ConnGuard(self.state())
    }

    /// The connection for a write that must be in the file when the call
    /// returns. The open batch is committed first, so the file never holds
    /// a later row without an earlier one.
    fn write_conn(&self) -> Result<ConnGuard<'_>, LedgerError> {
        let mut state = self.state();
        state.commit()?;
        Ok(ConnGuard(state))
    }

    /// Runs one write of the hot path inside the open batch.
    fn batched(
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

    /// Marks runs of this connector still 'running' as crashed (the caller
    /// holds the connector's lock, so none of them is alive) and says
    /// whether there were any. [`Ledger::recovery`] then tells where to
    /// look for copies written but not recorded.
    pub fn mark_crashed_runs(&self, connector: &str) -> Result<bool, LedgerError> {
        let n = self.write_conn()?.execute(
            "UPDATE runs SET outcome = 'crashed', finished_at = ?2 \
             WHERE connector = ?1 AND outcome = 'running'",
            params![connector, now()],
        )?;
        Ok(n > 0)
    }

    /// Where a copy the ledger does not know may be, for a run over
    /// `[since, until)`: a writing run of this connector crashed, and no
    /// run since has finished a pass over that run's whole window. A dry
    /// run or a run that failed part-way settles nothing.
    pub fn recovery(
        &self,
        connector: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Recovery, LedgerError> {
        let (unsettled, overlapping) = self.conn().query_row(
            "SELECT count(*) > 0, coalesce(max(coalesce( \
             julianday(c.since) < julianday(?2) AND julianday(c.until) > julianday(?3), 1)), 0) \
             FROM runs c WHERE c.connector = ?1 AND c.dry_run = 0 AND c.outcome = 'crashed' \
             AND NOT EXISTS (SELECT 1 FROM runs r \
             WHERE r.connector = ?1 AND r.id > c.id AND r.dry_run = 0 \
             AND r.outcome IN ('ok', 'incomplete') \
             AND julianday(r.since) <= julianday(c.since) \
             AND julianday(r.until) >= julianday(c.until))",
            params![connector, time(until), time(since)],
            |r| Ok((r.get::<_, bool>(0)?, r.get::<_, bool>(1)?)),
        )?;
        Ok(Recovery {
            retries: unsettled,
            listed: overlapping,
        })
    }

    /// Records a run as running, durably (`synchronous=FULL` for this one
    /// commit): if the process or the machine dies, the next run must see
    /// it to look for copies written but not recorded.
    pub fn begin_run(
        &self,
        connector: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<RunId, LedgerError> {
        let conn = self.write_conn()?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let inserted = conn.execute(
            "INSERT INTO runs (connector, started_at, since, until, dry_run) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![connector, now(), time(since), time(until), dry_run],
        );
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        inserted?;
        Ok(RunId(conn.last_insert_rowid()))
    }

    /// Records how a run ended. A run some of whose records could not be
    /// saved is recorded as crashed, so the next run looks in the mailboxes
    /// for the copies it wrote rather than writing them again.
    pub fn finish_run(
        &self,
        run: RunId,
        figures: &RunFigures,
        outcome: RunOutcome,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        let conn = self.write_conn()?;
        let lost =
            "the ledger could not save some records of this run; the next run looks for its copies";
        let (outcome, error) = if conn.0.lost_records {
            (RunOutcome::Crashed, Some(error.unwrap_or(lost)))
        } else {
            (outcome, error)
        };
        conn.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, listed = ?4, written = ?5, \
             already_archived = ?6, unmapped = ?7, failed = ?8, bytes_written = ?9, error = ?10 \
             WHERE id = ?1",
            params![
                run.0,
                now(),
                outcome.as_str(),
                figures.listed as i64,
                figures.written as i64,
                figures.already_archived as i64,
                figures.unmapped as i64,
                figures.failed as i64,
                figures.bytes_written as i64,
                error
            ],
        )?;
        Ok(())
    }

    /// Keeps the newest `keep` runs of a connector and deletes the rest.
    pub fn prune_runs(&self, connector: &str, keep: u32) -> Result<usize, LedgerError> {
        Ok(self.write_conn()?.execute(
            "DELETE FROM runs WHERE connector = ?1 AND id NOT IN \
             (SELECT id FROM runs WHERE connector = ?1 ORDER BY id DESC LIMIT ?2)",
            params![connector, keep],
        )?)
    }

    /// The newest runs first.
    pub fn last_runs(&self, connector: &str, limit: u32) -> Result<Vec<RunRecord>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, connector, started_at, finished_at, since, until, dry_run, outcome, \
             listed, written, already_archived, unmapped, failed, bytes_written, error \
             FROM runs WHERE connector = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![connector, limit], |r| {
            Ok(RunRecord {
                id: r.get(0)?,
                connector: r.get(1)?,
                started_at: r.get(2)?,
                finished_at: r.get(3)?,
                since: r.get(4)?,
                until: r.get(5)?,
                dry_run: r.get(6)?,
                outcome: RunOutcome::parse(&r.get::<_, String>(7)?),
                figures: RunFigures {
                    listed: r.get::<_, i64>(8)? as u64,
                    written: r.get::<_, i64>(9)? as u64,
                    already_archived: r.get::<_, i64>(10)? as u64,
                    unmapped: r.get::<_, i64>(11)? as u64,
                    failed: r.get::<_, i64>(12)? as u64,
                    bytes_written: r.get::<_, i64>(13)? as u64,
                },
                error: r.get(14)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the last run that finished without failing did so.
    pub fn last_success(&self, connector: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT max(finished_at) FROM runs WHERE connector = ?1 \
                 AND outcome IN ('ok', 'incomplete') AND dry_run = 0",
                params![connector],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Starts reading, in the background, the index pages that looking up
    /// these items will need (see `ledger/prefetch.rs`). Returns how many
    /// threads started: none for a ledger small enough to read as needed.
    pub fn prefetch(&self, connector: &str, items: &[Item]) -> usize {
        self.prefetcher.start(connector, items)
    }

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
        if conn.0.lost_records {
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

    pub fn checkpoint(&self, connector: &str) -> Result<Option<DateTime<Utc>>, LedgerError> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT archived_until FROM checkpoints WHERE connector = ?1",
                params![connector],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// Moves the checkpoint forward (never back).
    pub fn advance_checkpoint(
        &self,
        connector: &str,
        until: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        if self.checkpoint(connector)?.is_some_and(|c| c >= until) {
            return Ok(());
        }
        self.write_conn()?.execute(
            "INSERT INTO checkpoints (connector, archived_until) VALUES (?1, ?2) \
             ON CONFLICT (connector) DO UPDATE SET archived_until = excluded.archived_until",
            params![connector, time(until)],
        )?;
        Ok(())
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

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
    fn commit(&mut self) -> Result<(), LedgerError> {
        if self.batch.is_none() {
            return Ok(());
        }
        if let Err(e) = self.run_before_commit() {
            self.batch = None;
            let _ = self.conn.execute_batch("ROLLBACK");
            self.lost_records = true;
            return Err(e);
        }
        self.batch = None;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.lost_records = true;
            return Err(e.into());
        }
        Ok(())
    }

    fn run_before_commit(&self) -> Result<(), LedgerError> {
        match &self.before_commit {
            Some(hook) => hook().map_err(LedgerError::NotDurable),
            None => Ok(()),
        }
    }

    /// After a failed statement SQLite keeps the transaction, or for some
    /// errors (disk full, I/O) rolls all of it back, losing the batch.
    fn after_failed_write(&mut self) {
        if self.batch.is_some() && self.conn.is_autocommit() {
            self.batch = None;
            self.lost_records = true;
        }
    }
}

/// The connection, with any batch committed; see [`Ledger::conn`].
struct ConnGuard<'a>(std::sync::MutexGuard<'a, State>);

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

/// Switches the file to WAL. SQLite does not wait (no busy handler) when
/// another connection holds the file while it switches, which happens when
/// two processes open a new ledger at once, so a busy file is retried.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
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
    use crate::telemessage::ItemType;
    use chrono::TimeZone;

    /// A chat item archived at 2026-11-22T08:15:03Z.
    pub(super) fn item(id: &str) -> Item {
        serde_json::from_value(serde_json::json!({
            "id": id, "platform": "wechat", "type": "chat",
            "conversation": {"id": "c", "kind": "direct", "title": ""},
            "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T08:15:03Z",
            "sender": {"name": "A", "mobile": "+8613800138000", "email": null, "wechat_id": "a"},
            "participants": [], "size": 10, "sha256": "00", "attachments": []
        }))
        .unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A writing run of connector `c` over 2026-11-22.
    fn begin_day_run(ledger: &Ledger) -> RunId {
        ledger
            .begin_run(
                "c",
                t("2026-11-22T00:00:00Z"),
                t("2026-11-23T00:00:00Z"),
                false,
            )
            .unwrap()
    }

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

    /// Copies and bytes per mailbox, and items per state: what `status` shows.
    pub(super) type Shown = (Vec<(String, u64, u64)>, Vec<(String, u64)>);

    /// What `status` shows, counted from the rows themselves.
    fn recount(path: &Path) -> Shown {
        let db = Connection::open(path).unwrap();
        let copies = db
            .prepare(
                "SELECT mailbox, count(*), sum(bytes) FROM copies WHERE connector = 'c' \
                 GROUP BY mailbox ORDER BY mailbox",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let items = db
            .prepare(
                "SELECT state, count(*) FROM items WHERE connector = 'c' \
                 GROUP BY state ORDER BY state",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (copies, items)
    }

    /// The steps of SQLite's plan for `sql`, bound to the first of `args`
    /// that it takes.
    pub(super) fn query_plan(
        conn: &Connection,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let args = &args[..stmt.parameter_count()];
        stmt.query_map(args, |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Asserts that one step of SQLite's plan for `sql` contains `step`.
    #[track_caller]
    fn assert_plan_step(conn: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql], step: &str) {
        let plan = query_plan(conn, sql, args);
        assert!(plan.iter().any(|s| s.contains(step)), "{plan:?}");
    }

    pub(super) fn shown(ledger: &Ledger) -> Shown {
        let copies = ledger.mailbox_totals("c").unwrap();
        let copies = copies.into_iter().map(|t| (t.key, t.copies, t.bytes));
        (copies.collect(), ledger.item_counts("c").unwrap())
    }

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

    #[test]
    fn checkpoint_never_moves_back_and_crashed_runs_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        ledger
            .advance_checkpoint("c", t("2026-11-23T00:00:00Z"))
            .unwrap();
        ledger
            .advance_checkpoint("c", t("2026-11-22T00:00:00Z"))
            .unwrap();
        assert_eq!(
            ledger.checkpoint("c").unwrap(),
            Some(t("2026-11-23T00:00:00Z"))
        );
        begin_day_run(&ledger);
        assert!(ledger.mark_crashed_runs("c").unwrap());
        assert!(!ledger.mark_crashed_runs("c").unwrap());
        assert_eq!(
            ledger.last_runs("c", 5).unwrap()[0].outcome,
            RunOutcome::Crashed
        );
    }

    #[test]
    fn recovery_lasts_until_a_run_finishes_the_crashed_window() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let (since, until) = (t("2026-11-22T00:00:00Z"), t("2026-11-23T00:00:00Z"));
        let run = |since, until, dry_run, outcome: Option<RunOutcome>| {
            ledger.mark_crashed_runs("c").unwrap();
            let id = ledger.begin_run("c", since, until, dry_run).unwrap();
            if let Some(outcome) = outcome {
                let figures = RunFigures::default();
                ledger.finish_run(id, &figures, outcome, None).unwrap();
            }
        };
        let both = Recovery {
            retries: true,
            listed: true,
        };
        run(since, until, false, Some(RunOutcome::Ok));
        assert_eq!(
            ledger.recovery("c", since, until).unwrap(),
            Recovery::default()
        );
        run(since, until, false, None);
        ledger.mark_crashed_runs("c").unwrap();
        assert_eq!(ledger.recovery("c", since, until).unwrap(), both);
        run(since, until, true, Some(RunOutcome::Ok));
        run(since, until, false, Some(RunOutcome::Failed));
        let later = t("2026-11-22T06:00:00.5Z");
        run(
            later,
            t("2026-11-23T06:00:00Z"),
            false,
            Some(RunOutcome::Ok),
        );
        assert_eq!(ledger.recovery("c", since, until).unwrap(), both);
        let next_day = (until, t("2026-11-24T00:00:00Z"));
        assert_eq!(
            ledger.recovery("c", next_day.0, next_day.1).unwrap(),
            Recovery {
                retries: true,
                listed: false
            }
        );
        assert_eq!(
            ledger.recovery("other", since, until).unwrap(),
            Recovery::default()
        );
        let cover = t("2026-11-23T00:00:00.25Z");
        run(since, cover, false, Some(RunOutcome::Incomplete));
        assert_eq!(
            ledger.recovery("c", since, until).unwrap(),
            Recovery::default()
        );
    }

    #[test]
    fn run_history_is_pruned_to_the_newest_runs_of_that_connector() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let (since, until) = (t("2026-11-22T00:00:00Z"), t("2026-11-23T00:00:00Z"));
        for _ in 0..12 {
            ledger.begin_run("c", since, until, false).unwrap();
        }
        ledger.begin_run("other", since, until, false).unwrap();
        assert_eq!(ledger.prune_runs("c", 10).unwrap(), 2);
        let kept = ledger.last_runs("c", 100).unwrap();
        assert_eq!(kept.len(), 10);
        assert_eq!(kept.last().unwrap().id, 3, "the oldest runs go first");
        assert_eq!(ledger.last_runs("other", 100).unwrap().len(), 1);
    }

    fn recorded_elsewhere(path: &Path) -> i64 {
        let other = Connection::open(path).unwrap();
        other
            .query_row("SELECT count(*) FROM copies", [], |r| r.get(0))
            .unwrap()
    }

    fn record_copies(ledger: &Ledger, run: RunId, n: usize) {
        let mailbox = Mailbox::parse("li.wei@contoso.com").unwrap();
        for i in 0..n {
            let written = Written {
                location: format!("x/cur/{i}"),
                bytes: 10,
            };
            ledger
                .record_copy("c", &item(&format!("itm_{i}")), &mailbox, &written, run)
                .unwrap();
        }
    }

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

    /// Two processes syncing two connectors of one home open one ledger
    /// at the same moment, the first time included.
    #[test]
    fn ledgers_opened_at_once_by_several_processes_all_open() {
        for round in 0..50 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ledger.sqlite");
            let barrier = std::sync::Barrier::new(4);
            std::thread::scope(|s| {
                let opens: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            Ledger::open(&path).map(drop)
                        })
                    })
                    .collect();
                for open in opens {
                    if let Err(e) = open.join().unwrap() {
                        panic!("round {round}: {e:?}");
                    }
                }
            });
        }
    }
}
