"""The one CSV reader, on byte-exact files in the shapes real exports arrive in; each expectation is written from
the bytes, independently of the reader."""

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custpipe_assets.core.csv_reader import csv_file_status, read_csv_export

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
        (2, "C1", "7", None), (3, "C2", "10", None)
    ]
    assert read.file.row(0, named=True)["status"] == "ok"


def test_bom_spaces_case_order_and_trailing_blank_lines(tmp_path):
    content = b"\xef\xbb\xbf Loyalty_Score , CUSTOMER_ID \r\n 7 , C1 \r\n\"3\" ,C2\r\n\r\n\n\r\r\n"
    read = _read(tmp_path, content)
    assert read.rows.select("line_number", "customer_id", "loyalty_score").rows() == [(2, "C1", "7"), (3, "C2", "3")]
    assert read.file.row(0, named=True)["data_lines"] == 2


def test_quoted_separator_and_newline_stay_in_their_field_and_lines_count_physically(tmp_path):
    content = b'customer_id,loyalty_score\r\n"C1, the first","multi\r\nline"\r\nC2,5\r\n'
    read = _read(tmp_path, content)
    assert read.rows.select("line_number", "customer_id", "loyalty_score").rows() == [
        (2, "C1, the first", "multi\nline"), (4, "C2", "5")
    ]


def test_unreadable_records_are_kept_with_a_reason_and_never_swallow_their_neighbours(tmp_path):
    lines = [b"customer_id,loyalty_score", b"C1,7", b'C2,"open', b"C3,8", b"\xff\xfe,1", b"", b"C4,1,extra", b"C5", b"C6,2"]
    read = _read(tmp_path, b"\n".join(lines) + b"\n")
    assert read.rows.select("line_number", "read_issue", "customer_id").rows() == [
        (2, None, "C1"), (3, "unparseable", None), (4, None, "C3"), (5, "invalid_utf8", None),
        (6, "blank_line", None), (7, "too_many_fields", None), (8, "too_few_fields", None), (9, None, "C6"),
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


_FIELD = st.text(alphabet=st.sampled_from(list("ab ,;\"\n1")), max_size=6).map(str.strip)


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
