//! The `WHEN` syntax of `--since` and `--until`, and how a run's window is
//! chosen from the flags and the checkpoint.

use chrono::{DateTime, Duration, Utc};

/// How far before the checkpoint an incremental run starts again, so an
/// item stored with a slightly older `archived_at` is not missed. The
/// ledger makes the overlap free of duplicates.
pub const CHECKPOINT_OVERLAP: Duration = Duration::minutes(10);

/// The window of a first run with no `--since`.
pub const FIRST_RUN_WINDOW: Duration = Duration::hours(24);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error(
        "{value:?} is neither a duration back from now (24h, 90m, 7d) nor an RFC 3339 time (2026-11-22T08:00:00Z)"
    )]
    BadWhen { value: String },
    #[error("the window is empty: --since {since} is not before --until {until}")]
    Empty { since: String, until: String },
}

/// Reads a `WHEN`: a duration back from `now`, or an RFC 3339 time.
pub fn parse_when(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, WindowError> {
    let bad = || WindowError::BadWhen {
        value: value.to_owned(),
    };
    let trimmed = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(t.with_timezone(&Utc));
    }
    let std = humantime::parse_duration(trimmed).map_err(|_| bad())?;
    let back = Duration::from_std(std).map_err(|_| bad())?;
    now.checked_sub_signed(back).ok_or_else(bad)
}

/// The `[since, until)` window of a run.
pub fn choose(
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    checkpoint: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), WindowError> {
    let until = until.unwrap_or(now);
    let since = since.unwrap_or_else(|| match checkpoint {
        Some(c) => c - CHECKPOINT_OVERLAP,
        None => until - FIRST_RUN_WINDOW,
    });
    if since >= until {
        return Err(WindowError::Empty {
            since: since.to_rfc3339(),
            until: until.to_rfc3339(),
        });
    }
    Ok((since, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn durations_and_times() {
        let now = t("2026-11-24T12:00:00Z");
        assert_eq!(parse_when("24h", now).unwrap(), t("2026-11-23T12:00:00Z"));
        assert_eq!(parse_when("90m", now).unwrap(), t("2026-11-24T10:30:00Z"));
        assert_eq!(parse_when("7d", now).unwrap(), t("2026-11-17T12:00:00Z"));
        assert_eq!(
            parse_when("2026-11-22T08:15:03+08:00", now).unwrap(),
            t("2026-11-22T00:15:03Z")
        );
        assert!(parse_when("yesterday", now).is_err());
        assert!(parse_when("", now).is_err());
    }

    #[test]
    fn window_from_checkpoint_overlaps_and_first_run_takes_a_day() {
        let now = t("2026-11-24T12:00:00Z");
        let (since, until) = choose(None, None, None, now).unwrap();
        assert_eq!((since, until), (t("2026-11-23T12:00:00Z"), now));
        let (since, _) = choose(None, None, Some(t("2026-11-24T11:00:00Z")), now).unwrap();
        assert_eq!(since, t("2026-11-24T10:50:00Z"));
        assert!(choose(Some(now), Some(now), None, now).is_err());
    }
}
