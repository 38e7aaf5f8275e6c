"""Property-based fuzzing of the CSV importers (meters, SIM cards, customers) and the brand OBIS list.

For any bytes or any CSV-shaped text: the importer either succeeds or raises the documented error
(``ImportRejected`` / ``ServiceError``); a rejected file writes nothing (no fleet row, no audit row); every
error names a line that exists in the file.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.extensions import db
from app.models import Area, AuditLog, Customer, Meter, Sim
from app.services import ServiceError
from app.services.brands import POINT_COLUMNS, points_from_csv
from app.services.csvio import decode, normalise_header
from app.services.fleet_import import (
    CUSTOMER_COLUMNS,
    METER_COLUMNS,
    SIM_COLUMNS,
    ImportRejected,
    import_customers,
    import_meters,
    import_sims,
)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

# Cells that reach the deep checks: valid identifiers and IPs, known brand/area names, and the nasty ones.
CELLS = st.one_of(
    st.sampled_from(["M1", "M2", "S1", "S2", "sec_brand", "SEC-AREA", "10.0.0.1", "::1", "4059", "0", "65536",
                     "dial_in", "dial-out", "active", "decommissioned", "0801000001", "a@b.test", "ACC-1",
                     "1.0.1.8.0.255", "1-0:1.8.0", "3", "2", "-3", "r", "rw", "x", "Energy", "kWh", "",
                     " ", '"', '""', "\ufeff", "\x00", "=cmd|' /C calc'!A0", "²", "٣", "1_0", "1e3", "-0",
                     "\u2028", "𝟘", "NaN"]),
    st.text(max_size=12),
)
ALL_NAMES = [n for c in METER_COLUMNS + SIM_COLUMNS + CUSTOMER_COLUMNS + POINT_COLUMNS for n in (c.name, *c.aliases)]
DELIMITERS = st.sampled_from([",", ";", "\t", "|"])
NEWLINES = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])


@st.composite
def header(draw, columns) -> list[str]:
    """Mostly a usable header for ``columns`` (every required column, some optional ones, any order and
    spelling), sometimes junk, so both the header check and the row checks get exercised."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.lists(st.one_of(st.sampled_from(ALL_NAMES), st.text(max_size=8)), min_size=1, max_size=9))
    names = [draw(st.sampled_from((c.name, *c.aliases))) for c in columns
             if c.required or draw(st.booleans())]
    names = [draw(st.sampled_from([n, n.upper(), f" {n} ", n.replace(" ", "_")])) for n in names]
    return draw(st.permutations(names + draw(st.lists(st.text(max_size=6), max_size=2))))


# Valid-looking values per column (plus digits that str.isdigit() accepts but int() does not, "²", and NUL, which
# PostgreSQL text cannot hold).
GOOD = {
    "Meter Number": ["M1", "M2", "SEC-M-A", "SEC-M-B"], "Concentrator ID": ["D1"], "Meter Type": ["sec_brand"],
    "Area": ["SEC-AREA", "Sec Area"], "SIM Number": ["S1", "S2", "S3"], "Sim Number": ["S1", "S2", "S3"],
    "Comm Mode": ["dial_in", "dial-out"], "Status": ["active", "installed"], "IP Address": ["10.0.0.3", "::1"],
    "Port": ["4059", "65535", "²", "٣"], "APN": ["internet", "inter\x00net"], "Customer Name": ["Ada", "A\x00da"],
    "Address": ["1 Road"],
    "Phone No": ["0801000001", "+234 801 000"], "Account Number": ["ACC-1", "SEC-A"], "Email": ["a@b.test"],
    "key": ["energy_import", "v1"], "name": ["Energy"], "obis": ["1.0.1.8.0.255", "1-0:1.8.0"],
    "class_id": ["3", "1", "²"], "attribute": ["2", "²"], "unit": ["kWh"], "scaler": ["-3", "0", "²"],
    "group": ["Energy"], "access": ["r", "x", "rw"], "method": ["1", "²"], "datatype": ["double-long-unsigned"],
}
CANONICAL = {normalise_header(n): c.name for c in METER_COLUMNS + SIM_COLUMNS + CUSTOMER_COLUMNS + POINT_COLUMNS
             for n in (c.name, *c.aliases)}


def cell(name: str):
    good = GOOD.get(CANONICAL.get(normalise_header(name), ""), [])
    return st.one_of(st.sampled_from(good), st.sampled_from(good), CELLS) if good else CELLS


@st.composite
def csv_text(draw, columns) -> str:
    """A CSV-shaped file: a header, then rows of mostly plausible, partly nasty cells, with any delimiter,
    newline and BOM."""
    delimiter, newline = draw(DELIMITERS), draw(NEWLINES)
    head = draw(header(columns))
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        row = [draw(cell(name)) for name in head]
        rows.append(row + draw(st.lists(CELLS, max_size=1)) if draw(st.integers(0, 9)) == 0 else row)
    lines = [delimiter.join(head)] + [delimiter.join(row) for row in rows]
    return draw(st.sampled_from(["", "\ufeff"])) + newline.join(lines) + draw(st.sampled_from(["", newline]))


def files(columns):
    """Raw bytes, or CSV text as str, UTF-8 or Windows-1252 bytes."""
    text = csv_text(columns)
    return st.one_of(st.binary(max_size=300), text, text.map(lambda t: t.encode("utf-8")),
                     text.map(lambda t: t.encode("cp1252", errors="replace")))


