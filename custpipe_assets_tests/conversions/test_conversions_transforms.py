"""Bronze reading, the week of every landed line, silver cleaning, country codes and the per-week accounting, on
hand-made files with known answers and on the generated sample checked against DuckDB SQL over the raw files."""

import os
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pycountry
import pytest

from custpipe_assets.conversions.countries import (
    COUNTRY_ALIASES,
    _unambiguous_fuzzy_match,
    country_code,
    unresolved_country_names,
)
from custpipe_assets.conversions.formats import BROKER_COLUMNS, CONVERSION_COLUMNS
from custpipe_assets.conversions.transforms import (
    FILES_SCHEMA,
    bronze_schema,
    clean_broker_registrations,
    clean_conversions,
    clean_page_category_mapping,
    file_inventory,
    read_batch_folder,
    read_broker_registrations,
    read_conversions,
    read_delimited_file,
    read_page_category_mapping,
    unmapped_measurement_categories,
)
from custpipe_assets.core.quarantine import QUARANTINE_SCHEMA

CONVERSIONS_HEADER = "id;session_id;country_name;is_mobile;ui_element;created_at;measurement_category"
BROKER_HEADER = "timestamp,country_residency,ip_country,important_score"
MAPPING = pl.DataFrame(
    {"page_category": ["broker_review"], "measurement_category": ["review_page"]},
)


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def _unreadable(read) -> list[tuple]:
    unread = read.rows.filter(pl.col("read_issue").is_not_null())
    return sorted(unread.select("source_file", "line_number", "read_issue").iter_rows(), key=str)


def _conversions_bronze(*records: tuple[str, ...], source_file: str = "conversions/a.csv") -> pl.DataFrame:
    rows = [[source_file, number, ";".join(record), None, *record] for number, record in enumerate(records, start=2)]
    return pl.DataFrame(rows, schema=bronze_schema(CONVERSION_COLUMNS), orient="row")


def _broker_bronze(*rows: tuple[str, int, str, str, str, str]) -> pl.DataFrame:
    lines = [[file, line, ",".join(fields), None, *fields] for file, line, *fields in rows]
    return pl.DataFrame(lines, schema=bronze_schema(BROKER_COLUMNS), orient="row")


# --- bronze reading -------------------------------------------------------------------------------------------


def test_empty_file_header_only_file_and_wrong_separator_file_are_reported_not_raised(tmp_path):
    folder = tmp_path / "conversions"
    _write(folder, "a_empty.csv", "")
    _write(folder, "b_header_only.csv", CONVERSIONS_HEADER + "\n")
    _write(folder, "c_commas.csv", CONVERSIONS_HEADER.replace(";", ",") + "\n1,s,Germany,1,x,2018-09-03 10:00:00,y\n")
    read = read_batch_folder(folder, separator=";", columns=CONVERSION_COLUMNS)

    assert read.rows.schema == pl.Schema(bronze_schema(CONVERSION_COLUMNS))
    assert read.files.select("source_file", "data_lines", "status").rows() == [
        ("conversions/a_empty.csv", 0, "empty_file"),
        ("conversions/b_header_only.csv", 0, "header_only"),
        ("conversions/c_commas.csv", 1, "wrong_header"),
    ]
    # the one data line is kept as landed, unsplit, with why it could not be read
    assert _unreadable(read) == [("conversions/c_commas.csv", 2, "wrong_header")]
    assert read.rows.get_column("raw_line").item() == "1,s,Germany,1,x,2018-09-03 10:00:00,y"
    assert read.rows.get_column("id").item() is None


