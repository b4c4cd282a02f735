//! The ledger's tables, their version, and the upgrade of a ledger an
//! earlier version of the tool wrote.

use rusqlite::{Connection, TransactionBehavior};

/// The tables' version, kept in `PRAGMA user_version`. Version 1 (which
/// left `user_version` at 0) kept items and copies in WITHOUT ROWID tables;
/// version 2 had no running totals, so `status` counted every row;
/// version 3 keyed copies by item id rather than by their item's row;
/// version 4 retried every unmapped item on every run; version 5 had no
/// folder marks (see `ledger/marks.rs`); version 6 kept e-mail identities
/// in a file of their own (see `ledger/identities.rs`).
pub(super) const VERSION: i64 = 7;

/// Items and copies are rowid tables: a WITHOUT ROWID table repeats whole
/// rows in its interior pages (17 copies per page), so at 10M copies each
/// new item cost five or six cold page reads per table.
///
/// Items are found by a unique index on their id. Copies point at their
/// item's row (`item_ref`), which is unique per (connector, item id): item
/// rows only grow, so a new item's copies go to the last page of their
/// index instead of a random page of a 10M-entry one (ids are random). An
/// item's row is therefore written before its first copy.
const TABLES: &str = r#"
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
    id INTEGER PRIMARY KEY,
    connector TEXT NOT NULL,
    item_id TEXT NOT NULL,
    archived_at TEXT NOT NULL,
    item_type TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    meta TEXT NOT NULL,
    last_run INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS copies (
    id INTEGER PRIMARY KEY,
    item_ref INTEGER NOT NULL REFERENCES items (id),
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    item_type TEXT NOT NULL,
    location TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    written_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    connector TEXT PRIMARY KEY,
    archived_until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unmapped_retries (
    connector TEXT PRIMARY KEY,
    mapping TEXT NOT NULL,
    retried_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS folder_marks (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    mark TEXT NOT NULL,
    PRIMARY KEY (connector, mailbox)
);
CREATE TABLE IF NOT EXISTS foreign_copies (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    written_by TEXT NOT NULL,
    copies INTEGER NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (connector, mailbox, written_by)
);
CREATE TABLE IF NOT EXISTS folders (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    folder_id TEXT NOT NULL,
    PRIMARY KEY (connector, mailbox)
);
CREATE TABLE IF NOT EXISTS email_identities (
    connector TEXT NOT NULL,
    message_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (connector, message_id, digest)
);
"#;

/// Created after the tables' rows when upgrading: building an index from
/// sorted rows is much faster than growing it row by row.
const INDEXES: &str = r#"
CREATE UNIQUE INDEX IF NOT EXISTS items_by_id ON items (connector, item_id);
CREATE INDEX IF NOT EXISTS items_to_retry ON items (connector, state)
    WHERE state IN ('unmapped', 'failed');
CREATE UNIQUE INDEX IF NOT EXISTS copies_by_item ON copies (item_ref, mailbox);
CREATE INDEX IF NOT EXISTS items_with_problems ON items (connector, archived_at)
    WHERE state IN ('unmapped', 'failed', 'gone');
"#;

/// Running totals that `status` reads instead of counting every row (at
/// 10M copies the count took over a minute). Triggers keep them in the
/// transaction that changes the rows they count.
const TOTALS: &str = r#"
CREATE TABLE IF NOT EXISTS copy_totals (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    item_type TEXT NOT NULL,
    copies INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (connector, mailbox, item_type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS item_counts (
    connector TEXT NOT NULL,
    state TEXT NOT NULL,
    items INTEGER NOT NULL,
    PRIMARY KEY (connector, state)
) WITHOUT ROWID;
"#;

/// Counts the rows already there, once, when the totals are created.
const FILL_TOTALS: &str = r#"
DELETE FROM copy_totals;
DELETE FROM item_counts;
INSERT INTO copy_totals (connector, mailbox, item_type, copies, bytes)
    SELECT connector, mailbox, item_type, count(*), sum(bytes) FROM copies
    GROUP BY connector, mailbox, item_type;
INSERT INTO item_counts (connector, state, items)
    SELECT connector, state, count(*) FROM items GROUP BY connector, state;
"#;

/// Copies are rewritten in place by an upsert, which fires the update
/// trigger (`INSERT OR REPLACE` would delete without firing the delete one).
const TRIGGERS: &str = r#"
CREATE TRIGGER IF NOT EXISTS copy_added AFTER INSERT ON copies BEGIN
    INSERT INTO copy_totals (connector, mailbox, item_type, copies, bytes)
        VALUES (NEW.connector, NEW.mailbox, NEW.item_type, 1, NEW.bytes)
        ON CONFLICT (connector, mailbox, item_type)
        DO UPDATE SET copies = copies + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER IF NOT EXISTS copy_removed AFTER DELETE ON copies BEGIN
    UPDATE copy_totals SET copies = copies - 1, bytes = bytes - OLD.bytes
        WHERE connector = OLD.connector AND mailbox = OLD.mailbox AND item_type = OLD.item_type;
END;
CREATE TRIGGER IF NOT EXISTS copy_changed
AFTER UPDATE OF connector, mailbox, item_type, bytes ON copies BEGIN
    UPDATE copy_totals SET copies = copies - 1, bytes = bytes - OLD.bytes
        WHERE connector = OLD.connector AND mailbox = OLD.mailbox AND item_type = OLD.item_type;
    INSERT INTO copy_totals (connector, mailbox, item_type, copies, bytes)
        VALUES (NEW.connector, NEW.mailbox, NEW.item_type, 1, NEW.bytes)
        ON CONFLICT (connector, mailbox, item_type)
        DO UPDATE SET copies = copies + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER IF NOT EXISTS item_added AFTER INSERT ON items BEGIN
    INSERT INTO item_counts (connector, state, items) VALUES (NEW.connector, NEW.state, 1)
        ON CONFLICT (connector, state) DO UPDATE SET items = items + 1;
END;
CREATE TRIGGER IF NOT EXISTS item_removed AFTER DELETE ON items BEGIN
    UPDATE item_counts SET items = items - 1
        WHERE connector = OLD.connector AND state = OLD.state;
END;
CREATE TRIGGER IF NOT EXISTS item_changed AFTER UPDATE OF connector, state ON items
WHEN OLD.connector IS NOT NEW.connector OR OLD.state IS NOT NEW.state BEGIN
    UPDATE item_counts SET items = items - 1
        WHERE connector = OLD.connector AND state = OLD.state;
    INSERT INTO item_counts (connector, state, items) VALUES (NEW.connector, NEW.state, 1)
        ON CONFLICT (connector, state) DO UPDATE SET items = items + 1;
END;
"#;

/// Sets version 1's items aside (a WITHOUT ROWID table) to be copied into
/// the current table.
const SET_ASIDE_ITEMS_1: &str = r#"
DROP INDEX IF EXISTS items_to_retry;
ALTER TABLE items RENAME TO old_items;
"#;

const COPY_ITEMS_FROM_1: &str = r#"
INSERT INTO items (connector, item_id, archived_at, item_type, state, reason, meta, last_run)
    SELECT connector, item_id, archived_at, item_type, state, reason, meta, last_run FROM old_items;
DROP TABLE old_items;
"#;

/// Sets aside copies of versions 1 to 3, which named their item by id.
/// Dropping the table later drops its triggers too.
const SET_ASIDE_COPIES: &str = r#"
DROP INDEX IF EXISTS copies_by_item;
ALTER TABLE copies RENAME TO old_copies;
"#;

/// Points each old copy at its item's row. A crash between recording an
/// item's copies and its outcome left copies with no item row: such an
/// item gets a failed row saying so. It has no listing to retry from, so
/// it waits to be listed again.
const COPY_COPIES_FROM_OLD: &str = r#"
CREATE UNIQUE INDEX IF NOT EXISTS items_by_id ON items (connector, item_id);
INSERT INTO items (connector, item_id, archived_at, item_type, state, reason, meta, last_run)
    SELECT o.connector, o.item_id, o.first_written, o.item_type, 'failed',
        'a run stopped after writing copies of this item but before recording its outcome; '
            || 'sync a window that includes it to finish it'
            || coalesce(' (that run synced ' || r.since || ' to ' || r.until || ')', ''),
        '', o.run_id
    FROM (
        SELECT connector, item_id, min(written_at) AS first_written,
            min(item_type) AS item_type, max(run_id) AS run_id
        FROM old_copies AS c
        WHERE NOT EXISTS (
            SELECT 1 FROM items AS i WHERE i.connector = c.connector AND i.item_id = c.item_id)
        GROUP BY connector, item_id
    ) AS o
    LEFT JOIN runs AS r ON r.id = o.run_id;
INSERT INTO copies (item_ref, connector, mailbox, item_type, location, bytes, run_id, written_at)
    SELECT i.id, c.connector, c.mailbox, c.item_type, c.location, c.bytes, c.run_id, c.written_at
    FROM old_copies AS c JOIN items AS i ON i.connector = c.connector AND i.item_id = c.item_id;
DROP TABLE old_copies;
"#;

/// What [`prepare`] found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prepared {
    /// The tables were there, or were created in an empty file.
    Ready,
    /// An older ledger was upgraded (once; it takes a few minutes at
    /// millions of copies).
    Upgraded { from: i64, copies: u64 },
    /// A newer version of the tool wrote the file: this one must not touch it.
    Newer { version: i64 },
}

/// Creates the tables, or upgrades an older ledger to them, in one
/// transaction: a crash or a second process opening the same file at the
/// same time leaves either the old tables or the new ones.
pub(super) fn prepare(conn: &mut Connection) -> rusqlite::Result<Prepared> {
    if user_version(conn)? == VERSION {
        return Ok(Prepared::Ready);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = user_version(&tx)?;
    if version > VERSION {
        return Ok(Prepared::Newer { version });
    }
    if version == VERSION {
        return Ok(Prepared::Ready);
    }
    let upgrading = has_table(&tx, "copies")?;
    if !upgrading || version >= 4 {
        tx.execute_batch(TABLES)?;
    } else {
        tracing::warn!(
            "upgrading the ledger's tables from version {} to {VERSION}, once: \
             at millions of copies this takes a few minutes; an interrupted \
             upgrade is rolled back and starts again next time",
            version.max(1)
        );
        if version < 2 {
            tx.execute_batch(SET_ASIDE_ITEMS_1)?;
        }
        tx.execute_batch(SET_ASIDE_COPIES)?;
        tx.execute_batch(TABLES)?;
        if version < 2 {
            tx.execute_batch(COPY_ITEMS_FROM_1)?;
        }
        tx.execute_batch(COPY_COPIES_FROM_OLD)?;
    }
    tx.execute_batch(INDEXES)?;
    tx.execute_batch(TOTALS)?;
    // Version 3's totals still hold: its copies moved unchanged, and its
    // item triggers counted the rows added for items without one.
    if version < 3 {
        tx.execute_batch(FILL_TOTALS)?;
    }
    tx.execute_batch(TRIGGERS)?;
    let copies: i64 = tx.query_row(
        "SELECT coalesce(sum(copies), 0) FROM copy_totals",
        [],
        |r| r.get(0),
    )?;
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(if upgrading {
        Prepared::Upgraded {
            from: version.max(1),
            copies: copies as u64,
        }
    } else {
        Prepared::Ready
    })
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::{item, query_plan, shown};
    use crate::ledger::{Ledger, LedgerError};
    use crate::types::ItemId;

    /// The tables as version 1 of the tool created them.
    const VERSION_1: &str = r#"
CREATE TABLE runs (id INTEGER PRIMARY KEY, connector TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, since TEXT NOT NULL, until TEXT NOT NULL, dry_run INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL DEFAULT 'running', listed INTEGER NOT NULL DEFAULT 0,
    written INTEGER NOT NULL DEFAULT 0, already_archived INTEGER NOT NULL DEFAULT 0,
    unmapped INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    bytes_written INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE INDEX runs_by_connector ON runs (connector, id);
CREATE TABLE items (connector TEXT NOT NULL, item_id TEXT NOT NULL, archived_at TEXT NOT NULL,
    item_type TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, meta TEXT NOT NULL,
    last_run INTEGER NOT NULL, PRIMARY KEY (connector, item_id)) WITHOUT ROWID;
CREATE INDEX items_to_retry ON items (connector, state) WHERE state IN ('unmapped', 'failed');
CREATE TABLE copies (connector TEXT NOT NULL, item_id TEXT NOT NULL, mailbox TEXT NOT NULL,
    item_type TEXT NOT NULL, location TEXT NOT NULL, bytes INTEGER NOT NULL,
    run_id INTEGER NOT NULL, written_at TEXT NOT NULL,
    PRIMARY KEY (connector, item_id, mailbox)) WITHOUT ROWID;
CREATE TABLE checkpoints (connector TEXT PRIMARY KEY, archived_until TEXT NOT NULL);
CREATE TABLE folders (connector TEXT NOT NULL, mailbox TEXT NOT NULL, folder_id TEXT NOT NULL,
    PRIMARY KEY (connector, mailbox));
"#;

    /// A version 1 ledger: one item archived in two mailboxes, one failed,
    /// and one whose copy was recorded but not its outcome.
    fn version_1_ledger(path: &std::path::Path) {
        let db = Connection::open(path).unwrap();
        db.execute_batch(VERSION_1).unwrap();
        db.execute_batch(
            "INSERT INTO runs (id, connector, started_at, since, until, outcome) \
             VALUES (7, 'c', '2026-11-22T00:00:00Z', '2026-11-21T00:00:00Z', '2026-11-22T00:00:00Z', 'ok');
             INSERT INTO checkpoints VALUES ('c', '2026-11-22T00:00:00Z');
             INSERT INTO items VALUES ('c', 'itm_A', '2026-11-21T08:00:00Z', 'chat', 'archived', NULL, '', 7);
             INSERT INTO copies VALUES ('c', 'itm_A', 'li.wei@contoso.com', 'chat', 'li/cur/1', 100, 7, 'x');
             INSERT INTO copies VALUES ('c', 'itm_A', 'zhang.min@contoso.com', 'chat', 'zm/cur/1', 100, 7, 'x');
             INSERT INTO copies VALUES ('c', 'itm_C', 'li.wei@contoso.com', 'call', 'li/cur/2', 40, 7,
                 '2026-11-22T08:30:00Z');",
        )
        .unwrap();
        let failed = serde_json::to_string(&item("itm_B")).unwrap();
        db.execute(
            "INSERT INTO items VALUES ('c', 'itm_B', '2026-11-22T08:15:03Z', 'chat', 'failed', 'disk full', ?1, 7)",
            [failed],
        )
        .unwrap();
    }

    fn version_of(path: &std::path::Path) -> i64 {
        user_version(&Connection::open(path).unwrap()).unwrap()
    }

    /// `version_1_ledger` in `dir`, opened once: upgraded to the current
    /// tables, for tests that turn it back into an older version.
    fn upgraded_fixture(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("ledger.sqlite");
        version_1_ledger(&path);
        drop(Ledger::open(&path).unwrap());
        path
    }

    /// Asserts that the ledger holds `version_1_ledger`'s rows.
    fn assert_fixture_rows_kept(ledger: &Ledger) {
        let id = |s: &str| ItemId::parse(s).unwrap();
        let copies = ledger.copies_of("c", &id("itm_A")).unwrap();
        assert_eq!(copies.len(), 2, "{copies:?}");
        assert!(copies.contains("zhang.min@contoso.com"));
        let state = ledger.item_state("c", &id("itm_A")).unwrap();
        assert_eq!(state, Some(("archived".into(), None)));
        let retries = ledger.items_to_retry("c").unwrap();
        assert_eq!(retries.len(), 1);
        assert_eq!(retries[0].id.as_str(), "itm_B");
        assert!(ledger.checkpoint("c").unwrap().is_some());
        assert_eq!(ledger.last_runs("c", 5).unwrap()[0].id, 7);
    }

    /// An item with a copy but no outcome (a crash between the two records)
    /// is failed, keeps its copy, and says to sync its window: with no
    /// listing, it cannot be retried on its own.
    fn assert_copy_without_outcome_is_failed(ledger: &Ledger) {
        let item = ItemId::parse("itm_C").unwrap();
        let copies = ledger.copies_of("c", &item).unwrap();
        assert!(copies.contains("li.wei@contoso.com"), "{copies:?}");
        let (state, reason) = ledger.item_state("c", &item).unwrap().unwrap();
        assert_eq!(state, "failed");
        let reason = reason.unwrap();
        assert!(
            reason.contains("sync a window that includes it"),
            "{reason}"
        );
        assert!(
            reason.contains("synced 2026-11-21T00:00:00Z to 2026-11-22T00:00:00Z"),
            "{reason}"
        );
    }

    #[test]
    fn a_version_1_ledger_is_upgraded_keeping_every_copy_item_and_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        version_1_ledger(&path);

        let ledger = Ledger::open(&path).unwrap();

        assert_fixture_rows_kept(&ledger);
        assert_copy_without_outcome_is_failed(&ledger);
        assert_eq!(ledger.mailbox_totals("c").unwrap().len(), 2);
        drop(ledger);
        assert_eq!(version_of(&path), VERSION);
        let db = Connection::open(&path).unwrap();
        for old in ["old_items", "old_copies"] {
            assert!(!has_table(&db, old).unwrap(), "{old} was left behind");
        }
    }

    /// Turns a current ledger back into what version 3 left: copies keyed
    /// by item id, counted by the same triggers.
    fn back_to_version_3(path: &std::path::Path) {
        let db = Connection::open(path).unwrap();
        db.execute_batch(
            "CREATE TABLE v3_copies (id INTEGER PRIMARY KEY, connector TEXT NOT NULL,
                 item_id TEXT NOT NULL, mailbox TEXT NOT NULL, item_type TEXT NOT NULL,
                 location TEXT NOT NULL, bytes INTEGER NOT NULL, run_id INTEGER NOT NULL,
                 written_at TEXT NOT NULL);
             INSERT INTO v3_copies (connector, item_id, mailbox, item_type, location, bytes,
                     run_id, written_at)
                 SELECT c.connector, i.item_id, c.mailbox, c.item_type, c.location, c.bytes,
                     c.run_id, c.written_at
                 FROM copies AS c JOIN items AS i ON i.id = c.item_ref ORDER BY c.id;
             DROP TABLE copies;
             ALTER TABLE v3_copies RENAME TO copies;
             CREATE UNIQUE INDEX copies_by_item ON copies (connector, item_id, mailbox);",
        )
        .unwrap();
        db.execute_batch(TRIGGERS).unwrap();
        db.pragma_update(None, "user_version", 3).unwrap();
    }

    /// Turns a current ledger into what version 2 left: no totals.
    fn back_to_version_2(path: &std::path::Path) {
        back_to_version_3(path);
        let db = Connection::open(path).unwrap();
        db.execute_batch(
            "DROP TRIGGER copy_added; DROP TRIGGER copy_removed; DROP TRIGGER copy_changed;
             DROP TRIGGER item_added; DROP TRIGGER item_removed; DROP TRIGGER item_changed;
             DROP TABLE copy_totals; DROP TABLE item_counts; DROP INDEX items_with_problems;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }

    /// Asserts that `status`'s totals count `version_1_ledger`'s rows.
    fn assert_fixture_totals(ledger: &Ledger) {
        let (copies, counts) = shown(ledger);
        let copies: Vec<_> = copies
            .iter()
            .map(|(m, c, b)| (m.as_str(), *c, *b))
            .collect();
        let expected = [
            ("li.wei@contoso.com", 2, 140),
            ("zhang.min@contoso.com", 1, 100),
        ];
        assert_eq!(copies, expected);
        assert_eq!(counts, [("archived".into(), 1), ("failed".into(), 2)]);
    }

    #[test]
    fn a_version_2_ledger_gains_totals_that_count_its_rows_and_keep_counting() {
        let dir = tempfile::tempdir().unwrap();
        let path = upgraded_fixture(dir.path());
        back_to_version_2(&path);

        let ledger = Ledger::open(&path).unwrap();

        assert_eq!(version_of(&path), VERSION);
        assert_fixture_totals(&ledger);
        let run = ledger
            .begin_run("c", item("x").archived_at, item("x").archived_at, false)
            .unwrap();
        ledger
            .record_item(
                "c",
                &item("itm_B"),
                crate::ledger::ItemState::Archived,
                None,
                run,
            )
            .unwrap();
        assert_eq!(
            ledger.item_counts("c").unwrap(),
            [("archived".into(), 2), ("failed".into(), 1)]
        );
    }

    /// Version 4 points copies at their item's row: every copy keeps its
    /// item, mailbox and size, and the totals go on agreeing with the rows.
    #[test]
    fn a_version_3_ledger_moves_its_copies_to_their_items_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = upgraded_fixture(dir.path());
        back_to_version_3(&path);
        let db = Connection::open(&path).unwrap();
        db.execute("DELETE FROM items WHERE item_id = 'itm_C'", [])
            .unwrap();
        drop(db);

        let ledger = Ledger::open(&path).unwrap();

        assert_eq!(version_of(&path), VERSION);
        assert_fixture_rows_kept(&ledger);
        assert_copy_without_outcome_is_failed(&ledger);
        assert_fixture_totals(&ledger);
        let db = Connection::open(&path).unwrap();
        let orphans: i64 = db
            .query_row(
                "SELECT count(*) FROM copies WHERE item_ref NOT IN (SELECT id FROM items)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
    }

    /// Version 5 adds the record of unmapped retries and copies no row.
    #[test]
    fn a_version_4_ledger_gains_the_record_of_unmapped_retries() {
        let dir = tempfile::tempdir().unwrap();
        let path = upgraded_fixture(dir.path());
        let db = Connection::open(&path).unwrap();
        db.execute_batch("DROP TABLE unmapped_retries; PRAGMA user_version = 4;")
            .unwrap();
        drop(db);

        let ledger = Ledger::open(&path).unwrap();

        assert_eq!(version_of(&path), VERSION);
        assert_fixture_rows_kept(&ledger);
        assert_eq!(ledger.unmapped_retry("c").unwrap(), None);
        let at = item("x").archived_at;
        ledger.record_unmapped_retry("c", "f", at).unwrap();
        assert!(ledger.unmapped_retry("c").unwrap().is_some());
    }

    #[test]
    fn a_version_6_ledger_gains_the_email_identities() {
        let dir = tempfile::tempdir().unwrap();
        let path = upgraded_fixture(dir.path());
        let db = Connection::open(&path).unwrap();
        db.execute_batch("DROP TABLE email_identities; PRAGMA user_version = 6;")
            .unwrap();
        drop(db);

        let ledger = Ledger::open(&path).unwrap();

        assert_eq!(version_of(&path), VERSION);
        assert_fixture_rows_kept(&ledger);
        let first = ledger
            .email_identity("c", "<m@x>", "d1", "<m@x>#d1")
            .unwrap();
        let second = ledger
            .email_identity("c", "<m@x>", "d2", "<m@x>#d2")
            .unwrap();
        assert_eq!((first.item_id.as_str(), first.collision), ("<m@x>", false));
        assert_eq!(
            (second.item_id.as_str(), second.collision),
            ("<m@x>#d2", true)
        );
    }

    #[test]
    fn an_upgraded_ledger_still_refuses_a_second_row_for_the_same_copy_or_item() {
        let dir = tempfile::tempdir().unwrap();
        let path = upgraded_fixture(dir.path());
        let db = Connection::open(&path).unwrap();
        let again = db.execute(
            "INSERT INTO copies (item_ref, connector, mailbox, item_type, location, bytes, run_id, written_at) \
             SELECT id, 'c', 'li.wei@contoso.com', 'chat', 'li/cur/2', 100, 8, 'y' \
             FROM items WHERE item_id = 'itm_A'",
            [],
        );
        assert!(again.is_err(), "a second row for one copy was accepted");
        let again = db.execute(
            "INSERT INTO items (connector, item_id, archived_at, item_type, state, meta, last_run) \
             VALUES ('c', 'itm_A', 'x', 'chat', 'archived', '', 8)",
            [],
        );
        assert!(again.is_err(), "a second row for one item was accepted");
    }

    #[test]
    fn a_ledger_from_a_newer_version_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        version_1_ledger(&path);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", VERSION + 1)
            .unwrap();

        let err = Ledger::open(&path)
            .err()
            .expect("a newer ledger was opened");

        assert!(matches!(err, LedgerError::NewerVersion { version, .. } if version == VERSION + 1));
        assert!(err.to_string().contains("newer wechat-archiver"), "{err}");
        let db = Connection::open(&path).unwrap();
        assert_eq!(user_version(&db).unwrap(), VERSION + 1);
        assert!(has_table(&db, "copies").unwrap());
        assert!(!has_table(&db, "copies_v1").unwrap());
    }

    /// The lookups each new item makes read the compact indexes (for its
    /// copies, the item index and then the copies index, both covering),
    /// never a table scan.
    #[test]
    fn looking_up_an_item_reads_only_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        drop(Ledger::open(&path).unwrap());
        let db = Connection::open(&path).unwrap();
        let plan = |sql: &str| query_plan(&db, sql, &[&"c", &"i"]).join("; ");
        let copies = plan(crate::ledger::copies::COPIES_OF_QUERY);
        for index in ["items_by_id", "copies_by_item"] {
            let step = format!("USING COVERING INDEX {index}");
            assert!(copies.contains(&step), "{copies}");
        }
        let state = plan(crate::ledger::items::ITEM_STATE_QUERY);
        assert!(state.contains("USING INDEX items_by_id"), "{state}");
    }

    /// `status` must answer at once on a ledger of millions of copies: its
    /// queries read the totals and the problems' partial index, never the
    /// items or copies themselves.
    #[test]
    fn status_reads_no_item_or_copy_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        drop(Ledger::open(&path).unwrap());
        let db = Connection::open(&path).unwrap();
        for sql in [
            crate::ledger::totals::MAILBOX_TOTALS_QUERY,
            crate::ledger::totals::TYPE_TOTALS_QUERY,
            crate::ledger::totals::ITEM_COUNTS_QUERY,
            crate::ledger::totals::PROBLEM_ITEMS_QUERY,
        ] {
            let plan = query_plan(&db, sql, &[&"c", &20]).join("; ");
            assert!(
                !plan.contains("SCAN items") && !plan.contains("SCAN copies"),
                "{sql}: {plan}"
            );
            assert!(
                !plan.contains("copies_by_item") && !plan.contains("items_by_id"),
                "{sql}: {plan}"
            );
        }
    }
}
