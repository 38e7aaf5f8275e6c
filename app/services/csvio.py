"""Reading the CSV files that spreadsheets really export, and writing CSV back.

Accepts UTF-8 with or without BOM (falling back to Windows-1252), ``,`` ``;`` or tab
delimiters, header names in any case and spacing, and blank lines anywhere. Every problem
is reported by line number, column and reason.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

MAX_ERRORS = 1000
READ_BLOCK = 1 << 20  # bytes decoded between two yields of the event loop
YIELD_EVERY = 50  # rows parsed between two looks at the clock (``cooperate``)
YIELD_SECONDS = 0.02  # the longest a long-running loop keeps the event loop before it yields
MAX_CELL = csv.field_size_limit()  # 128 KiB: a longer cell is refused, not a 500
# A cell a spreadsheet would run as a formula; exports prefix it with ' (and imports drop that prefix again).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?(\d[\d ]*)?[.,]?\d+([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Column:
    """One column of an import format."""

    name: str
    required: bool = True
    aliases: tuple[str, ...] = ()
    check: Callable[[str], str | None] | None = None  # returns an error reason or None


@dataclass
class RowError:
    """A problem in a file, at a line and column."""

    line: int
    column: str | None
    reason: str
    value: str | None = None

    def as_dict(self) -> dict:
        """JSON-friendly form."""
        return {"line": self.line, "column": self.column, "reason": self.reason, "value": self.value}

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column '{self.column}'" if self.column else "")
        return f"{where}: {self.reason}" + (f" ({self.value!r})" if self.value else "")


@dataclass
class ParsedFile:
    """Rows of a CSV file keyed by canonical column names, with their line numbers."""

    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    unreadable: bool = False  # no usable header: row checks would only add noise

    def error(self, line: int, column: str | None, reason: str, value: str | None = None) -> None:
        """Record a problem (the list is capped so a broken 1 GB file can't exhaust memory)."""
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(line, column, reason, value))


def normalise_header(name: str) -> str:
    """``' Meter_No. '`` → ``'meter no'``: the form headers are compared in."""
    name = name.replace("\ufeff", "").strip().lower()
    name = re.sub(r"[\s_\-\.]+", " ", name)
    return name.strip()


def decode(data: bytes) -> str:
    """Bytes of an uploaded file as text (UTF-8 with or without BOM, else Windows-1252)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


_last_yield = [0.0]


def cooperate() -> None:
    """Let other work run when this greenlet has had the loop for ``YIELD_SECONDS``: cheap enough to call every
    few rows. Under gevent's monkey patching ``time.sleep`` yields to the event loop (web requests, sockets and meter
    I/O go on during a long import); a real (1 ms) sleep, because ``sleep(0)`` runs ready greenlets but lets timers
    and sockets wait. In a plain process it releases the GIL."""
    now = time.monotonic()
    if now - _last_yield[0] >= YIELD_SECONDS:
        time.sleep(0.001)
        _last_yield[0] = time.monotonic()


def encoding_of(stream: BinaryIO) -> str:
    """``utf-8-sig`` when the whole stream decodes as UTF-8, else ``cp1252``; read in blocks, yielding between them,
    and rewound."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    stream.seek(0)
    try:
        while block := stream.read(READ_BLOCK):
            decoder.decode(block)
            cooperate()
        decoder.decode(b"", final=True)
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "cp1252"
    finally:
        stream.seek(0)


def open_text(source: bytes | str | BinaryIO) -> TextIO:
    """A text stream over a file's bytes, a string or a binary file (read incrementally, never whole)."""
    if isinstance(source, str):
        return io.StringIO(source.lstrip("\ufeff"), newline="")
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    encoding = encoding_of(stream)
    return io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line best."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def parse(data: bytes | str | BinaryIO, columns: list[Column]) -> ParsedFile:
    """Parse a whole (small) file against a column spec into a list of rows; see ``read`` for large files."""
    result = ParsedFile()
    result.rows = list(read(data, columns, result))
    return result