def test_broken_lines_become_quarantine_rows_with_their_line_numbers(tmp_path):
    content = (
        b"\xef\xbb\xbf" + BROKER_HEADER.encode() + b"\r\n"  # BOM and CRLF, as spreadsheets write them
        b"1536000000,,Germany,5\r\n"  # line 2: fine
        b"1536000001,,Germany,5,extra\r\n"  # line 3: too many fields
        b"1536000002,Germany\r\n"  # line 4: too few
        b"\r\n"  # line 5: blank
        b'1536000003,"Korea, Republic of",Germany,"7\r\n'  # line 6: unclosed quote
        b"1536000004,,\xff\xfe,5\r\n"  # line 7: not UTF-8
        b'1536000005,"Korea, Republic of","Korea, Republic of",#REF!\r\n'  # line 8: quoted separators are fine
    )
    path = _write(tmp_path / "broker_data", "x.csv", content)
    read = read_delimited_file(path, separator=",", columns=BROKER_COLUMNS, source_file="broker_data/x.csv")
    readable = read.rows.filter(pl.col("read_issue").is_null()).drop("raw_line", "read_issue")
    assert readable.rows() == [
        ("broker_data/x.csv", 2, "1536000000", "", "Germany", "5"),
        ("broker_data/x.csv", 8, "1536000005", "Korea, Republic of", "Korea, Republic of", "#REF!"),
    ]
    assert _unreadable(read) == [
        ("broker_data/x.csv", 3, "too_many_fields"),
        ("broker_data/x.csv", 4, "too_few_fields"),
        ("broker_data/x.csv", 5, "blank_line"),
        ("broker_data/x.csv", 6, "unparseable"),
        ("broker_data/x.csv", 7, "invalid_utf8"),
    ]
    assert read.rows.filter(pl.col("line_number") == 3).get_column("raw_line").item() == "1536000001,,Germany,5,extra"
    assert read.files.select("source_file", "data_lines", "status").rows() == [("broker_data/x.csv", 7, "ok")]
    assert read.rows.height == 7  # every data line is a row


def test_header_columns_may_come_in_any_order_and_case(tmp_path):
    path = _write(tmp_path, "m.csv", "Measurement_Category ; PAGE_CATEGORY\nreview_page;broker_review\n")
    read = read_delimited_file(
        path, separator=";", columns=("page_category", "measurement_category"), source_file="m.csv"
    )
    assert read.rows.select("page_category", "measurement_category").rows() == [("broker_review", "review_page")]


def test_absent_sources_give_empty_frames_with_their_schemas(tmp_path):
    for read in (read_conversions(tmp_path), read_broker_registrations(tmp_path), read_page_category_mapping(tmp_path)):
        assert read.rows.is_empty() and read.files.is_empty()
        assert read.files.schema == pl.Schema(FILES_SCHEMA)
    assert read_conversions(tmp_path).rows.schema["week_start"] == pl.Date


# --- silver conversions -----------------------------------------------------------------------------------------


