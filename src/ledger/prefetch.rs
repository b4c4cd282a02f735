//! Reading ahead the index pages a run's lookups will need.
//!
//! Item ids are random, so each new item's lookups land on index pages no
//! other item touched. In a ledger of millions of copies those pages are
//! rarely in the operating system's cache, and the run reads them one at a
//! time as each item comes up. Looking up a listed page of items on a few
//! threads of their own, while the first items are being written, reads
//! them in parallel and ahead of need.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use super::copies::COPIES_OF_QUERY;
use super::items::ITEM_STATE_QUERY;
use crate::telemessage::Item;
use crate::types::ItemId;

/// Below this size the ledger's pages are cheap to read as needed (and
/// likely cached): reading ahead would only cost CPU.
pub(super) const MIN_LEDGER_BYTES: u64 = 256 << 20;
/// Threads reading ahead for one listed page.
const THREADS: usize = 4;

pub(super) struct Prefetcher {
    path: PathBuf,
    min_bytes: u64,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Prefetcher {
    pub(super) fn new(path: PathBuf, min_bytes: u64) -> Prefetcher {
        Prefetcher {
            path,
            min_bytes,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Starts looking up `items` of `connector` in the background, split
    /// between a few threads, unless the ledger is small. Returns how many
    /// threads started. Best effort: a failure only loses the head start.
    pub(super) fn start(&self, connector: &str, items: &[Item]) -> usize {
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if items.is_empty() || size < self.min_bytes {
            return 0;
        }
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.retain(|t| !t.is_finished());
        let chunk = items.len().div_ceil(THREADS);
        let mut started = 0;
        for part in items.chunks(chunk) {
            let (path, stop) = (self.path.clone(), self.stop.clone());
            let connector = connector.to_owned();
            let part: Vec<ItemId> = part.iter().map(|item| item.id.clone()).collect();
            let thread = std::thread::Builder::new()
                .name("ledger-prefetch".into())
                .spawn(move || {
                    if let Err(e) = look_up(&path, &connector, &part, &stop) {
                        tracing::debug!("reading the ledger ahead stopped: {e}");
                    }
                });
            match thread {
                Ok(t) => {
                    threads.push(t);
                    started += 1;
                }
                Err(e) => tracing::debug!("cannot start reading the ledger ahead: {e}"),
            }
        }
        started
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads = self.threads.get_mut().unwrap_or_else(|p| p.into_inner());
        for thread in threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The lookups a run makes for each item, on a read-only connection of
/// its own; their answers are dropped (the pages are what was wanted).
fn look_up(
    path: &std::path::Path,
    connector: &str,
    ids: &[ItemId],
    stop: &AtomicBool,
) -> rusqlite::Result<()> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    let mut state = conn.prepare(ITEM_STATE_QUERY)?;
    let mut copies = conn.prepare(COPIES_OF_QUERY)?;
    for id in ids {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        state.query([connector, id.as_str()])?.next()?;
        let mut rows = copies.query([connector, id.as_str()])?;
        while rows.next()?.is_some() {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::item;
    use crate::ledger::{ItemState, Ledger, RunFigures, RunOutcome};
    use crate::mailbox::Written;
    use crate::types::Mailbox;

    #[test]
    fn a_small_ledger_is_not_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
        assert_eq!(ledger.prefetch("c", &[item("itm_A")]), 0);
    }

    /// Reading ahead runs beside a run's writes: nothing it does may make
    /// a write fail or wait, or keep a recorded copy out of the file.
    #[test]
    fn reading_ahead_while_a_run_writes_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let at = item("itm_A").archived_at;
        let run = ledger.begin_run("c", at, at, false).unwrap();
        let items: Vec<_> = (0..2000).map(|n| item(&format!("itm_{n:06}"))).collect();
        let prefetcher = Prefetcher::new(path.clone(), 0);

        assert_eq!(prefetcher.start("c", &items), THREADS);
        let mailbox = Mailbox::parse("li.wei@contoso.com").unwrap();
        for it in &items {
            let written = Written {
                location: format!("x/cur/{}", it.id),
                bytes: 10,
            };
            ledger
                .record_copy("c", it, &mailbox, &written, run)
                .unwrap();
            ledger
                .record_item("c", it, ItemState::Archived, None, run)
                .unwrap();
        }
        ledger
            .finish_run(run, &RunFigures::default(), RunOutcome::Ok, None)
            .unwrap();
        drop(prefetcher);
        drop(ledger);

        let ledger = Ledger::open(&path).unwrap();
        let totals = ledger.mailbox_totals("c").unwrap();
        assert_eq!(totals[0].copies, 2000);
        for it in &items {
            assert!(
                !ledger.copies_of("c", &it.id).unwrap().is_empty(),
                "{}",
                it.id
            );
        }
    }
}
