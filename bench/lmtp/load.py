#!/usr/bin/env python3
"""LMTP load for bench/lmtp: N forwarded messages in TeleMessage's format,
the same bytes for every contender (seeded), sent over C connections.

  load.py lmtp PORT N USERS CONC    prints "SECONDS MESSAGES"; exit 1
                                    unless every recipient got 250
  load.py smtp PORT N USERS OUT     one message at a time through an SMTP
                                    server (Postfix); writes "ID EPOCH" per
                                    message to OUT, EPOCH when its 250
                                    (queued) arrived

Each message goes from one user to another of USERS (u0001..@contoso.com),
the envelope naming both, so an LMTP server that delivers by recipient
(Dovecot) and one that archives by the headers (wechat-archiver) write
the same two copies.
"""
import multiprocessing
import random
import socket
import sys
import time


def message(i, users):
    rnd = random.Random(2026 * 1000003 + i)
    a, b = rnd.sample(range(1, users + 1), 2)
    words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(40, 400)))
    body = "\r\n".join(words[k:k + 76] for k in range(0, len(words), 76))
    frm, to = f"u{a:04d}@contoso.com", f"u{b:04d}@contoso.com"
    text = (
        f'From: "User {a} +86138{a:08d}" <{frm}>\r\n'
        f'To: "User {b} +86139{b:08d}" <{to}>\r\n'
        f"Message-ID: <bench-{i}@telemessage.example>\r\n"
        f"Date: Sun, 22 Nov 2026 08:{i // 60 % 60:02d}:{i % 60:02d} +0000\r\n"
        f"Subject: WeChat message {i}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    )
    return frm, to, text.encode()


WORDS = "hello 你好 meeting tomorrow price order shipment 谢谢 ok please confirm the contract".split()


class Conn:
    def __init__(self, port, greeting):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")
        self.expect("220")
        self.command(greeting, "250")

    def reply(self):
        lines = []
        while True:
            line = self.file.readline().decode("utf-8", "replace")
            if not line:
                raise SystemExit("the server closed the connection")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "".join(lines)

    def expect(self, code):
        r = self.reply()
        if not r.startswith(code):
            raise SystemExit(f"expected {code}, got {r!r}")
        return r

    def command(self, line, code):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.expect(code)

    def transaction(self, frm, rcpts, data):
        self.command("MAIL FROM:<forward@telemessage.example>", "250")
        for r in rcpts:
            self.command(f"RCPT TO:<{r}>", "250")
        self.command("DATA", "354")
        lines = data.split(b"\r\n")
        stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)
        self.sock.sendall(stuffed + b".\r\n")


def lmtp_worker(args):
    port, indices, users = args
    conn = Conn(port, "LHLO bench")
    for i in indices:
        frm, to, data = message(i, users)
        conn.transaction(frm, [frm, to], data)
        for _ in (frm, to):
            conn.expect("250")
    conn.command("QUIT", "221")
    return len(indices)


def lmtp(port, n, users, conc):
    chunks = [(port, range(k, n, conc), users) for k in range(conc)]
    start = time.monotonic()
    with multiprocessing.Pool(conc) as pool:
        sent = sum(pool.map(lmtp_worker, chunks))
    print(f"{time.monotonic() - start:.3f} {sent}")


def smtp(port, n, users, out):
    with open(out, "w") as f:
        conn = Conn(port, "EHLO mail.telemessage.example")
        for i in range(n):
            frm, to, data = message(i, users)
            conn.transaction(frm, ["archive@contoso.com"], data)
            conn.expect("250")
            f.write(f"<bench-{i}@telemessage.example> {time.time():.6f}\n")
        conn.command("QUIT", "221")


if __name__ == "__main__":
    mode, port, n, users = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if mode == "lmtp":
        lmtp(port, n, users, int(sys.argv[5]))
    else:
        smtp(port, n, users, sys.argv[5])