def _line_count(data: bytes | str) -> int:
    """Physical lines the way the csv reader counts them (at least one: an empty file is 'line 1')."""
    text = decode(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    return max(1, len(io.StringIO(text, newline="").readlines()))


def _counts() -> tuple[int, ...]:
    return tuple(db.session.execute(select(func.count()).select_from(m)).scalar() for m in
                 (Meter, Sim, Customer, AuditLog))


def _check_errors(exc: ServiceError, data) -> None:
    lines = _line_count(data)
    for error in exc.errors:
        line = error.get("line")
        assert isinstance(line, int) and 1 <= line <= lines, (error, lines)


@pytest.fixture
def importer_db(app, two_customers):
    """A fleet the rows can refer to: the brand ``sec_brand``, an area, two SIMs."""
    with app.app_context():
        db.session.add(Area(name="Sec Area", code="SEC-AREA"))
        db.session.add_all([Sim(number="S1", ip_address="10.0.0.1", port=4059),
                            Sim(number="S2", ip_address="10.0.0.2", port=4059)])
        db.session.commit()
        yield


def _fuzz_importer(importer, data) -> None:
    before = _counts()
    try:
        importer(data)
    except ImportRejected as exc:
        db.session.rollback()
        assert _counts() == before, "a rejected file wrote rows"
        assert exc.errors, "a rejection must list its problems"
        _check_errors(exc, data)
    except ServiceError as exc:  # documented, e.g. a conflict found by the database
        db.session.rollback()
        assert _counts() == before, "a rejected file wrote rows"
        _check_errors(exc, data)


@pytest.mark.parametrize("importer, columns", [
    (import_meters, METER_COLUMNS), (import_sims, SIM_COLUMNS), (import_customers, CUSTOMER_COLUMNS),
], ids=["meters", "sims", "customers"])
def test_importers_only_raise_documented_errors_and_write_nothing_on_reject(importer_db, importer, columns):
    @FUZZ
    @given(data=files(columns))
    def run(data):
        _fuzz_importer(importer, data)

    run()


def test_obis_list_only_raises_service_error_with_lines(app):
    @FUZZ
    @given(data=files(POINT_COLUMNS))
    def run(data):
        try:
            points = points_from_csv(data)
        except ServiceError as exc:
            assert exc.status == 422 and exc.errors
            _check_errors(exc, data)
        else:
            assert all(p.key and p.obis for p in points)

    with app.app_context():
        run()


def test_rejected_meter_file_names_every_bad_line(app, importer_db):
    """A concrete regression next to the properties: two bad rows among good ones; nothing is imported."""
    data = "Meter Number,Concentrator ID,Meter Type\nM1,D1,sec_brand\nbad number!,D1,sec_brand\nM3,D1,nope\n"
    with app.app_context():
        before = _counts()
        with pytest.raises(ImportRejected) as err:
            import_meters(data)
        db.session.rollback()
        assert _counts() == before
    assert sorted(e["line"] for e in err.value.errors) == [3, 4]


@pytest.mark.parametrize("columns", [METER_COLUMNS, SIM_COLUMNS, CUSTOMER_COLUMNS], ids=["meters", "sims", "customers"])
def test_a_streamed_file_reads_as_the_whole_file_does(columns):
    """Import jobs read a spooled file as a stream, in blocks: for any file the rows and problems are the ones of
    the same bytes read whole, with the file's small read blocks cutting UTF-8 characters and lines anywhere."""
    from app.services import csvio

    @FUZZ
    @given(data=files(columns).map(lambda d: d.encode() if isinstance(d, str) else d),
           block=st.integers(min_value=1, max_value=7))
    def run(data, block):
        whole = csvio.parse(data, columns)
        streamed = csvio.ParsedFile()
        previous, csvio.READ_BLOCK = csvio.READ_BLOCK, block
        try:
            rows = list(csvio.read(io.BufferedReader(io.BytesIO(data), buffer_size=8), columns, streamed))
        finally:
            csvio.READ_BLOCK = previous
        assert rows == whole.rows
        assert [str(e) for e in streamed.errors] == [str(e) for e in whole.errors]

    run()


@FUZZ
@given(rows=st.integers(min_value=0, max_value=30), at=st.integers(min_value=0, max_value=30),
       extra=st.integers(min_value=1, max_value=5000))
def test_a_cell_over_the_limit_is_one_line_error_wherever_it_is(rows, at, extra):
    """The limits: a cell one byte or more over 128 KiB, at any row, is a line error naming that row's line; the
    rows before it are still checked, none after it is read, and nothing raises."""
    from app.services import csvio

    at = min(at, rows)
    lines = ["Sim Number,IP Address,Port"] + [f"S{i},10.0.0.{i % 250},{4000 + i}" for i in range(rows)]
    lines.insert(at + 1, f"BIG,10.0.0.1,{'9' * (csvio.MAX_CELL + extra)}")
    parsed = csvio.ParsedFile()
    read = list(csvio.read(io.BytesIO("\n".join(lines).encode()), SIM_COLUMNS, parsed))
    assert len(read) == at and parsed.unreadable
    assert [(e.line, e.reason) for e in parsed.errors] == [(at + 2, "a cell is longer than 128 KiB")]