def test_conversions_are_typed_and_bad_rows_quarantined_with_reasons():
    bronze = _conversions_bronze(
        ("10", "s1", " United States ", "1", "top_cta", "2018-09-09 23:59:59", "review_page"),  # 2: kept
        ("11", "s2", "Czech Republic", "", "", "2018-09-10 00:00:00", "'; DROP TABLE x;--"),  # 3: kept
        ("x12", "s3", "Germany", "1", "top_cta", "2018-09-10 00:00:00", "review_page"),  # 4: invalid id
        ("13", "s4", "Germany", "1", "top_cta", "2018-09-31 25:61:00", "review_page"),  # 5: invalid time
        ("14", "s5", "Germany", "maybe", "top_cta", "2018-09-10 00:00:00", "review_page"),  # 6: invalid flag
        ("15", "s6", "Kosovo", "FALSE", "top_cta", "2018-09-10 00:00:01", "review_page"),  # 7: kept
    )
    cleaned = clean_conversions(bronze, MAPPING)
    assert cleaned.rows.select(
        "conversion_id",
        "created_at",
        "week_start",
        "country_name",
        "country_code",
        "is_mobile",
        "ui_element",
        "measurement_category",
        "page_category",
        "line_number",
    ).rows() == [
        (
            10,
            datetime(2018, 9, 9, 23, 59, 59, tzinfo=UTC),
            date(2018, 9, 3),
            "United States",
            "US",
            True,
            "top_cta",
            "review_page",
            "broker_review",
            2,
        ),
        (
            11,
            datetime(2018, 9, 10, tzinfo=UTC),
            date(2018, 9, 10),
            "Czech Republic",
            "CZ",
            None,
            None,
            "'; DROP TABLE x;--",
            None,
            3,
        ),
        (
            15,
            datetime(2018, 9, 10, 0, 0, 1, tzinfo=UTC),
            date(2018, 9, 10),
            "Kosovo",
            None,
            False,
            "top_cta",
            "review_page",
            "broker_review",
            7,
        ),
    ]
    # the core quarantine contract (this bronze has no week_start, so neither has its quarantine): a line is the
    # record (no position); only a duplicate has a detail
    assert cleaned.quarantine.schema == QUARANTINE_SCHEMA
    assert cleaned.quarantine.select("line_number", "position", "reason", "detail").rows() == [
        (4, None, "invalid_id", None),
        (5, None, "invalid_created_at", None),
        (6, None, "invalid_is_mobile", None),
    ]
    assert unmapped_measurement_categories(cleaned.rows).rows() == [("'; DROP TABLE x;--", 1)]
    assert unresolved_country_names(cleaned.rows, "country_name", "country_code").rows() == [("Kosovo", 1)]


def test_duplicate_conversion_ids_keep_the_first_landed_row():
    first_file = _conversions_bronze(
        ("20", "s", "Germany", "1", "top_cta", "2018-09-03 10:00:00", "review_page"),
        ("20", "s", "Austria", "1", "top_cta", "2018-09-03 10:00:00", "review_page"),  # split country row
        source_file="conversions/conversions_2018-09-03.csv",
    )
    second_file = _conversions_bronze(
        ("20", "s", "Germany", "1", "top_cta", "2018-09-03 10:00:00", "review_page"),  # re-sent in the next batch
        source_file="conversions/conversions_2018-09-17.csv",
    )
    # landing order, not frame order, decides: hand the later file in first
    cleaned = clean_conversions(pl.concat([second_file, first_file]), MAPPING)
    assert cleaned.rows.select("conversion_id", "country_code", "source_file", "line_number").rows() == [
        (20, "DE", "conversions/conversions_2018-09-03.csv", 2)
    ]
    kept = "kept conversions/conversions_2018-09-03.csv line 2"
    assert cleaned.quarantine.select("source_file", "line_number", "reason", "detail").rows() == [
        ("conversions/conversions_2018-09-03.csv", 3, "duplicate_id", kept),
        ("conversions/conversions_2018-09-17.csv", 2, "duplicate", kept),
    ]


def test_quarantine_keeps_each_rejected_line_exactly_as_landed(tmp_path):
    lines = [
        CONVERSIONS_HEADER,
        '30;s;Germany;1;top_cta;2018-09-03 10:00:00;"\'; DROP TABLE x;--"',
        '30;s;Germany;1;top_cta;2018-09-03 10:00:00;"\'; DROP TABLE x;--"',  # exact repeat: duplicate
        "31;s;Germany;1;side;bar;2018-09-03 10:00:00;review_page",  # unquoted separator: too many fields
        " 32 ;s;Germany;yes;top_cta;2018-09-03 10:01:00;review_page",  # padded id: fine once stripped
    ]
    _write(tmp_path / "conversions", "a.csv", "\n".join(lines) + "\n")
    read = read_batch_folder(tmp_path / "conversions", separator=";", columns=CONVERSION_COLUMNS)
    cleaned = clean_conversions(read.rows, MAPPING)
    assert cleaned.quarantine.select("source_file", "line_number", "raw", "reason", "detail").rows() == [
        ("conversions/a.csv", 3, lines[2], "duplicate", "kept conversions/a.csv line 2"),
        ("conversions/a.csv", 4, lines[3], "too_many_fields", None),
    ]
    assert cleaned.rows.select("conversion_id", "is_mobile").rows() == [(30, True), (32, True)]


