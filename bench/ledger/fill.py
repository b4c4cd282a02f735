"""Fills a ledger (whose schema the tool created) with COPIES archived
copies for one connector, as years of daily syncing would leave it: about
1.8 copies per item, ids shaped like TeleMessage's and in no particular
order, realistic locations, and a history of 1,000 runs. One item in a
hundred is unmapped (no participant has a mailbox), with the listing a
retry reads, as a real ledger gathers them.

Rows go in in archive order, as the tool writes them, so the id indexes
grow by random inserts and have the free space such growth leaves in
their pages (a fill sorted by id would pack them full, and every insert
of the measured run would split a page). No journal and a large cache:
minutes, not hours.

usage: fill.py LEDGER CONNECTOR COPIES
"""

import sqlite3
import sys
from datetime import datetime, timedelta, timezone

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MASK = (1 << 50) - 1
MAILBOXES = [f"user{n:02d}@contoso.com" for n in range(40)]
RUNS = 1000
# History ends (1,000 daily runs later) before the window the benchmark
# syncs, and over a week before today: no unmapped item of it is recent.
FIRST_DAY = datetime(2022, 8, 1, tzinfo=timezone.utc)
# Archived items keep no listing metadata (only items to retry do).
META = ""
UNMAPPED_EVERY = 100
UNMAPPED_REASON = (
    "no participant maps to a mailbox: 赵婷 (+14156449851, zhaoting2): no custom mapping "
    "is configured; TeleMessage has no e-mail address for them"
)
UNMAPPED_META = (
    '{"id":"%s","platform":"wechat","type":"chat","conversation":{"id":"cnv_9002ec392a50",'
    '"kind":"direct","title":""},"sent_at":"%s","archived_at":"%s","sender":{"name":"赵婷",'
    '"mobile":"+14156449851","email":null,"wechat_id":"zhaoting2"},"participants":[{"name":"赵婷",'
    '"mobile":"+14156449851","email":null,"wechat_id":"zhaoting2"},{"name":"Dr. Müller",'
    '"mobile":"+8618935076784","email":null,"wechat_id":"wxid_55659d38"}],"size":15059,'
    '"sha256":"55baef713ecd532794d19c00e88a30b8baa1485e7a4ca55560639cbf117ea228",'
    '"attachments":[],"call":null,"recall":null}'
)


def item_id(n):
    scrambled = (n * 0x5DEECE66D1B5 ^ 0x2F3A5C7E9B1D) & MASK
    digits = "".join(ALPHABET[(scrambled >> (5 * k)) & 31] for k in range(9, -1, -1))
    return f"itm_{digits}"


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    path, connector, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    items = max(1, round(copies / 1.8))
    per_run = max(1, -(-items // RUNS))
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -1048576")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO runs (id, connector, started_at, finished_at, since, until, outcome, written) "
        "VALUES (?, ?, ?, ?, ?, ?, 'ok', ?)",
        (
            (
                run,
                connector,
                stamp(FIRST_DAY + timedelta(days=run)),
                stamp(FIRST_DAY + timedelta(days=run, minutes=1)),
                stamp(FIRST_DAY + timedelta(days=run - 1)),
                stamp(FIRST_DAY + timedelta(days=run)),
                copies // RUNS,
            )
            for run in range(1, RUNS + 1)
        ),
    )

    left = copies
    for n in range(items):
        if left == 0:
            break
        run = 1 + n // per_run
        iid = item_id(n)
        archived = stamp(FIRST_DAY + timedelta(days=run - 1, seconds=(n % per_run) * 86400 // per_run))
        item_ref = db.execute(
            "INSERT INTO items (connector, item_id, archived_at, item_type, state, reason, meta, last_run) "
            "VALUES (?, ?, ?, 'chat', 'archived', NULL, ?, ?)",
            (connector, iid, archived, META, run),
        ).lastrowid
        if n % UNMAPPED_EVERY == UNMAPPED_EVERY // 2:
            add_unmapped(db, connector, item_id(items + n), archived, run)
        count = 1 if n % 5 == 0 else 2
        first = n % len(MAILBOXES)
        boxes = sorted({MAILBOXES[first], MAILBOXES[(first + 7) % len(MAILBOXES)]})[:count]
        for box in boxes[:left]:
            left -= 1
            location = (
                f"{box}/.WeChat Archiver/cur/1709280903.M123456P4242Q{n}R1a2b3c4d_"
                f"0123456789abcdef0123.archive-host,S=20611:2,S"
            )
            db.execute(
                "INSERT INTO copies (item_ref, connector, mailbox, item_type, location, bytes, run_id, written_at) "
                "VALUES (?, ?, ?, 'chat', ?, 20611, ?, ?)",
                (item_ref, connector, box, location, run, archived),
            )
    db.execute(
        "INSERT OR REPLACE INTO checkpoints VALUES (?, ?)",
        (connector, stamp(FIRST_DAY + timedelta(days=RUNS))),
    )
    db.commit()
    total = db.execute("SELECT count(*) FROM copies").fetchone()[0]
    db.close()
    print(total)


def add_unmapped(db, connector, iid, archived, run):
    db.execute(
        "INSERT INTO items (connector, item_id, archived_at, item_type, state, reason, meta, last_run) "
        "VALUES (?, ?, ?, 'chat', 'unmapped', ?, ?, ?)",
        (connector, iid, archived, UNMAPPED_REASON, UNMAPPED_META % (iid, archived, archived), run),
    )


if __name__ == "__main__":
    main()
