"""CSV files we post are safe to open in a spreadsheet: a cell that would start a formula
(`=cmd|' /C calc'!A0`, `+`, `-`, `@`, a tab or carriage return) is prefixed with a quote
so Excel and Sheets show it as text (OWASP's advice on CSV injection). Plain numbers such as
`-12.5` are left alone. A file that is not valid UTF-8 CSV is not ours to rewrite: it goes
out as made."""

from __future__ import annotations

import csv
import io
import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?%?$")


def neutralise_cell(cell: str) -> str:
    if cell.startswith(FORMULA_START) and not NUMBER.match(cell):
        return "'" + cell
    return cell


def neutralise_csv(data: bytes, delimiter: str = ",") -> bytes:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not any(cell != neutralise_cell(cell) for row in rows for cell in row):
        return data  # nothing to change: keep the file byte for byte
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerows([[neutralise_cell(cell) for cell in row] for row in rows])
    return out.getvalue().encode()