# --- silver registrations and mapping ---------------------------------------------------------------------------


def test_broker_rows_are_typed_exact_duplicates_removed_and_junk_scores_nulled_with_a_reason():
    bronze = _broker_bronze(
        ("broker_data/b.csv", 2, "1536000000", "", "United States of America", "#REF!"),
        ("broker_data/a.csv", 2, "1536000000", "", "United States of America", "#REF!"),  # same row, earlier file
        ("broker_data/a.csv", 3, "1536000060", "Czechia", "Viet Nam", ""),
        ("broker_data/a.csv", 4, "1536000060", "Czechia", "Viet Nam", " 7"),  # differs: not a duplicate
        ("broker_data/a.csv", 5, "1536000000000", "", "Germany", "5"),  # milliseconds
        ("broker_data/a.csv", 6, "#VALUE!", "", "Germany", "5"),
    )
    cleaned = clean_broker_registrations(bronze)
    assert cleaned.rows.select(
        "registration_key",
        "registered_at",
        "week_start",
        "residency_code",
        "ip_country_code",
        "important_score",
        "important_score_issue",
    ).rows() == [
        (
            "broker_data/a.csv:2",
            datetime.fromtimestamp(1536000000, tz=UTC),
            date(2018, 9, 3),
            None,
            "US",
            None,
            "not an integer: '#REF!'",
        ),
        ("broker_data/a.csv:3", datetime.fromtimestamp(1536000060, tz=UTC), date(2018, 9, 3), "CZ", "VN", None, None),
        ("broker_data/a.csv:4", datetime.fromtimestamp(1536000060, tz=UTC), date(2018, 9, 3), "CZ", "VN", 7, None),
    ]
    assert cleaned.rows.get_column("registered_at").dtype == pl.Datetime("us", "UTC")
    assert cleaned.quarantine.select("source_file", "line_number", "reason", "detail").rows() == [
        ("broker_data/a.csv", 5, "invalid_timestamp", None),
        ("broker_data/a.csv", 6, "invalid_timestamp", None),
        ("broker_data/b.csv", 2, "duplicate", "kept broker_data/a.csv line 2"),
    ]


def test_mapping_repeats_contradictions_and_blanks_are_quarantined():
    pairs = [
        ("broker_review", "review_page"),
        ("broker_review", "review_page"),
        ("education", "review_page"),
        ("", "glossary"),
        ("education", "glossary"),
    ]
    bronze = pl.DataFrame(
        [["m.csv", line, ";".join(pair), None, *pair] for line, pair in enumerate(pairs, start=2)],
        schema=bronze_schema(("page_category", "measurement_category")),
        orient="row",
    )
    cleaned = clean_page_category_mapping(bronze)
    assert cleaned.rows.select("page_category", "measurement_category").rows() == [
        ("broker_review", "review_page"),
        ("education", "glossary"),
    ]
    # not weekly: the contract without week_start; both later review_page lines name the one kept
    assert cleaned.quarantine.schema == QUARANTINE_SCHEMA
    assert cleaned.quarantine.select("source_file", "line_number", "reason", "detail", "raw").rows() == [
        ("m.csv", 3, "duplicate", "kept m.csv line 2", "broker_review;review_page"),
        ("m.csv", 4, "conflicting_mapping", "kept m.csv line 2", "education;review_page"),
        ("m.csv", 5, "missing_value", None, ";glossary"),
    ]


