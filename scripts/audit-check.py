#!/usr/bin/env python3
"""Checks an export of kaquan's audit chain (`kaquan audit export`): each
record's hash over its canonical encoding, and each link to the record
before it. Usage: audit-check.py EXPORT.jsonl [--head SEQ:HASH]

The encoding is the netstrings (<byte length>:<bytes>,) of
"kaquan-audit-v1", merchant_id, seq, id, actor_staff_id ("" when none),
actor, action, target, detail, n_affected, created_at and prev_hash, each
in UTF-8 and integers in decimal; the hash is its SHA-256 in hex.
Exits 0 when every record checks, 1 naming the first that does not."""
import hashlib
import json
import sys


def netstring(value):
    data = ("" if value is None else str(value)).encode("utf-8")
    return str(len(data)).encode() + b":" + data + b","


FIELDS = ["merchant_id", "seq", "id", "actor_staff_id", "actor", "action",
          "target", "detail", "n_affected", "created_at", "prev_hash"]


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    head = argv[3] if len(argv) == 4 and argv[2] == "--head" else None
    previous = None
    with open(argv[1], encoding="utf-8") as export:
        for number, line in enumerate(export, 1):
            record = json.loads(line)
            encoded = netstring("kaquan-audit-v1") + b"".join(
                netstring(record[field]) for field in FIELDS)
            if hashlib.sha256(encoded).hexdigest() != record["hash"]:
                print(f"line {number}: record {record['id']} (#{record['seq']}) does not match its hash")
                return 1
            if previous is not None and (record["seq"] != previous["seq"] + 1
                                         or record["prev_hash"] != previous["hash"]):
                print(f"line {number}: record {record['id']} (#{record['seq']}) does not follow the line before")
                return 1
            previous = record
    if head is not None and previous is not None:
        if f"{previous['seq']}:{previous['hash']}" != head:
            print(f"the last record (#{previous['seq']}) is not the head {head}")
            return 1
    print("every record checks" + ("" if previous is None else f" (#{previous['seq']} last)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