def read(source: bytes | str | BinaryIO, columns: list[Column], result: ParsedFile) -> Iterator[tuple[int, dict]]:
    """Stream the rows of a file as ``(line, {column: value})``, recording every problem in ``result``; header
    errors stop before any row. Yields the event loop every ``YIELD_EVERY`` rows, so a file of any size neither
    sits in memory nor holds the process."""
    text = open_text(source)
    try:
        first = next((line for line in text if line.strip()), None)
        if first is None:
            result.error(1, None, "the file is empty")
            result.unreadable = True
            return
        text.seek(0)
        yield from _read_rows(csv.reader(text, delimiter=sniff_delimiter(first)), columns, result)
    finally:
        if isinstance(source, bytes | str):
            text.close()
        else:
            text.detach()  # the caller's file stays open (a second pass re-reads it)


def _read_rows(reader, columns: list[Column], result: ParsedFile) -> Iterator[tuple[int, dict]]:
    header: list[str] | None = None
    index: dict[str, int] = {}
    for count, raw in enumerate(_rows(reader, result)):
        if count % YIELD_EVERY == 0:
            cooperate()
        line = reader.line_num
        if not any(cell.strip() for cell in raw):
            continue
        if header is None:
            header = raw
            index = _map_header(raw, columns, line, result)
            if result.errors:
                result.unreadable = True
                return
            continue
        if len(raw) > len(header) and any(c.strip() for c in raw[len(header):]):
            result.error(line, None, f"{len(raw)} fields but the header has {len(header)}")
            continue
        row = {}
        for col in columns:
            pos = index.get(col.name)
            value = unescape_formula(raw[pos].strip()).strip() if pos is not None and pos < len(raw) else ""
            if not value:
                if col.required:
                    result.error(line, col.name, "is required")
                row[col.name] = ""
                continue
            reason = "contains a NUL character" if "\x00" in value else col.check(value) if col.check else None
            if reason:
                result.error(line, col.name, reason, value)
            row[col.name] = value
        yield line, row
    if header is None:
        result.error(1, None, "the file has no header line")
        result.unreadable = True


def _rows(reader, result: ParsedFile) -> Iterator[list[str]]:
    """The reader's rows; a malformed file (a cell over ``MAX_CELL``) ends the read with a line error at the first
    line of the record that could not be read."""
    ended = 0  # the line the last record read ended on
    try:
        for row in reader:
            ended = reader.line_num
            yield row
    except csv.Error as exc:
        reason = (f"a cell is longer than {MAX_CELL // 1024} KiB" if "field larger" in str(exc)
                  else f"unreadable CSV ({exc})")
        result.error(ended + 1, None, reason)
        result.unreadable = True


def neutralise_formula(value):
    """A text cell that a spreadsheet would run as a formula (``=1+1``, ``@SUM(..)``, ``-2+3``) gets a leading
    ``'``; numbers (``-5``, ``+254 700``) and other values are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def unescape_formula(value: str) -> str:
    """The inverse of ``neutralise_formula`` for imports, so exported files import unchanged."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def _map_header(raw: list[str], columns: list[Column], line: int, result: ParsedFile) -> dict[str, int]:
    positions = {normalise_header(h): i for i, h in enumerate(raw) if h.strip()}
    index = {}
    for col in columns:
        names = [normalise_header(n) for n in (col.name, *col.aliases)]
        pos = next((positions[n] for n in names if n in positions), None)
        if pos is not None:
            index[col.name] = pos
        elif col.required:
            result.error(line, col.name, "column is missing from the header")
    return index


def write_rows(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """Stream CSV text chunk by chunk (header first), for downloads of any size; formula cells neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutralise_formula(h) for h in header])
    for i, row in enumerate(rows, 1):
        writer.writerow(["" if v is None else neutralise_formula(v) for v in row])
        if i % 2000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
