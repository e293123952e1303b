"""The one CSV reader, on byte-exact files in the shapes real exports arrive in; each expectation is written from
the bytes, independently of the reader."""

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from custpipe_assets.core import csv_reader
from custpipe_assets.core.csv_reader import _read_csv_export_exact, csv_file_status, read_csv_export, read_csv_exports

COLUMNS = ("customer_id", "loyalty_score")


def _read(tmp_path, content: bytes, columns=COLUMNS, separator=","):
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    return read_csv_export(path, source_file="export.csv", columns=columns, separator=separator)


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r\r\n", b"\r"])
def test_every_line_ending_reads_one_record_per_line(tmp_path, line_end):
    content = line_end.join([b"customer_id,loyalty_score", b"C1,7", b"C2,10", b""])
    read = _read(tmp_path, content)
    assert read.rows.select("line_number", "customer_id", "loyalty_score", "read_issue").rows() == [
        (2, "C1", "7", None),
        (3, "C2", "10", None),
    ]
    assert read.file.row(0, named=True)["status"] == "ok"


def test_bom_spaces_case_order_and_trailing_blank_lines(tmp_path):
    content = b'\xef\xbb\xbf Loyalty_Score , CUSTOMER_ID \r\n 7 , C1 \r\n"3" ,C2\r\n\r\n\n\r\r\n'
    read = _read(tmp_path, content)
    assert read.rows.select("line_number", "customer_id", "loyalty_score").rows() == [(2, "C1", "7"), (3, "C2", "3")]
    assert read.file.row(0, named=True)["data_lines"] == 2


def test_quoted_separator_and_newline_stay_in_their_field_and_lines_count_physically(tmp_path):
    content = b'customer_id,loyalty_score\r\n"C1, the first","multi\r\nline"\r\nC2,5\r\n'
    read = _read(tmp_path, content)
    assert read.rows.select("line_number", "customer_id", "loyalty_score").rows() == [
        (2, "C1, the first", "multi\nline"),
        (4, "C2", "5"),
    ]


def test_unreadable_records_are_kept_with_a_reason_and_never_swallow_their_neighbours(tmp_path):
    lines = [
        b"customer_id,loyalty_score",
        b"C1,7",
        b'C2,"open',
        b"C3,8",
        b"\xff\xfe,1",
        b"",
        b"C4,1,extra",
        b"C5",
        b"C6,2",
    ]
    read = _read(tmp_path, b"\n".join(lines) + b"\n")
    assert read.rows.select("line_number", "read_issue", "customer_id").rows() == [
        (2, None, "C1"),
        (3, "unparseable", None),
        (4, None, "C3"),
        (5, "invalid_utf8", None),
        (6, "blank_line", None),
        (7, "too_many_fields", None),
        (8, "too_few_fields", None),
        (9, None, "C6"),
    ]
    assert read.rows.filter(read_issue="unparseable")["raw_line"].to_list() == ['C2,"open']


def test_file_problems_are_reported_not_raised(tmp_path):
    assert _read(tmp_path, b"").file.row(0, named=True)["status"] == "empty_file"
    assert _read(tmp_path, b"customer_id,loyalty_score\r\r\n\r\r\n").file.row(0, named=True)["status"] == "header_only"
    wrong = _read(tmp_path, b"id;score\nC1;3\n")
    assert wrong.file.row(0, named=True)["status"] == "wrong_header"
    assert wrong.rows.select("line_number", "read_issue", "raw_line").rows() == [(2, "wrong_header", "C1;3")]
    assert read_csv_export(tmp_path / "absent.csv", source_file="absent.csv", columns=COLUMNS).rows.is_empty()


def test_the_cheap_status_agrees_with_the_full_read(tmp_path):
    for content in (b"", b"customer_id,loyalty_score\n", b"customer_id,loyalty_score\n\nC1,2\n", b"a;b\n1;2\n"):
        path = tmp_path / "export.csv"
        path.write_bytes(content)
        full = read_csv_export(path, source_file="export.csv", columns=COLUMNS).file.drop("data_lines")
        cheap = csv_file_status(path, source_file="export.csv", columns=COLUMNS).drop("data_lines")
        assert cheap.equals(full), content


