//! The ledger: a SQLite file that remembers which (item, mailbox) copies
//! were written where, which items are unmapped or failed and why, every
//! run's figures, and each connector's checkpoint. It is what makes a
//! re-run write nothing and a crashed run resumable.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::mailbox::Written;
use crate::telemessage::Item;
use crate::types::{ItemId, Mailbox};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger {path} cannot be opened: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the ledger failed: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the ledger holds an item it cannot read back ({item}): {message}")]
    Corrupt { item: String, message: String },
}

/// The state of an item in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Every copy it needs is written.
    Archived,
    /// No participant maps to a mailbox; retried after the mapping changes.
    Unmapped,
    /// Some copy could not be written; retried by the next run.
    Failed,
    /// Permanently unavailable (purged from TeleMessage).
    Gone,
}

impl ItemState {
    fn as_str(self) -> &'static str {
        match self {
            ItemState::Archived => "archived",
            ItemState::Unmapped => "unmapped",
            ItemState::Failed => "failed",
            ItemState::Gone => "gone",
        }
    }
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

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    connector TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    since TEXT NOT NULL,
    until TEXT NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL DEFAULT 'running',
    listed INTEGER NOT NULL DEFAULT 0,
    written INTEGER NOT NULL DEFAULT 0,
    already_archived INTEGER NOT NULL DEFAULT 0,
    unmapped INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    bytes_written INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_connector ON runs (connector, id);