# --- countries --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("United States", "US"),
        ("United States of America", "US"),
        ("Czech Republic", "CZ"),
        ("Czechia", "CZ"),
        ("Russia", "RU"),
        ("Russian Federation", "RU"),
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("Vietnam", "VN"),
        ("Viet Nam", "VN"),
        ("Taiwan", "TW"),
        ("Taiwan (Province of China)", "TW"),
        ("Turkey", "TR"),
        ("Türkiye", "TR"),
        ("United Kingdom of Great Britain and Northern Ireland", "GB"),
        ("  germany ", "DE"),
        ("Macedonia", "MK"),
        # not resolvable with certainty: never guessed
        ("Kosovo", None),
        ("Korea", None),
        ("UK", None),
        ("Holland", None),
        ("(not set)", None),
        ("Anonymous Proxy", None),
        ("'; DROP TABLE x;--", None),
        ("", None),
        (None, None),
    ],
)
def test_country_names_from_both_sides_resolve_to_iso_codes(name, code):
    assert country_code(name) == code


@pytest.mark.parametrize("alias", sorted(COUNTRY_ALIASES))
def test_every_alias_is_a_spelling_pycountry_cannot_resolve(alias):
    with pytest.raises(LookupError):
        pycountry.countries.lookup(alias)
    assert _unambiguous_fuzzy_match(alias) is None


# --- the generated sample ---------------------------------------------------------------------------------------


def _data_lines(path: Path) -> int:
    lines = path.read_bytes().splitlines()
    return max(len(lines) - 1, 0)


def _lines(frame: pl.DataFrame) -> list[tuple]:
    return sorted(frame.select("source_file", "line_number", "week_start").iter_rows())


def test_every_landed_line_is_in_one_week_and_kept_or_quarantined_in_that_week(conversions_sample):
    sample = conversions_sample
    root = sample.landing_dir / "brokerchooser"
    for folder, bronze, cleaned in (
        ("conversions", sample.conversions_bronze, sample.conversions),
        ("broker_data", sample.broker_bronze, sample.registrations),
    ):
        per_file = dict(bronze.rows.group_by("source_file").len().iter_rows())
        landed = {str(path.relative_to(root)): _data_lines(path) for path in root.glob(f"{folder}/*.csv")}
        assert per_file == {name: lines for name, lines in landed.items() if lines}, folder
        accounted = _lines(cleaned.rows) + _lines(cleaned.quarantine)
        assert len(set(accounted)) == len(accounted)  # no line twice
        assert sorted(accounted) == _lines(bronze.rows), folder  # every line, in the week bronze gave it
        assert bronze.rows.get_column("week_start").null_count() == 0
    mapping_lines = sample.mapping.rows.height + sample.mapping.quarantine.height
    assert mapping_lines == sample.mapping_bronze.rows.height == _data_lines(root / "page_category_mapping.csv")


def test_cleaning_week_by_week_gives_what_cleaning_everything_at_once_gives(conversions_sample):
    """Duplicates in these exports share their time, so they never straddle weeks: the weekly pipeline keeps the
    same rows as cleaning the whole history in one go."""
    sample = conversions_sample
    for bronze, clean, whole in (
        (sample.conversions_bronze, lambda rows: clean_conversions(rows, sample.mapping.rows), sample.conversions),
        (sample.broker_bronze, clean_broker_registrations, sample.registrations),
    ):
        weekly = [clean(week_rows) for _, week_rows in bronze.rows.group_by("week_start")]
        assert _lines(pl.concat([w.rows for w in weekly])) == _lines(whole.rows)
        assert _lines(pl.concat([w.quarantine for w in weekly])) == _lines(whole.quarantine)


