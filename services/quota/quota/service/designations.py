"""Designation lists (USCC + designation), imported from CSV or XLSX, streamed in batches.

The file is read row by row (csv over a text wrapper, in the encoding the file was saved in:
UTF-8 or GB18030/GBK as Excel on Chinese Windows writes it; openpyxl in read-only mode), every
row checked (USCC check character, known designation, repeat in the file) and accepted rows
upserted a batch at a time, so tens of thousands of rows never sit in memory as objects.
A re-import applies to the next application; issued vouchers keep their tier.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from quota import errors
from quota.domain import designations as rules

BATCH = 5000
MAX_REJECTED_LISTED = 10_000


@dataclass
class ImportReport:
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_total: int = 0


# Excel on Chinese Windows saves "CSV" in the ANSI code page (936: GBK), "CSV UTF-8" with a
# BOM; GB18030 is a superset of GBK and GB2312. Strict UTF-8 first: a GBK file is almost never
# valid UTF-8, while most UTF-8 text is also valid GB18030 (as the wrong characters).
CSV_ENCODINGS = ("utf-8", "gb18030")
_CHUNK = 1 << 16


def _reads_as(raw: IO[bytes], encoding: str) -> bool:
    """Does the whole file decode strictly in ``encoding``, with no NUL (a text list has none;
    UTF-16 has many)? Read in chunks; the file is left at its start."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    raw.seek(0)
    try:
        while chunk := raw.read(_CHUNK):
            if "\x00" in decoder.decode(chunk):
                return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        raw.seek(0)
    return True


def csv_encoding(raw: IO[bytes]) -> str | None:
    """The encoding a CSV list was saved in: UTF-8 (a BOM allowed), else GB18030 (GBK,
    GB2312), each checked strictly over the whole file; None when neither reads it."""
    if raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
        return "utf-8-sig" if _reads_as(raw, "utf-8-sig") else None
    return next((e for e in CSV_ENCODINGS if _reads_as(raw, e)), None)


def _csv_rows(raw: IO[bytes], encoding: str) -> Iterator[Sequence[Any]]:
    text = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")
    try:
        yield from csv.reader(text)
    finally:
        text.detach()


def _xlsx_rows(raw: IO[bytes]) -> Iterator[Sequence[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(raw, read_only=True, data_only=True)
    except Exception as exc:
        raise errors.import_unreadable("不是有效的 XLSX 文件") from exc
    try:
        sheet = book.worksheets[0]
        yield from sheet.iter_rows(values_only=True)
    finally:
        book.close()


def rows_of(raw: IO[bytes], filename: str) -> Iterator[Sequence[Any]]:
    """The file's rows: XLSX by its zip signature (or name), else CSV in the encoding it was
    saved in (:func:`csv_encoding`); a CSV in none of them is a 422 before any row is read."""
    head = raw.read(4)
    raw.seek(0)
    if head == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        return _xlsx_rows(raw)
    encoding = csv_encoding(raw)
    if encoding is None:
        raise errors.import_unreadable("文件编码无法识别，请另存为 UTF-8 或 GB18030（GBK）编码的 CSV")
    return _csv_rows(raw, encoding)


_UPSERT = text(
    "INSERT INTO designations (uscc, designation) "
    "SELECT * FROM unnest(CAST(:u AS varchar[]), CAST(:d AS varchar[])) "
    "ON CONFLICT (uscc, designation) DO UPDATE SET imported_at = now()"
)


async def _flush(session: AsyncSession, batch: list[tuple[str, str]]) -> None:
    """One statement per batch: two arrays, unnested by the server (no per-row SQL)."""
    if not batch:
        return
    await session.execute(_UPSERT, {"u": [u for u, _ in batch], "d": [d for _, d in batch]})
    batch.clear()


async def import_rows(
    session: AsyncSession,
    rows: Iterator[Sequence[Any]],
    known: set[str],
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    seen: set[tuple[str, str]] = set()
    batch: list[tuple[str, str]] = []
    number = 0
    for number, cells in enumerate(rows, start=1):
        if progress:
            progress(1)
        if not any(str(c or "").strip() for c in cells):
            continue
        if number == 1 and rules.is_header(cells):
            continue
        uscc, designation, reason = rules.check_row(cells, known, seen)
        if reason:
            report.rejected_total += 1
            if len(report.rejected) < MAX_REJECTED_LISTED:
                report.rejected.append(
                    {"row": number, "uscc": uscc, "designation": designation, "reason": reason}
                )
            continue
        batch.append((uscc, designation))
        report.accepted += 1
        if len(batch) >= BATCH:
            await _flush(session, batch)
    await _flush(session, batch)
    return report
