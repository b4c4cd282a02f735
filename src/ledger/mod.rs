//! The ledger: a SQLite file that remembers which (item, mailbox) copies
//! were written where, which items are unmapped or failed and why, every
//! run's figures, and each connector's checkpoint. It is what makes a
//! re-run write nothing and a crashed run resumable.
//!
//! Where each concept lives: `runs` (runs, crash recovery, checkpoints),
//! `items` (item states), `copies` (written copies), `retries` (items to
//! try again), `totals` (what `status` reads), `folders` (cached folder
//! ids), `identities` (which id each forwarded e-mail got), `marks` (what the ledger last knew of each archive folder,
//! and copies adopted from another connector), `batch` (batched commits), `schema` (tables and upgrades),
//! `prefetch` (warming a large ledger's indexes).

mod batch;
mod copies;
mod folders;
mod identities;
mod items;
mod marks;
mod prefetch;
mod retries;
mod runs;
mod schema;
#[cfg(test)]
mod testing;
mod totals;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;

use crate::telemessage::Item;
use batch::Shared;
use prefetch::Prefetcher;

pub use batch::{BeforeCommit, Committer, LossMark};
pub use identities::EmailIdentity;
pub use items::ItemState;
pub use marks::ForeignCopies;
pub use retries::UnmappedRetry;
pub use runs::{Recovery, RunFigures, RunId, RunOutcome, RunRecord};
pub use totals::Total;

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

/// How long a call waits for another process's write to the ledger.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening waits for another process upgrading the ledger's
/// tables (minutes at millions of copies): a cron run waits rather than fail.
const UPGRADE_WAIT: Duration = Duration::from_secs(15 * 60);
/// WAL pages between automatic checkpoints (SQLite's default is 1000).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 4000;
/// Page cache of the connection, in KiB (SQLite's default is 2000).
const CACHE_KIB: u32 = 8192;

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

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
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
        let shared = Shared::start(conn);
        let prefetcher = Prefetcher::new(path.to_path_buf(), prefetch::MIN_LEDGER_BYTES);
        Ok(Ledger { shared, prefetcher })
    }

    /// Starts reading, in the background, the index pages that looking up
    /// these items will need (see `ledger/prefetch.rs`). Returns how many
    /// threads started: none for a ledger small enough to read as needed.
    pub fn prefetch(&self, connector: &str, items: &[Item]) -> usize {
        self.prefetcher.start(connector, items)
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

#[cfg(test)]
mod tests {
    use super::*;

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
