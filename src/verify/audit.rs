//! The manifests replayed into a scratch SQLite database (a temporary file
//! SQLite removes on close, so memory stays bounded at millions of copies)
//! with the ledger attached read-only, and the ledger compared row by row
//! with what the manifests say it should hold. The last line about a copy
//! or item wins, as the ledger's last write does.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::report::{Finding, FindingKind, VerifyReport};
use crate::custody::{Line, manifest_name};

const TABLES: &str = "
CREATE TABLE m_manifests (seq INTEGER PRIMARY KEY, run_id INTEGER, outcome TEXT, counts TEXT);
CREATE TABLE m_copies (id INTEGER PRIMARY KEY, item TEXT NOT NULL, mailbox TEXT NOT NULL,
    location TEXT NOT NULL, bytes INTEGER NOT NULL, sha256 TEXT, seq INTEGER NOT NULL,
    UNIQUE (item, mailbox));
CREATE TABLE m_items (item TEXT PRIMARY KEY, state TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
";

/// A copy as the manifests recorded it, to read back.
#[derive(Debug, Clone)]
pub struct ExpectedCopy {
    pub id: i64,
    pub item: String,
    pub mailbox: String,
    pub location: String,
    pub bytes: u64,
    pub sha256: Option<String>,
}

/// Which items' copies a check covers: archived in `[since, until)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Scope {
    fn bounds(&self) -> (Option<String>, Option<String>) {
        let t = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        (self.since.map(t), self.until.map(t))
    }
}

pub struct Audit {
    conn: Connection,
    connector: String,
    /// The run of the first manifest: older ledger rows predate the chain.
    first_run: Option<i64>,
    baseline: Option<u64>,
}

