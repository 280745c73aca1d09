"""What the agent accepts is decided by content, and every refusal says why."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from engine.files.context import SharedFile, files_context
from engine.files.intake import check_attachments, refusal_text
from engine.files.limits import (
    MAX_FILE_BYTES,
    MAX_FILES_PER_MESSAGE,
    FileRefused,
    check_file,
    safe_name,
)
from engine.files.safety import neutralise_csv
from engine.types import Attachment
from tests.engine.files.helpers import png, sales_csv, workbook, zip_bomb_xlsx


def refusal(name: str, data: bytes) -> str:
    with pytest.raises(FileRefused) as refused:
        check_file(name, data)
    return str(refused.value)


def test_supported_files_are_accepted_with_their_type() -> None:
    assert check_file("sales.csv", sales_csv()).media_type == "text/csv"
    assert check_file("q3.xlsx", workbook([["a", "b"], [1, 2]])).kind == "xlsx"
    assert check_file("chart.PNG", png()).kind == "png"
    assert check_file("photo.jpeg", b"\xff\xd8\xff\xe0" + b"\0" * 20).kind == "jpg"
    assert check_file("notes.md", "# Q3 — résumé".encode()).kind == "md"
    assert check_file("report.pdf", b"%PDF-1.7\n...").kind == "pdf"
    assert check_file("data.json", b'{"a": [1, 2]}').kind == "json"


def test_content_must_match_the_extension() -> None:
    assert "binary file, not CSV" in refusal("sales.csv", png())
    assert "not a PNG" in refusal("chart.png", b"GIF89a....")
    assert "not an Excel workbook" in refusal("q3.xlsx", sales_csv())
    assert "not valid JSON" in refusal("data.json", b"{nope")
    assert "not UTF-8" in refusal("latin.csv", "café;1".encode("latin-1"))


def test_unsupported_types_and_sizes_are_refused_with_the_limits() -> None:
    assert "not supported (only CSV, TSV, XLSX" in refusal("setup.exe", b"MZ\x90\0")
    assert "not supported" in refusal("archive.zip", b"PK\x03\x04")
    assert "larger than 20 MB" in refusal("big.csv", b"a" * (MAX_FILE_BYTES + 1))
    assert "empty" in refusal("empty.csv", b"")


def test_a_zip_bomb_disguised_as_a_workbook_is_refused_before_it_inflates() -> None:
    assert "zip bomb" in refusal("sales.xlsx", zip_bomb_xlsx())


def test_a_damaged_workbook_is_refused() -> None:
    data = workbook([["a"], [1]])
    assert "damaged Excel workbook" in refusal("q3.xlsx", data[: len(data) // 2])


def test_a_huge_image_is_refused_from_its_header() -> None:
    assert "too large" in refusal("wall.png", png(20_000, 20_000)[:40])


@pytest.mark.parametrize("hostile, expected", [
    ("../../etc/passwd.csv", "passwd.csv"),
    ("..\\..\\boot.ini.txt", "boot.ini.txt"),
    ("/abs/path/sales.csv", "sales.csv"),
    (".hidden.csv", "hidden.csv"),
    ("..", "file"),
    ("a\0b;rm -rf.csv", "a_b_rm -rf.csv"),
    ("x" * 300 + ".csv", "x" * 96 + ".csv"),
])
def test_any_name_becomes_a_plain_file_name(hostile: str, expected: str) -> None:
    assert safe_name(hostile) == expected


def test_a_message_keeps_what_it_can_and_says_what_it_refused() -> None:
    intake = check_attachments([
        Attachment(name="sales.csv", data=sales_csv()),
        Attachment(name="sales.csv", data=b"a,b\n1,2\n"),
        Attachment(name="virus.exe", data=b"MZ"),
        Attachment(name="huge.csv", problem="larger than 20 MB (download stopped)"),
    ])
    assert [f.name for f in intake.accepted] == ["sales.csv", "sales (2).csv"]
    text = refusal_text(intake)
    assert "virus.exe: this type of file is not supported" in text
    assert "huge.csv: larger than 20 MB (download stopped)" in text
    assert "answering with the rest" in text
    nothing = check_attachments([Attachment(name="virus.exe", data=b"MZ")])
    assert nothing.nothing_usable and "Nothing was run" in refusal_text(nothing)


def test_too_many_files_in_one_message() -> None:
    many = [Attachment(name=f"f{i}.txt", data=b"x") for i in range(MAX_FILES_PER_MESSAGE + 2)]
    intake = check_attachments(many)
    assert len(intake.accepted) == MAX_FILES_PER_MESSAGE
    assert len(intake.refusals) == 2 and "at most 10 files" in intake.refusals[0]


def test_the_model_sees_names_sizes_and_the_first_rows() -> None:
    context = files_context([
        SharedFile("sales.csv", sales_csv(rows=50)),
        SharedFile("q3.xlsx", workbook([["region", "units"], ["north", 12]])),
        SharedFile("meta.json", json.dumps([{"k": 1}, {"k": 2}]).encode()),
    ])
    assert "- sales.csv — CSV, 1 KB" in context
    assert "order_id,date,device,accessory,revenue" in context
    assert "(51 lines in all)" in context
    assert "sheets: Q3" in context and "north,12" in context
    assert "a list of 2 items" in context
    assert "out/" in context  # where to save what the user should get


def test_csv_we_post_cannot_run_formulas_in_a_spreadsheet() -> None:
    made = b"name,total,note\r\nalice,-12.5,=cmd|' /C calc'!A0\r\nbob,+3,@SUM(A1)\r\n"
    safe = neutralise_csv(made).decode()
    assert "'=cmd|' /C calc'!A0" in safe and "'@SUM(A1)" in safe
    assert ",-12.5," in safe and ",+3," in safe  # numbers stay numbers
    clean = b"a,b\n1,2\n"
    assert neutralise_csv(clean) is clean  # nothing to change: byte for byte


def test_a_workbook_that_passes_the_zip_checks_but_is_broken_inside_still_gets_described(
) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook><sheets><broken")
    broken = check_file("q3.xlsx", out.getvalue())  # a workbook by its parts: accepted
    context = files_context([SharedFile(broken.name, broken.data)])
    assert "- q3.xlsx — XLSX" in context and "(no preview:" in context