_FIELD = st.text(alphabet=st.sampled_from(list('ab ,;"\n1')), max_size=6).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(_FIELD, _FIELD), max_size=6), line_end=st.sampled_from(["\n", "\r\n", "\r\r\n"]))
def test_whatever_python_csv_writes_reads_back(tmp_path_factory, rows, line_end):
    """Round trip against an independent writer: csv.writer's quoting, any line end, fields the reader strips."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=line_end).writerows([list(COLUMNS), *rows])
    path = tmp_path_factory.mktemp("round_trip") / "export.csv"
    path.write_bytes(buffer.getvalue().encode())
    read = read_csv_export(path, source_file="export.csv", columns=COLUMNS)
    # csv.writer writes an all-empty row as `,`: a record of empty fields, so every row comes back
    assert read.rows.select("customer_id", "loyalty_score").rows() == rows
    assert read.rows["read_issue"].null_count() == len(rows)


# --- Every shape the issue lists, mixed in one file, with the expected rows written out from the bytes. ---


def _rows(read):
    return read.rows.select("line_number", "read_issue", "raw_line", *COLUMNS).rows()


def test_every_line_ending_mixed_in_one_file_and_no_final_line_end(tmp_path):
    # physical lines: 1 header (\n), 2 C1 (\r\n), 3 C2 (\r\r\n), 4 C3 (lone \r), 5 C4 (\n), 6 C5 (no line end)
    content = b"customer_id,loyalty_score\nC1,1\r\nC2,2\r\r\nC3,3\rC4,4\nC5,5"
    read = _read(tmp_path, content)
    assert _rows(read) == [
        (2, None, "C1,1", "C1", "1"),
        (3, None, "C2,2", "C2", "2"),
        (4, None, "C3,3", "C3", "3"),
        (5, None, "C4,4", "C4", "4"),
        (6, None, "C5,5", "C5", "5"),
    ]
    assert read.file.rows() == [("export.csv", 5, "ok", "customer_id,loyalty_score", "")]


def test_a_quoted_newline_of_any_kind_stays_in_its_field_and_the_next_record_keeps_its_physical_line(tmp_path):
    # line 2 opens a quote closed on line 5: its \r\r\n, lone \r and \r\n each end one physical line (read as \n)
    content = b'customer_id,loyalty_score\r"a\r\r\nb\rc\r\nd",1\rC2,2\r'
    assert _rows(_read(tmp_path, content)) == [
        (2, None, '"a\nb\nc\nd",1', "a\nb\nc\nd", "1"),
        (6, None, "C2,2", "C2", "2"),
    ]


def test_quoted_delimiter_escaped_quotes_and_newline_in_one_record(tmp_path):
    content = b'customer_id,loyalty_score\r\r\n"C1, ""the"" first","7,\r\r\n5"\r\r\nC2,3\r\r\n'
    assert _rows(_read(tmp_path, content)) == [
        (2, None, '"C1, ""the"" first","7,\n5"', 'C1, "the" first', "7,\n5"),
        (4, None, "C2,3", "C2", "3"),
    ]


def test_another_separator_with_bom_quoted_header_and_revolve_line_ends(tmp_path):
    content = b'\xef\xbb\xbf"customer_id";"loyalty_score"\r\r\n"C1;x";7\r\r\nC2 ; "8;9"\r\r\n'
    read = _read(tmp_path, content, separator=";")
    assert _rows(read) == [(2, None, '"C1;x";7', "C1;x", "7"), (3, None, 'C2 ; "8;9"', "C2", "8;9")]
    assert read.file.rows() == [("export.csv", 2, "ok", '"customer_id";"loyalty_score"', "")]


def test_spaces_and_tabs_around_header_names_plain_and_quoted_fields(tmp_path):
    content = b' customer_id\t,  loyalty_score \r\n  "C1, x"  ,\t7 \r\n\tC2\t, "8" \r\n'
    read = _read(tmp_path, content)
    assert _rows(read) == [
        (2, None, '  "C1, x"  ,\t7 ', "C1, x", "7"),
        (3, None, '\tC2\t, "8" ', "C2", "8"),
    ]
    assert read.file.row(0, named=True)["status"] == "ok"


def test_extra_columns_in_any_order_are_ignored_and_named(tmp_path):
    content = b"Region,LOYALTY_SCORE,Customer_Id\r\r\nSP,9,C1\r\r\n"
    read = _read(tmp_path, content)
    assert _rows(read) == [(2, None, "SP,9,C1", "C1", "9")]
    assert read.file.row(0, named=True)["detail"] == "extra column(s) ignored: region"


def test_blank_lines_inside_are_kept_as_records_and_blank_trailing_lines_of_any_kind_are_not(tmp_path):
    # line 3 is empty and line 4 holds spaces: both are inside the data, so kept (blank_line) for quarantine;
    # lines 6-9 (empty, spaces, a tab, spaces without a line end) trail the data and are not records
    content = b"customer_id,loyalty_score\r\r\nC1,1\r\r\n\r\r\n   \nC2,2\r\n\r\n  \r\t\r\r\n  "
    read = _read(tmp_path, content)
    assert _rows(read) == [
        (2, None, "C1,1", "C1", "1"),
        (3, "blank_line", "", None, None),
        (4, "blank_line", "   ", None, None),
        (5, None, "C2,2", "C2", "2"),
    ]
    assert read.file.row(0, named=True)["data_lines"] == 4


@pytest.mark.parametrize(
    "content",
    [b"\xef\xbb\xbfcustomer_id,loyalty_score\r", b"\xef\xbb\xbfcustomer_id,loyalty_score\r\r\n \r\n\t\r\r\n"],
)
def test_a_bom_and_a_header_followed_by_blank_lines_only_is_header_only(tmp_path, content):
    read = _read(tmp_path, content)
    assert read.rows.is_empty()
    assert read.file.rows() == [("export.csv", 0, "header_only", "customer_id,loyalty_score", "")]


def test_a_stray_quote_in_an_unquoted_field_costs_its_own_line_only(tmp_path):
    # lines 2 and 4 each hold one stray quote (an inch mark): together they would pair up and look like a quoted
    # field spanning lines 2-4, which swallowed the good record on line 3; each is unreadable alone instead
    lines = [b"customer_id,loyalty_score", b'C1,5" screen', b"C2,7", b'C3,6" x', b"C4,1"]
    read = _read(tmp_path, b"\r\r\n".join(lines) + b"\r\r\n")
    assert _rows(read) == [
        (2, "unparseable", 'C1,5" screen', None, None),
        (3, None, "C2,7", "C2", "7"),
        (4, "unparseable", 'C3,6" x', None, None),
        (5, None, "C4,1", "C4", "1"),
    ]


def test_invalid_utf8_inside_a_quoted_multiline_field_is_unread_not_replaced(tmp_path):
    # the record spans lines 2-3 and its second line is not UTF-8: read as one line is (invalid_utf8), not as
    # a value holding U+FFFD replacement characters
    content = b'customer_id,loyalty_score\n"C1\n\xff",7\nC2,8\n'
    read = _read(tmp_path, content)
    assert read.rows.select("line_number", "read_issue", *COLUMNS).rows() == [
        (2, "invalid_utf8", None, None),
        (4, None, "C2", "8"),
    ]


def test_a_quote_never_closed_in_the_last_record_leaves_the_lines_after_it_readable(tmp_path):
    content = b'customer_id,loyalty_score\r\nC1,1\r\n"C2,2\r\nC3,3\r\nC4,4'
    assert _rows(_read(tmp_path, content)) == [
        (2, None, "C1,1", "C1", "1"),
        (3, "unparseable", '"C2,2', None, None),
        (4, None, "C3,3", "C3", "3"),
        (5, None, "C4,4", "C4", "4"),
    ]


def test_several_files_keep_each_its_own_name_and_line_numbers(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(b"customer_id,loyalty_score\r\r\nC1,1\r\r\n")
    second.write_bytes(b"\xef\xbb\xbfloyalty_score,customer_id\n\nC2\n2,C3\n")
    read = read_csv_exports([(first, "revolve/a.csv"), (second, "revolve/b.csv")], columns=COLUMNS)
    assert read.rows.select("source_file", "line_number", "read_issue", *COLUMNS).rows() == [
        ("revolve/a.csv", 2, None, "C1", "1"),
        ("revolve/b.csv", 2, "blank_line", None, None),
        ("revolve/b.csv", 3, "too_few_fields", None, None),
        ("revolve/b.csv", 4, None, "C3", "2"),
    ]
    assert read.file.select("source_file", "data_lines", "status").rows() == [
        ("revolve/a.csv", 1, "ok"),
        ("revolve/b.csv", 3, "ok"),
    ]


# --- The fast path against the exact one (csv module, record by record) on random messy files. ---

# What a line is made of: text (some of it long), spaces and tabs, both separators, quotes (lone and doubled),
# whitespace that str.strip() removes but a byte-level or Rust strip might not (\x1c, U+3000, NBSP), U+FFFD, NUL,
# and bytes that are not UTF-8 (a lone continuation byte, a truncated sequence, an encoded surrogate).
_PIECES = [
    *(b"a", b"C1", b"0123456789", b" ", b"\t", b",", b";", b'"', b'""', b"\x1c", b"\x00"),
    *("\u3000".encode(), "\xa0".encode(), "é".encode(), "\ufffd".encode()),
    *(b"\xff", b"\xc3", b"\xed\xa0\x80"),
]
_LINE_ENDS = [b"\n", b"\r\n", b"\r\r\n", b"\r", b"\r\r\r\n"]
# an unquoted field (a separator in it would be one more field: the field count is drawn instead)
_TEXT = st.lists(
    st.sampled_from([b"a", b"C1", b"7", b"0123456789", b" ", b"\t", b"\x1c", "é".encode(), "\u3000".encode()]),
    max_size=4,
).map(b"".join)


@st.composite
def _quoted(draw) -> bytes:
    """A quoted field that may hold separators, escaped quotes and line ends of any kind, spaces around it."""
    inside = draw(st.lists(st.one_of(_TEXT, st.sampled_from([b",", b";", b'""', *_LINE_ENDS])), max_size=4))
    return draw(st.sampled_from([b"", b" "])) + b'"' + b"".join(inside) + b'"' + draw(st.sampled_from([b"", b" "]))


@st.composite
def _line(draw, separator: bytes, width: int) -> bytes:
    """A well-formed record (mostly `width` fields, some quoted), a blank line, or bytes in any order."""
    kind = draw(st.sampled_from(["record"] * 6 + ["blank", "pieces"]))
    if kind == "blank":
        return draw(st.sampled_from([b"", b" ", b"\t ", "\u3000".encode(), b"\x1c"]))
    if kind == "pieces":
        return b"".join(draw(st.lists(st.sampled_from(_PIECES), max_size=8)))
    count = draw(st.one_of(st.just(width), st.just(width), st.integers(1, width + 1)))
    quoted = draw(st.lists(st.sampled_from([False] * 4 + [True]), min_size=count, max_size=count))  # 1 in 5
    return separator.join(draw(_quoted() if quote else _TEXT) for quote in quoted)


@st.composite
def _messy_export(draw) -> tuple[bytes, tuple[str, ...], str]:
    """(file content, columns, separator): BOM or not, a header in any order/case/spacing (extra, quoted or
    missing columns), records of every kind, any line end after each, blank trailing lines or none."""
    columns = draw(st.sampled_from([COLUMNS, ("customer_id", "loyalty_score", "region")]))
    separator = draw(st.sampled_from([",", ";"]))
    names = list(draw(st.permutations(columns)))
    if draw(st.booleans()):
        names.append("extra")
    if draw(st.integers(0, 9)) == 0:
        names.pop(0)  # a column missing: wrong_header
    names = [draw(st.sampled_from([name, name.upper(), f" {name} ", f'"{name}"'])) for name in names]
    header = separator.join(names).encode()
    lines = [header, *draw(st.lists(_line(separator.encode(), len(names)), max_size=20))]
    lines += draw(st.lists(st.sampled_from([b"", b" ", b"\t"]), max_size=3))  # blank trailing lines
    ends = [draw(st.sampled_from(_LINE_ENDS)) for _ in lines]
    if draw(st.booleans()):
        ends[-1] = b""  # no line end after the last line
    bom = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf"]))
    return bom + b"".join(line + end for line, end in zip(lines, ends, strict=True)), columns, separator


@settings(max_examples=400, deadline=None)
@given(export=_messy_export(), field_limit=st.sampled_from([None, None, 16]), max_lines=st.sampled_from([50, 2]))
def test_the_fast_path_reads_every_messy_file_exactly_as_the_record_by_record_path(
    tmp_path_factory, export, field_limit, max_lines
):
    """Same rows and file report, to the dtype, whatever the bytes: also with a small csv field size limit (a
    longer field is `unparseable`; the header's still fit) and a tiny MAX_LINES_PER_RECORD (a quote still open
    after it is a broken quote)."""
    content, columns, separator = export
    path = tmp_path_factory.mktemp("messy") / "export.csv"
    path.write_bytes(content)
    default_limit, default_max_lines = csv.field_size_limit(), csv_reader.MAX_LINES_PER_RECORD
    try:
        csv.field_size_limit(field_limit or default_limit)
        csv_reader.MAX_LINES_PER_RECORD = max_lines
        exact = _read_csv_export_exact(path, source_file="export.csv", columns=columns, separator=separator)
        fast = read_csv_export(path, source_file="export.csv", columns=columns, separator=separator)
    finally:
        csv.field_size_limit(default_limit)
        csv_reader.MAX_LINES_PER_RECORD = default_max_lines
    assert_frame_equal(fast.rows, exact.rows)
    assert_frame_equal(fast.file, exact.file)


def test_the_fast_path_strips_exactly_what_str_strip_strips():
    """Its character set is built from the code points below U+3001 only: no whitespace lies above."""
    every_space = "".join(char for char in map(chr, range(0x110000)) if char.isspace())
    assert every_space == csv_reader._WHITESPACE
