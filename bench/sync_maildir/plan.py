"""Lists a simulator window through the TeleMessage API (which also makes
the simulator hash every content once, before any clock runs) and writes
what the curl baseline needs to do the same work as a sync:

  OUT/curl.cfg   one url/output pair per item that has a mailbox
  OUT/copies.tsv source and destination of every further copy
  OUT/plan.json  items, copies, bytes and the size distribution

A copy goes to every distinct e-mail address among the item's parties
(automatic mapping, no mapping file), as the tool's resolver does.

usage: plan.py BASE_URL USER PASSWORD SINCE UNTIL ARCHIVE_DIR OUT_DIR
"""

import json
import statistics
import sys
import urllib.parse
import urllib.request


def call(url, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=600) as answer:
        return json.load(answer)


def mailboxes(item):
    parties = [item["sender"]] + [p for p in item["participants"] if p != item["sender"]]
    seen = []
    for p in parties:
        email = (p.get("email") or "").lower()
        if email and email not in seen:
            seen.append(email)
    return seen


def main():
    base, user, password, since, until, archive, out = sys.argv[1:8]
    token = call(f"{base}/v1/auth/token", body={"username": user, "password": password})[
        "access_token"
    ]
    items, cursor = [], None
    while True:
        query = {"since": since, "until": until, "limit": "1000"}
        if cursor:
            query["cursor"] = cursor
        page = call(f"{base}/v1/archive/items?{urllib.parse.urlencode(query)}", token)
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    copies = 0
    copy_bytes = 0
    with open(f"{out}/curl.cfg", "w") as cfg, open(f"{out}/copies.tsv", "w") as extra:
        for item in items:
            boxes = mailboxes(item)
            if not boxes:
                continue
            first = f"{archive}/{boxes[0]}/{item['id']}"
            cfg.write(f'url = "{base}/v1/archive/items/{item["id"]}/content"\n')
            cfg.write(f'output = "{first}"\n')
            for box in boxes[1:]:
                extra.write(f"{first}\t{archive}/{box}/{item['id']}\n")
            copies += len(boxes)
            copy_bytes += len(boxes) * item["size"]
    sizes = [i["size"] for i in items]
    plan = {
        "token": token,
        "items": len(items),
        "copies": copies,
        "copy_bytes": copy_bytes,
        "content_bytes": sum(sizes),
        "median_size": int(statistics.median(sizes)) if sizes else 0,
        "over_10mb": sum(1 for s in sizes if s > 10_000_000),
        "largest": max(sizes, default=0),
    }
    json.dump(plan, open(f"{out}/plan.json", "w"))


if __name__ == "__main__":
    main()
