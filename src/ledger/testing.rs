//! What the ledger's tests share: an item, a day's run, and views of
//! the file from outside the ledger.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{Ledger, RunId};
use crate::mailbox::Written;
use crate::telemessage::Item;
use crate::types::Mailbox;

/// A chat item archived at 2026-11-22T08:15:03Z.
pub(crate) fn item(id: &str) -> Item {
    serde_json::from_value(serde_json::json!({
        "id": id, "platform": "wechat", "type": "chat",
        "conversation": {"id": "c", "kind": "direct", "title": ""},
        "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T08:15:03Z",
        "sender": {"name": "A", "mobile": "+8613800138000", "email": null, "wechat_id": "a"},
        "participants": [], "size": 10, "sha256": "00", "attachments": []
    }))
    .unwrap()
}

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A writing run of connector `c` over 2026-11-22.
pub(crate) fn begin_day_run(ledger: &Ledger) -> RunId {
    ledger
        .begin_run(
            "c",
            t("2026-11-22T00:00:00Z"),
            t("2026-11-23T00:00:00Z"),
            false,
        )
        .unwrap()
}

/// Copies and bytes per mailbox, and items per state: what `status` shows.
pub(crate) type Shown = (Vec<(String, u64, u64)>, Vec<(String, u64)>);

/// What `status` shows, counted from the rows themselves.
pub(crate) fn recount(path: &Path) -> Shown {
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
pub(crate) fn query_plan(
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
pub(crate) fn assert_plan_step(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
    step: &str,
) {
    let plan = query_plan(conn, sql, args);
    assert!(plan.iter().any(|s| s.contains(step)), "{plan:?}");
}

pub(crate) fn shown(ledger: &Ledger) -> Shown {
    let copies = ledger.mailbox_totals("c").unwrap();
    let copies = copies.into_iter().map(|t| (t.key, t.copies, t.bytes));
    (copies.collect(), ledger.item_counts("c").unwrap())
}

pub(crate) fn recorded_elsewhere(path: &Path) -> i64 {
    let other = Connection::open(path).unwrap();
    other
        .query_row("SELECT count(*) FROM copies", [], |r| r.get(0))
        .unwrap()
}

pub(crate) fn record_copies(ledger: &Ledger, run: RunId, n: usize) {
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
