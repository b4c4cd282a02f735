//! Runs: each sync's window, outcome and figures; crashed runs and where
//! their unrecorded copies may be; and each connector's checkpoint.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Ledger, LedgerError, now, time};

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
    pub(super) fn as_str(self) -> &'static str {
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

impl Ledger {
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

    /// Gives a run just begun an id above `floor` (the highest run id the
    /// connector's manifests name) if it has not one already.
    pub fn run_id_above(&self, run: RunId, floor: i64) -> Result<RunId, LedgerError> {
        if run.0 > floor {
            return Ok(run);
        }
        let conn = self.write_conn()?;
        let top: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM runs", [], |r| r.get(0))?;
        let id = top.max(floor) + 1;
        conn.execute("UPDATE runs SET id = ?1 WHERE id = ?2", params![id, run.0])?;
        Ok(RunId(id))
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
        let (outcome, error) = if conn.lost_records() {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{begin_day_run, t};

    #[test]
    fn a_new_ledger_numbers_its_runs_after_those_the_manifests_name() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let first = begin_day_run(&ledger);
        assert_eq!(ledger.run_id_above(first, 5).unwrap(), RunId(6));
        let next = begin_day_run(&ledger);
        assert_eq!(next, RunId(7));
        assert_eq!(ledger.run_id_above(next, 3).unwrap(), RunId(7));
        let ids: Vec<i64> = ledger
            .last_runs("c", 5)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![7, 6]);
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
}