/// A path as an SQLite URI file name.
fn uri(path: &Path) -> String {
    let mut out = String::from("file:");
    for c in path.display().to_string().chars() {
        match c {
            '?' | '#' | '%' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("?mode=ro");
    out
}

impl Audit {
    /// A scratch database with the ledger at `ledger` attached read-only.
    pub fn open(ledger: &Path, connector: &str) -> rusqlite::Result<Audit> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags("", flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute("ATTACH DATABASE ?1 AS l", [uri(ledger)])?;
        conn.execute_batch(TABLES)?;
        conn.execute_batch("BEGIN")?;
        Ok(Audit {
            conn,
            connector: connector.to_owned(),
            first_run: None,
            baseline: None,
        })
    }

    /// Replays one manifest line.
    pub fn add(&mut self, seq: u64, line: Line) -> rusqlite::Result<()> {
        let seq = seq as i64;
        match line {
            Line::Begin(b) => {
                if self.first_run.is_none() {
                    self.first_run = b.run_id;
                }
                if b.seq == 1 {
                    self.baseline = b.baseline_copies;
                }
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO m_manifests (seq, run_id) VALUES (?1, ?2)",
                    )?
                    .execute(params![seq, b.run_id])?;
            }
            Line::Copy(c) => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO m_copies (item, mailbox, location, bytes, sha256, seq) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (item, mailbox) DO UPDATE SET \
                         location = excluded.location, bytes = excluded.bytes, \
                         sha256 = excluded.sha256, seq = excluded.seq",
                    )?
                    .execute(params![
                        c.item,
                        c.mailbox,
                        c.location,
                        c.bytes as i64,
                        c.sha256,
                        seq
                    ])?;
            }
            Line::Item(i) => {
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO m_items (item, state, seq) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![i.item, i.state, seq])?;
            }
            Line::End(e) => {
                self.conn
                    .prepare_cached(
                        "UPDATE m_manifests SET outcome = ?2, counts = ?3 WHERE seq = ?1",
                    )?
                    .execute(params![seq, e.outcome, e.counts.to_string()])?;
            }
        }
        Ok(())
    }

    /// Ends the replay.
    pub fn loaded(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("COMMIT")
    }

    /// Compares the ledger with the manifests; adds a finding per row that
    /// differs and fills in the figures.
    pub fn check_ledger(&self, report: &mut VerifyReport) -> rusqlite::Result<()> {
        let (copies, items, runs) = self.conn.query_row(
            "SELECT (SELECT count(*) FROM l.copies c JOIN l.items i ON i.id = c.item_ref \
             WHERE i.connector = ?1), (SELECT count(*) FROM l.items WHERE connector = ?1), \
             (SELECT count(*) FROM l.runs WHERE connector = ?1)",
            [&self.connector],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?;
        report.ledger.copies = copies as u64;
        report.ledger.items = items as u64;
        report.ledger.runs = runs as u64;
        let Some(first_run) = self.first_run else {
            report.chain.copies_before_chain = copies as u64;
            if copies > 0 {
                report.add(Finding::new(
                    FindingKind::ManifestMissing,
                    format!(
                        "there are no manifests, but the ledger records {copies} copies: they were deleted, \
                         or every run so far was made by a version that kept none (the next sync starts the chain)"
                    ),
                ));
            }
            return Ok(());
        };
        self.check_copies(first_run, report)?;
        self.check_deleted_copies(report)?;
        self.check_items(first_run, report)?;
        self.check_runs(first_run, report)
    }

    /// Ledger copy rows the manifests do not record as they are.
    fn check_copies(&self, first_run: i64, report: &mut VerifyReport) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT i.item_id, c.mailbox, c.location, c.bytes, c.run_id, \
             m.item IS NOT NULL, m.location, m.bytes, mm.run_id \
             FROM l.items i JOIN l.copies c ON c.item_ref = i.id \
             LEFT JOIN m_copies m ON m.item = i.item_id AND m.mailbox = c.mailbox \
             LEFT JOIN m_manifests mm ON mm.seq = m.seq \
             WHERE i.connector = ?1 AND (m.item IS NULL OR m.location IS NOT c.location \
             OR m.bytes IS NOT c.bytes OR mm.run_id IS NOT c.run_id)",
        )?;
        let mut rows = stmt.query([&self.connector])?;
        let mut before_chain = 0u64;
        while let Some(r) = rows.next()? {
            let (item, mailbox): (String, String) = (r.get(0)?, r.get(1)?);
            let (location, bytes, run): (String, i64, i64) = (r.get(2)?, r.get(3)?, r.get(4)?);
            if !r.get::<_, bool>(5)? {
                if run < first_run {
                    before_chain += 1;
                    continue;
                }
                let detail = format!(
                    "the ledger records a copy at {location:?} (run {run}) that no manifest records: the row was added or edited"
                );
                report.add(
                    Finding::new(FindingKind::LedgerRowUnrecorded, detail)
                        .item(item)
                        .mailbox(mailbox),
                );
                continue;
            }
            let (m_location, m_bytes, m_run): (String, i64, Option<i64>) =
                (r.get(6)?, r.get(7)?, r.get(8)?);
            let detail = format!(
                "the ledger's copy row says location {location:?}, {bytes} bytes, run {run}; the manifest recorded {m_location:?}, {m_bytes} bytes, run {}",
                m_run.map_or("?".into(), |r| r.to_string())
            );
            report.add(
                Finding::new(FindingKind::LedgerRowEdited, detail)
                    .item(item)
                    .mailbox(mailbox),
            );
        }
        report.chain.copies_before_chain = before_chain;
        match self.baseline {
            Some(baseline) if before_chain > baseline => report.add(Finding::new(
                FindingKind::LedgerRowUnrecorded,
                format!(
                    "{before_chain} copy rows are dated before the chain began, which began with {baseline}: rows were added or back-dated"
                ),
            )),
            Some(baseline) if before_chain < baseline => report.add(Finding::new(
                FindingKind::LedgerRowDeleted,
                format!(
                    "{} of the {baseline} copy rows the ledger held when the chain began are gone",
                    baseline - before_chain
                ),
            )),
            _ => {}
        }
        Ok(())
    }

    /// Copies the manifests record that the ledger no longer has.
    fn check_deleted_copies(&self, report: &mut VerifyReport) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT m.item, m.mailbox, m.location, m.seq, mm.outcome FROM m_copies m \
             JOIN m_manifests mm ON mm.seq = m.seq WHERE NOT EXISTS (SELECT 1 FROM l.items i \
             JOIN l.copies c ON c.item_ref = i.id WHERE i.connector = ?1 \
             AND i.item_id = m.item AND c.mailbox = m.mailbox)",
        )?;
        let mut rows = stmt.query([&self.connector])?;
        while let Some(r) = rows.next()? {
            let (item, mailbox, location): (String, String, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?);
            let seq: i64 = r.get(3)?;
            if r.get::<_, Option<String>>(4)?.as_deref() == Some("crashed") {
                report.chain.unrecorded_after_crash += 1;
                continue;
            }
            let detail = format!(
                "manifest {} records a copy at {location:?} that the ledger no longer has: the row was deleted or edited",
                manifest_name(seq as u64)
            );
            report.add(
                Finding::new(FindingKind::LedgerRowDeleted, detail)
                    .item(item)
                    .mailbox(mailbox),
            );
        }
        Ok(())
    }

    /// Item states that differ from the last one a manifest recorded.
    fn check_items(&self, first_run: i64, report: &mut VerifyReport) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT i.item_id, i.state, m.state FROM l.items i \
             LEFT JOIN m_items m ON m.item = i.item_id WHERE i.connector = ?1 \
             AND ((m.item IS NULL AND i.state <> 'failed' AND i.last_run >= ?2) \
             OR m.state <> i.state) \
             UNION ALL SELECT m.item, NULL, m.state FROM m_items m WHERE NOT EXISTS \
             (SELECT 1 FROM l.items i WHERE i.connector = ?1 AND i.item_id = m.item)",
        )?;
        let mut rows = stmt.query(params![self.connector, first_run])?;
        while let Some(r) = rows.next()? {
            let item: String = r.get(0)?;
            let (ledger, manifest): (Option<String>, Option<String>) = (r.get(1)?, r.get(2)?);
            let finding = match (ledger, manifest) {
                (Some(l), Some(m)) => Finding::new(
                    FindingKind::LedgerRowEdited,
                    format!("the ledger says the item is {l}; the manifests recorded {m}"),
                ),
                (Some(l), None) => Finding::new(
                    FindingKind::LedgerRowUnrecorded,
                    format!("the ledger says the item is {l}, which no manifest records"),
                ),
                (None, m) => Finding::new(
                    FindingKind::LedgerRowDeleted,
                    format!(
                        "the manifests recorded the item as {}, but the ledger has no row for it",
                        m.unwrap_or_default()
                    ),
                ),
            };
            report.add(finding.item(item));
        }
        Ok(())
    }

    /// Run rows whose figures differ from their manifest's, and runs that
    /// wrote copies without a manifest.
    fn check_runs(&self, first_run: i64, report: &mut VerifyReport) -> rusqlite::Result<()> {
        const FIELDS: [&str; 6] = [
            "listed",
            "written",
            "already_archived",
            "unmapped",
            "failed",
            "bytes_written",
        ];
        let oldest_kept: Option<i64> = self.conn.query_row(
            "SELECT min(id) FROM l.runs WHERE connector = ?1",
            [&self.connector],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT mm.seq, mm.run_id, r.id, r.listed, r.written, r.already_archived, r.unmapped, \
             r.failed, r.bytes_written, mm.counts FROM m_manifests mm \
             LEFT JOIN l.runs r ON r.id = mm.run_id AND r.connector = ?1 \
             WHERE mm.run_id IS NOT NULL AND json_valid(mm.counts) AND json_type(mm.counts) = 'object'",
        )?;
        let mut rows = stmt.query([&self.connector])?;
        while let Some(r) = rows.next()? {
            let (seq, run): (i64, i64) = (r.get(0)?, r.get(1)?);
            let manifest = Some(manifest_name(seq as u64));
            if r.get::<_, Option<i64>>(2)?.is_none() {
                if oldest_kept.is_some_and(|o| run > o) {
                    report.add(Finding {
                        manifest,
                        ..Finding::new(
                            FindingKind::LedgerRowDeleted,
                            format!("the ledger has no row for run {run}"),
                        )
                    });
                }
                continue;
            }
            let counts: serde_json::Value =
                serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default();
            let mut differ = Vec::new();
            for (i, field) in FIELDS.iter().enumerate() {
                let ledger: i64 = r.get(3 + i)?;
                let recorded = counts.get(field).and_then(|v| v.as_i64());
                if recorded.is_some_and(|m| m != ledger) {
                    differ.push(format!(
                        "{field} {ledger} (manifest: {})",
                        recorded.unwrap_or(0)
                    ));
                }
            }
            if !differ.is_empty() {
                report.add(Finding {
                    manifest,
                    ..Finding::new(
                        FindingKind::LedgerRowEdited,
                        format!("the ledger's row of run {run} says {}", differ.join(", ")),
                    )
                });
            }
        }
        drop(rows);
        let mut stmt = self.conn.prepare(
            "SELECT r.id, r.written FROM l.runs r WHERE r.connector = ?1 AND r.dry_run = 0 \
             AND r.written > 0 AND r.id >= ?2 \
             AND NOT EXISTS (SELECT 1 FROM m_manifests mm WHERE mm.run_id = r.id)",
        )?;
        let mut rows = stmt.query(params![self.connector, first_run])?;
        while let Some(r) = rows.next()? {
            let (run, written): (i64, i64) = (r.get(0)?, r.get(1)?);
            report.add(Finding::new(
                FindingKind::RunWithoutManifest,
                format!("run {run} wrote {written} copies, but no manifest records it: its manifest was deleted"),
            ));
        }
        Ok(())
    }

    /// How many copies the integrity check covers.
    pub fn copies_in_scope(&self, scope: Scope) -> rusqlite::Result<u64> {
        let (since, until) = scope.bounds();
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM m_copies m WHERE {IN_SCOPE}"),
                params![self.connector, since, until],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
    }

    /// The next page of copies in scope, after copy `after`; or a random
    /// sample of `sample` of them (all at once: the caller bounds it).
    pub fn copies(
        &self,
        scope: Scope,
        after: i64,
        limit: u64,
        random: bool,
    ) -> rusqlite::Result<Vec<ExpectedCopy>> {
        let (since, until) = scope.bounds();
        let order = if random { "random()" } else { "m.id" };
        let sql = format!(
            "SELECT m.id, m.item, m.mailbox, m.location, m.bytes, m.sha256 FROM m_copies m \
             WHERE {IN_SCOPE} AND m.id > ?4 ORDER BY {order} LIMIT ?5"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![self.connector, since, until, after, limit as i64],
            |r| {
                Ok(ExpectedCopy {
                    id: r.get(0)?,
                    item: r.get(1)?,
                    mailbox: r.get(2)?,
                    location: r.get(3)?,
                    bytes: r.get::<_, i64>(4)? as u64,
                    sha256: r.get(5)?,
                })
            },
        )?;
        rows.collect()
    }

    /// The first manifest's run, if there is a chain.
    pub fn first_run(&self) -> Option<i64> {
        self.first_run
    }

    /// Whether the ledger knows an item, and its state.
    pub fn item_state(&self, item: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT state FROM l.items WHERE connector = ?1 AND item_id = ?2",
                params![self.connector, item],
                |r| r.get(0),
            )
            .optional()
    }
}

/// Copies of items archived in the scope's window (every copy without one).
const IN_SCOPE: &str = "(?2 IS NULL AND ?3 IS NULL OR EXISTS (SELECT 1 FROM l.items i \
     WHERE i.connector = ?1 AND i.item_id = m.item \
     AND (?2 IS NULL OR julianday(i.archived_at) >= julianday(?2)) \
     AND (?3 IS NULL OR julianday(i.archived_at) < julianday(?3))))";
