//! Human output that stays readable for an organisation of 5,000
//! mailboxes: the rows worth reading first, one line for the rest, and
//! times to the second. `--json` keeps every row and full precision.

use chrono::{DateTime, Utc};
use wechat_archiver::text::escape_control;

/// Rows a table shows before it says how many more there are.
pub const TOP_ROWS: usize = 20;

/// `2026-11-26 16:59:14 UTC`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An RFC 3339 time from the ledger or a report, as [`time`] shows it; a
/// value that does not parse is shown as stored (control characters
/// escaped).
pub fn time_str(value: &str) -> String {
    DateTime::parse_from_rfc3339(value)
        .map(|t| time(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| escape_control(value).into_owned())
}

/// The first `n` rows and how many were left out.
pub fn top<T>(mut rows: Vec<T>, n: usize) -> (Vec<T>, usize) {
    let hidden = rows.len().saturating_sub(n);
    rows.truncate(n);
    (rows, hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_second_in_utc() {
        assert_eq!(
            time_str("2026-11-26T16:59:14.123456789Z"),
            "2026-11-26 16:59:14 UTC"
        );
        assert_eq!(
            time_str("2026-11-26T17:59:14+01:00"),
            "2026-11-26 16:59:14 UTC"
        );
        assert_eq!(time_str("never"), "never");
    }

    #[test]
    fn top_keeps_the_first_rows_and_counts_the_rest() {
        assert_eq!(top(vec![1, 2, 3], 2), (vec![1, 2], 1));
        assert_eq!(top(vec![1], 2), (vec![1], 0));
    }
}
