//! The log file under the home: one line per run and per failure, for the
//! admin who looks only when cron mails. Rotated by size; never holds a
//! secret (it is written from the run report, which has none).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};

use crate::sync::SyncReport;
use crate::text::escape_control;

/// The log is rotated when it grows past this size.
pub const ROTATE_AT: u64 = 5 * 1024 * 1024;
/// Rotated files kept (`sync.log.1` .. `sync.log.5`).
pub const KEEP: u32 = 5;

/// Appends lines to `<home>/logs/sync.log`.
pub struct RunLog {
    path: PathBuf,
}

impl RunLog {
    pub fn new(log_dir: &Path) -> RunLog {
        RunLog {
            path: log_dir.join("sync.log"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One line for the run, then one per failure.
    pub fn record_run(&self, report: &SyncReport) -> std::io::Result<()> {
        let head = report
            .manifest_head
            .as_ref()
            .map(|h| format!(" manifest={} manifest_sha256={}", h.seq, h.sha256))
            .unwrap_or_default();
        let mut lines = vec![format!(
            "run connector={} since={} until={} dry_run={} listed={} written={} already_archived={} unmapped={} failed={} bytes_written={} duration_ms={}{head}",
            report.connector,
            report.since,
            report.until,
            report.dry_run,
            report.listed,
            report.written,
            report.already_archived,
            report.unmapped,
            report.failed,
            report.bytes_written,
            report.duration_ms
        )];
        for f in &report.failures {
            lines.push(format!(
                "failure connector={} item={} mailbox={} reason={}",
                report.connector,
                f.item_id,
                one_line(f.mailbox.as_deref().unwrap_or("-")),
                one_line(&f.reason)
            ));
        }
        self.append(&lines)
    }

    /// One line for a run that stopped with an error.
    pub fn record_error(&self, connector: &str, message: &str) -> std::io::Result<()> {
        self.append(&[format!(
            "error connector={connector} message={}",
            one_line(message)
        )])
    }

    fn append(&self, lines: &[String]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        self.rotate_if_large()?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let stamp = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut text = String::new();
        for line in lines {
            text.push_str(&format!("{stamp} {line}\n"));
        }
        file.write_all(text.as_bytes())
    }

    fn rotate_if_large(&self) -> std::io::Result<()> {
        let size = fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size < ROTATE_AT {
            return Ok(());
        }
        let numbered = |n: u32| self.path.with_extension(format!("log.{n}"));
        let _ = fs::remove_file(numbered(KEEP));
        for n in (1..KEEP).rev() {
            let _ = fs::rename(numbered(n), numbered(n + 1));
        }
        fs::rename(&self.path, numbered(1))
    }
}

/// The text on one line with every control character escaped: the log is
/// read with `less` and `tail` on a terminal, and a reason quotes servers.
fn one_line(s: &str) -> String {
    escape_control(&s.replace(['\r', '\n'], " ")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_size_limit_and_keeps_five() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::new(dir.path());
        for _ in 0..7 {
            fs::write(log.path(), vec![b'x'; ROTATE_AT as usize]).unwrap();
            log.record_error("c", "boom\nsecond line").unwrap();
        }
        let text = fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("message=boom second line"));
        assert!(dir.path().join("sync.log.5").exists());
        assert!(!dir.path().join("sync.log.6").exists());
    }
}
