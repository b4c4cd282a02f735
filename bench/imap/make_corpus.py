#!/usr/bin/env python3
"""Writes the benchmark's messages as one Maildir per user: DIR/<user>/inbox/cur.

Each item is an RFC 5322 message (CRLF line ends) of a size drawn from a
log-normal distribution (median about 20 KB), a few over 10 MB, copied into
1 to 3 users' Maildirs (1.8 on average), as the sync engine would fan it out.
The same files feed mbsync (the baseline) and the writer (push.rs).
Deterministic for a given seed.
"""
import argparse
import base64
import os
import random


def message(rng, item_id, size, sent):
    head = (
        f"From: Li Wei <li.wei@contoso.com>\r\n"
        f"To: Sales group <group@telemessage.example>\r\n"
        f"Subject: WeChat chat {item_id}\r\n"
        f"Message-ID: <{item_id}@telemessage.example>\r\n"
        f"Date: Sun, 22 Nov 2026 08:15:00 +0000\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    raw = rng.randbytes(max(0, (size - len(head)) * 3 // 4))
    body = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return head + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--big", type=int, default=None, help="items over 10 MB (default: items/4000, at least 1)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    users = [f"user{u:03}@bench.example" for u in range(args.users)]
    for user in users:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(args.dir, user, "inbox", sub), exist_ok=True)
    big = args.big if args.big is not None else max(1, args.items // 4000)
    big_at = set(rng.sample(range(args.items), big))
    copies = total = 0
    t0 = 1795000000
    for n in range(args.items):
        if n in big_at:
            size = rng.randint(10_500_000, 14_000_000)
        else:
            size = int(min(max(rng.lognormvariate(9.9, 0.9), 800), 4_000_000))
        data = message(rng, f"itm_{n:06}", size, t0 + n)
        k = rng.choices([1, 2, 3], weights=[0.35, 0.5, 0.15])[0]
        for user in rng.sample(users, k):
            path = os.path.join(args.dir, user, "inbox", "cur", f"{t0 + n}.itm_{n:06}.bench:2,S")
            with open(path, "wb") as f:
                f.write(data)
            os.utime(path, (t0 + n, t0 + n))
            copies += 1
            total += len(data)
    print(f"{args.items} items, {copies} copies, {total / 1e6:.1f} MB, {big} over 10 MB, {len(users)} users")


if __name__ == "__main__":
    main()
