#!/usr/bin/env python3
"""Writes a mapping CSV of N data rows the way an HR export looks: extra
columns, quoted names with commas, numbers in the spellings people use
(E.164, spaced, dashed, 00-prefixed, national numbers for the default region
CN, Hong Kong numbers), and one problem row every 10,000 rows.

Usage: gen.py ROWS OUT.csv
"""
import sys


def number(i):
    kind = i % 6
    d8 = f"{i:08d}"
    if kind == 0:
        return f"+86138{d8}"
    if kind == 1:
        return f"+86 139 {d8[:4]} {d8[4:]}"
    if kind == 2:
        return f"137-{d8[:4]}-{d8[4:]}"          # national, read in CN
    if kind == 3:
        return f"0086 136 {d8[:4]} {d8[4:]}"
    if kind == 4:
        return f"(+86) 135.{d8[:4]}.{d8[4:]}"
    # Hong Kong: 8 digits, distinct for i below 10,000,000.
    return f"+852 {5 + i % 5}{d8[1:4]} {d8[4:]}"


def problem(i, row):
    kind = (i // 10_000) % 5
    name, num, mail, dept = row
    if kind == 0:
        return [name, "call the office", mail, dept]
    if kind == 1:
        return [name, num, mail.replace("@", " at "), dept]
    if kind == 2:
        return [name, "", mail, dept]
    if kind == 3:
        return [name, "+86 138", mail, dept]
    return [name, num, "", dept]


def quote(field):
    if any(c in field for c in ',"\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def main():
    rows, out = int(sys.argv[1]), sys.argv[2]
    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write("Display name,Mobile,E-mail,Department\r\n")
        for i in range(rows):
            name = f"Employee {i}, Contoso" if i % 10 == 0 else f"Employee {i}"
            row = [name, number(i), f"employee.{i}@contoso.com", "Sales" if i % 2 else "Trading; HK"]
            if i % 10_000 == 9_999:
                row = problem(i, row)
            f.write(",".join(quote(x) for x in row) + "\r\n")


if __name__ == "__main__":
    main()
