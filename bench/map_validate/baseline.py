#!/usr/bin/env python3
"""The benchmark's baseline: the checks of `map validate` in a short Python
script, with the csv module and Google's libphonenumber port
`phonenumbers`. It streams the file and keeps the same duplicate index
(number -> first line and mailbox).

Mailboxes are checked with a regular expression, a lighter check than the
tool's RFC 5322 parser: that favours the baseline.

Usage: baseline.py FILE DEFAULT_REGION   (prints one JSON summary line)
"""
import csv
import json
import re
import sys

import phonenumbers
from phonenumbers import PhoneNumberFormat, ValidationResult

NUMBER = {"mobilenumber", "mobile", "phone", "phonenumber", "usersmobilenumber"}
MAILBOX = {"mailbox", "email", "emailaddress", "userprincipalname", "upn",
           "microsoft365mailboxaddress"}
SEPARATORS = str.maketrans("", "", " -.()\t\u00a0")
DIGITS = re.compile(r"\+?[0-9]+")
ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


def key(header):
    return "".join(c for c in header if c.isalnum()).lower()


def normalise(raw, region):
    cleaned = raw.strip().translate(SEPARATORS)
    if not DIGITS.fullmatch(cleaned):
        return None, "invalid_number"
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    try:
        number = phonenumbers.parse(cleaned, None if cleaned.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None, "impossible_number"
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None, "impossible_number"
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), None


def main():
    path, region = sys.argv[1], sys.argv[2]
    errors, warnings, rows, valid = [], [], 0, 0
    seen = {}
    with open(path, encoding="utf-8-sig", errors="strict", newline="") as f:
        first = f.readline()
        delimiter = max(",;\t", key=lambda d: sum(key(h) in NUMBER | MAILBOX for h in first.split(d)))
        header = next(csv.reader([first], delimiter=delimiter))
        keys = [key(h) for h in header]
        ni = next(i for i, k in enumerate(keys) if k in NUMBER)
        mi = next(i for i, k in enumerate(keys) if k in MAILBOX)
        for line, row in enumerate(csv.reader(f, delimiter=delimiter), start=2):
            if not any(x.strip() for x in row):
                continue
            rows += 1
            if len(row) != len(header):
                errors.append((line, "field_count"))
                continue
            before = len(errors)
            raw_number, raw_mailbox = row[ni].strip(), row[mi].strip()
            number = None
            if not raw_number:
                errors.append((line, "empty_number"))
            else:
                number, problem = normalise(raw_number, region)
                if problem:
                    errors.append((line, problem))
            mailbox = None
            if not raw_mailbox:
                errors.append((line, "empty_mailbox"))
            elif ADDRESS.match(raw_mailbox):
                mailbox = raw_mailbox.lower()
            else:
                errors.append((line, "invalid_mailbox"))
            if number and mailbox:
                first_seen = seen.get(number)
                if first_seen is None:
                    seen[number] = (line, mailbox)
                elif first_seen[1] == mailbox:
                    warnings.append((line, "duplicate_row"))
                else:
                    errors.append((line, "conflicting_number"))
            if len(errors) == before:
                valid += 1
    print(json.dumps({"rows": rows, "valid": valid, "mappings": len(seen),
                      "errors": len(errors), "warnings": len(warnings)}))
    return 3 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