CREATE TABLE IF NOT EXISTS items (
    connector TEXT NOT NULL,
    item_id TEXT NOT NULL,
    archived_at TEXT NOT NULL,
    item_type TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    meta TEXT NOT NULL,
    last_run INTEGER NOT NULL,
    PRIMARY KEY (connector, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_to_retry ON items (connector, state)
    WHERE state IN ('unmapped', 'failed');
CREATE TABLE IF NOT EXISTS copies (
    connector TEXT NOT NULL,
    item_id TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    item_type TEXT NOT NULL,
    location TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    written_at TEXT NOT NULL,
    PRIMARY KEY (connector, item_id, mailbox)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    connector TEXT PRIMARY KEY,
    archived_until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS folders (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    folder_id TEXT NOT NULL,
    PRIMARY KEY (connector, mailbox)
);
"#;

/// The ledger file. Calls are short and serialised through one connection.
pub struct Ledger {
    conn: Mutex<Connection>,
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
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(Ledger {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks runs of this connector still 'running' as crashed (the caller
    /// holds the connector's lock, so none of them is alive) and says
    /// whether there were any. [`Ledger::recovery`] then tells where to
    /// look for copies written but not recorded.
    pub fn mark_crashed_runs(&self, connector: &str) -> Result<bool, LedgerError> {
        let n = self.conn().execute(
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
        let conn = self.conn();
        conn.pragma_update(None, "synchronous", "FULL")?;
        let inserted = conn.execute(
            "INSERT INTO runs (connector, started_at, since, until, dry_run) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![connector, now(), time(since), time(until), dry_run],
        );
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        inserted?;
        Ok(RunId(conn.last_insert_rowid()))
    }

    pub fn finish_run(
        &self,
        run: RunId,
        figures: &RunFigures,
        outcome: RunOutcome,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.conn().execute(
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
        Ok(self.conn().execute(
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

    /// The mailboxes (lowercase keys) that already hold a copy of the item.
    pub fn copies_of(
        &self,
        connector: &str,
        item: &ItemId,
    ) -> Result<HashSet<String>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT mailbox FROM copies WHERE connector = ?1 AND item_id = ?2")?;
        let rows = stmt.query_map(params![connector, item.as_str()], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a copy that is already durable in its mailbox.
    pub fn record_copy(
        &self,
        connector: &str,
        item: &Item,
        mailbox: &Mailbox,
        written: &Written,
        run: RunId,
    ) -> Result<(), LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "INSERT OR REPLACE INTO copies \
             (connector, item_id, mailbox, item_type, location, bytes, run_id, written_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        stmt.execute(params![
            connector,
            item.id.as_str(),
            mailbox.key(),
            item.kind.as_str(),
            written.location,
            written.bytes as i64,
            run.0,
            now()
        ])?;
        Ok(())
    }

    /// Records where an item stands, with its listing metadata so a later
    /// run can retry it without listing it again.
    pub fn record_item(
        &self,
        connector: &str,
        item: &Item,
        state: ItemState,
        reason: Option<&str>,
        run: RunId,
    ) -> Result<(), LedgerError> {
        let meta = serde_json::to_string(item).map_err(|e| LedgerError::Corrupt {
            item: item.id.to_string(),
            message: e.to_string(),
        })?;
        let conn = self.conn();
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
    }

    /// The state of one item, if the ledger knows it.
    pub fn item_state(
        &self,
        connector: &str,
        item: &ItemId,
    ) -> Result<Option<(String, Option<String>)>, LedgerError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT state, reason FROM items WHERE connector = ?1 AND item_id = ?2",
                params![connector, item.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Items an earlier run left unmapped or failed, to try again.
    pub fn items_to_retry(&self, connector: &str) -> Result<Vec<Item>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT item_id, meta FROM items WHERE connector = ?1 AND state IN ('unmapped', 'failed') \
             ORDER BY archived_at, item_id",
        )?;
        let rows = stmt.query_map(params![connector], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut items = Vec::new();
        for row in rows {
            let (id, meta) = row?;
            let item = serde_json::from_str(&meta).map_err(|e| LedgerError::Corrupt {
                item: id,
                message: e.to_string(),
            })?;
            items.push(item);
        }
        Ok(items)
    }

    /// Counts of items per state.
    pub fn item_counts(&self, connector: &str) -> Result<Vec<(String, u64)>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT state, count(*) FROM items WHERE connector = ?1 GROUP BY state ORDER BY state",
        )?;
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
        let mut stmt = conn.prepare_cached(
            "SELECT item_id, state, reason FROM items WHERE connector = ?1 \
             AND state IN ('unmapped', 'failed', 'gone') ORDER BY archived_at DESC LIMIT ?2",
        )?;
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
        self.conn().execute(
            "INSERT INTO checkpoints (connector, archived_until) VALUES (?1, ?2) \
             ON CONFLICT (connector) DO UPDATE SET archived_until = excluded.archived_until",
            params![connector, time(until)],
        )?;
        Ok(())
    }

    /// Copies and bytes per mailbox.
    pub fn mailbox_totals(&self, connector: &str) -> Result<Vec<Total>, LedgerError> {
        self.totals(
            "SELECT mailbox, count(*), sum(bytes) FROM copies WHERE connector = ?1 \
             GROUP BY mailbox ORDER BY mailbox",
            connector,
        )
    }

    /// Copies and bytes per item type.
    pub fn type_totals(&self, connector: &str) -> Result<Vec<Total>, LedgerError> {
        self.totals(
            "SELECT item_type, count(*), sum(bytes) FROM copies WHERE connector = ?1 \
             GROUP BY item_type ORDER BY item_type",
            connector,
        )
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
        self.conn().execute(
            "INSERT OR REPLACE INTO folders (connector, mailbox, folder_id) VALUES (?1, ?2, ?3)",
            params![connector, mailbox.key(), folder_id],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> Item {
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

    #[test]
    fn copies_survive_reopening_and_are_keyed_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let run = ledger
            .begin_run(
                "c",
                t("2026-11-22T00:00:00Z"),
                t("2026-11-23T00:00:00Z"),
                false,
            )
            .unwrap();
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

    #[test]
    fn failed_and_unmapped_items_come_back_for_retry_until_archived() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = ledger
            .begin_run(
                "c",
                t("2026-11-22T00:00:00Z"),
                t("2026-11-23T00:00:00Z"),
                false,
            )
            .unwrap();
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
        ledger
            .begin_run(
                "c",
                t("2026-11-22T00:00:00Z"),
                t("2026-11-23T00:00:00Z"),
                false,
            )
            .unwrap();
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
}