def test_a_line_without_a_readable_time_joins_the_week_of_its_nearest_dated_neighbour(tmp_path):
    folder = tmp_path / "brokerchooser" / "conversions"
    lines = [
        CONVERSIONS_HEADER,
        "1;s;Germany;1;x;not a time;review_page",  # line 2: nothing dated above -> the line below (09-03)
        "2;s;Germany;1;x;2018-09-09 23:59:59;review_page",  # line 3: Sunday -> week of 09-03
        "3;s;Germany;1;x;2018-09-31 25:61:00;review_page",  # line 4: impossible time -> line 3's week
        "4;s;Germany;1;x;2018-09-10 00:00:00;extra;review_page",  # line 5: unreadable, but its time says 09-10
        "#REF!",  # line 6: nothing at all -> line 5's week
    ]
    _write(folder, "a.csv", "\n".join(lines) + "\n")
    undated = _write(folder, "b.csv", CONVERSIONS_HEADER + "\njunk;without;any;time;at;all;here\n")
    landed = datetime(2018, 10, 3, 12, tzinfo=UTC).timestamp()  # a Wednesday
    os.utime(undated, (landed, landed))
    weeks = read_conversions(tmp_path).rows.select("source_file", "line_number", "week_start").rows()
    assert weeks == [
        ("conversions/a.csv", 2, date(2018, 9, 3)),
        ("conversions/a.csv", 3, date(2018, 9, 3)),
        ("conversions/a.csv", 4, date(2018, 9, 3)),
        ("conversions/a.csv", 5, date(2018, 9, 10)),
        ("conversions/a.csv", 6, date(2018, 9, 10)),
        ("conversions/b.csv", 2, date(2018, 10, 1)),  # no dated line in the file: the week it landed
    ]
    _write(
        tmp_path / "brokerchooser" / "broker_data",
        "x.csv",
        BROKER_HEADER + "\n1536537600,,Germany,5,extra\n#VALUE!,,Germany,4\n",
    )  # Mon 2018-09-10 00:00
    registrations = read_broker_registrations(tmp_path)
    assert registrations.rows.get_column("week_start").to_list() == [date(2018, 9, 10)] * 2
    inventory = file_inventory(read_conversions(tmp_path))
    assert inventory.select("source_file", "first_week", "last_week").rows() == [
        ("conversions/a.csv", date(2018, 9, 3), date(2018, 9, 10)),
        ("conversions/b.csv", date(2018, 10, 1), date(2018, 10, 1)),
    ]


def test_silver_counts_agree_with_duckdb_over_the_raw_files(conversions_sample):
    root = conversions_sample.landing_dir / "brokerchooser"
    with duckdb.connect() as connection:
        distinct_valid_ids = connection.execute(
            f"""
            SELECT count(DISTINCT id) FROM read_csv('{root}/conversions/conversions_2*.csv', delim=';', header=true,
                all_varchar=true, ignore_errors=true, null_padding=false)
            WHERE TRY_CAST(id AS BIGINT) IS NOT NULL
              AND try_strptime(created_at, '%Y-%m-%d %H:%M:%S') IS NOT NULL
            """
        ).fetchone()[0]
        distinct_valid_broker_rows = connection.execute(
            f"""
            SELECT count(*) FROM (
                SELECT DISTINCT * FROM read_csv('{root}/broker_data/broker_export_2*.csv', delim=',', header=true,
                    all_varchar=true, ignore_errors=true)
                WHERE TRY_CAST(timestamp AS BIGINT) IS NOT NULL
            )
            """
        ).fetchone()[0]
        ref_scores = connection.execute(
            f"""
            SELECT count(*) FROM (
                SELECT DISTINCT * FROM read_csv('{root}/broker_data/broker_export_2*.csv', delim=',', header=true,
                    all_varchar=true, ignore_errors=true)
                WHERE TRY_CAST(timestamp AS BIGINT) IS NOT NULL
            ) WHERE important_score IS NOT NULL AND NOT regexp_full_match(trim(important_score), '-?[0-9]+')
            """
        ).fetchone()[0]
    registrations = conversions_sample.registrations.rows
    assert conversions_sample.conversions.rows.height == distinct_valid_ids == 3200
    assert registrations.height == distinct_valid_broker_rows
    assert registrations.filter(pl.col("important_score_issue").is_not_null()).height == ref_scores > 0
    assert conversions_sample.conversions.rows.get_column("conversion_id").is_unique().all()
