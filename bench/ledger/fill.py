"""Fills a ledger (whose schema the tool created) with COPIES archived
copies for one connector, as years of syncing would leave it: about 1.8
copies per item, ids shaped like TeleMessage's and spread over the key
space like them, realistic locations, and a full history of 1,000 runs. One transaction, rows in key order: minutes, not hours.

usage: fill.py LEDGER CONNECTOR COPIES
"""

import sqlite3
import sys

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MASK = (1 << 50) - 1
MAILBOXES = [f"user{n:02d}@contoso.com" for n in range(40)]
# Archived items keep no listing metadata (only items to retry do).
META = ""


def item_id(n):
    scrambled = (n * 0x5DEECE66D1B5 ^ 0x2F3A5C7E9B1D) & MASK
    digits = "".join(ALPHABET[(scrambled >> (5 * k)) & 31] for k in range(9, -1, -1))
    return f"itm_{digits}"


def main():
    path, connector, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    items = max(1, round(copies / 1.8))
    ids = sorted(item_id(n) for n in range(items))
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO runs (id, connector, started_at, finished_at, since, until, outcome, written) "
        "VALUES (?, ?, '2024-03-01T00:00:00.000Z', '2024-03-01T00:01:00.000Z', "
        "'2024-02-29T00:00:00Z', '2024-03-01T00:00:00Z', 'ok', ?)",
        ((n, connector, copies // 1000) for n in range(1, 1001)),
    )

    def copy_rows():
        left = copies
        for n, iid in enumerate(ids):
            count = 1 if n % 5 == 0 else 2
            first = n % len(MAILBOXES)
            boxes = sorted({MAILBOXES[first], MAILBOXES[(first + 7) % len(MAILBOXES)]})[:count]
            for box in boxes:
                if left == 0:
                    return
                left -= 1
                location = (
                    f"{box}/.WeChat Archiver/cur/1709280903.M123456P4242Q{n}R1a2b3c4d_"
                    f"0123456789abcdef0123.archive-host,S=20611:2,S"
                )
                yield (connector, iid, box, "chat", location, 20611, 1 + n % 1000,
                       "2024-03-01T08:20:00.000Z")

    db.executemany("INSERT INTO copies VALUES (?, ?, ?, ?, ?, ?, ?, ?)", copy_rows())
    db.executemany(
        "INSERT INTO items VALUES (?, ?, '2024-03-01T08:15:03Z', 'chat', 'archived', NULL, ?, ?)",
        ((connector, iid, META, 1 + n % 1000) for n, iid in enumerate(ids)),
    )
    db.execute(
        "INSERT OR REPLACE INTO checkpoints VALUES (?, '2024-03-01T00:00:00Z')", (connector,)
    )
    db.commit()
    total = db.execute("SELECT count(*) FROM copies").fetchone()[0]
    db.close()
    print(total)


if __name__ == "__main__":
    main()
