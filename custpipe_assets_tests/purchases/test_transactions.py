"""Pure transforms of online transactions, on small hand-written landing files with known answers."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from custpipe_assets.purchases import reference, transaction_files, transactions

WEEK = date(2018, 9, 3)


def _line(customer="C1", basket='[{"product_id": "P1", "price": 5}]', when="2018-09-03 10:00:00") -> str:
    return f'{{"customer_id": "{customer}", "basket": {basket}, "date_of_purchase": "{when}"}}'


def _write_day(landing: Path, day: str, content: bytes | str) -> Path:
    folder = landing / "transactions" / f"d={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "transactions.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _split(landing: Path, customers=("C1", "C2"), products=("P1", "P2")):
    tables = transactions.transform_in_memory(
        landing,
        [WEEK],
        pl.DataFrame({"customer_id": customers, "loyalty_score": [None] * len(customers)}),
        pl.DataFrame({"product_id": products, "product_category": ["tea"] * len(products)}),
    )
    bronze = tables.bronze
    records = bronze.select(pl.col("basket").list.len().fill_null(0).clip(lower_bound=1).sum()).item() or 0
    assert records == tables.lines.height + tables.quarantine.height
    return bronze, tables.lines, tables.quarantine


def _reasons(quarantine: pl.DataFrame) -> list[tuple[int, int | None, str]]:
    """(line, basket position, reason); the contract's `position` is `basket[i]` for an item, null for a line."""
    rows = quarantine.select(
        "line_number", pl.col("position").str.extract(r"^basket\[(\d+)\]$").cast(pl.Int32), "reason"
    ).rows()
    return sorted(rows, key=lambda r: (r[0], r[1] or -1))


def test_every_bad_line_is_quarantined_with_its_reason_and_good_items_are_kept(tmp_path):
    _write_day(
        tmp_path,
        "2018-09-03",
        "\n".join(
            [
                _line(),  # 1 good
                '{"customer_id": "C1", "basket": [{"product_id": "P1"',  # 2 truncated
                "",  # 3 blank
                _line(
                    basket='[{"product_id": "P1", "price": "abc"}, {"product_id": "P2", "price": 2}]'
                ),  # 4 wrong type + good
                '{"basket": [{"product_id": "P1", "price": 5}], "date_of_purchase": "2018-09-03 10:00:00"}',  # 5 no customer
                _line(basket='[{"product_id": "P1"}]', when="2018-09-03 11:00:00"),  # 6 no price
                _line(basket="[]", when="2018-09-03 12:00:00"),  # 7 empty basket
                _line(customer="C9", when="2018-09-03 13:00:00"),  # 8 unknown customer
                _line(basket='[{"product_id": "P9", "price": 1}]', when="2018-09-03 14:00:00"),  # 9 unknown product
                _line(
                    basket='[{"product_id": "P1", "price": 0}, {"product_id": "P1", "price": -3}]',
                    when="2018-09-03 15:00:00",
                ),  # 10
                _line(when="yesterday"),  # 11 bad date
                _line(when="2018-09-10 09:00:00"),  # 12 next week
                "[1, 2]",  # 13 not an object
            ]
        ),
    )
    _, lines, quarantine = _split(tmp_path)
    assert lines.select("line_number", "basket_position", "product_id", "price").rows() == [
        (1, 0, "P1", 5.0),
        (4, 1, "P2", 2.0),
    ]
    assert _reasons(quarantine) == [
        (2, None, "malformed_json"),
        (3, None, "blank_line"),
        (4, 0, "invalid_price"),
        (5, 0, "missing_customer_id"),
        (6, 0, "missing_price"),
        (7, None, "empty_basket"),
        (8, 0, "unknown_customer"),
        (9, 0, "unknown_product"),
        (10, 0, "non_positive_price"),
        (10, 1, "non_positive_price"),
        (11, 0, "invalid_date_of_purchase"),
        (12, 0, "purchase_outside_week"),
        (13, None, "not_a_json_object"),
    ]
    # the raw line travels with every rejected record, so nothing is lost
    assert (
        quarantine.filter(pl.col("line_number") == 2)["raw"].item()
        == '{"customer_id": "C1", "basket": [{"product_id": "P1"'
    )


def test_duplicate_transactions_are_counted_once_even_across_days(tmp_path):
    _write_day(tmp_path, "2018-09-03", _line() + "\n" + _line(when="2018-09-03 10:05:00") + "\n")
    _write_day(tmp_path, "2018-09-04", _line() + "\n")  # the same purchase arriving again the next day
    _, lines, quarantine = _split(tmp_path)
    assert lines.height == 2
    assert _reasons(quarantine) == [(1, 0, "duplicate_transaction")]
    assert quarantine["source_file"].item() == "transactions/d=2018-09-04/transactions.json"


def test_windows_line_endings_and_a_byte_order_mark_are_read_like_plain_files(tmp_path):
    _write_day(
        tmp_path,
        "2018-09-03",
        b"\xef\xbb\xbf" + (_line() + "\r\n" + _line(when="2018-09-03 11:00:00") + "\r\r\n{oops\r\n\r\n").encode(),
    )
    bronze, lines, quarantine = _split(tmp_path)
    assert lines.height == 2 and quarantine.select("line_number", "reason", "raw").rows() == [
        (3, "malformed_json", "{oops"),
        (4, "blank_line", ""),
    ]
    assert bronze["line_number"].to_list() == [1, 2, 3, 4]
    assert bronze["raw_line"].to_list() == [None, None, "{oops", ""], "the text is kept for lines that did not parse"


def test_a_file_that_is_not_utf8_is_read_line_by_line_and_only_its_bad_line_quarantined(tmp_path):
    good, later = _line().encode(), _line(when="2018-09-03 11:00:00").encode()
    _write_day(tmp_path, "2018-09-03", good + b"\n" + b'{"customer_id": "C\xff1"}' + b"\n" + later + b"\n")
    _write_day(tmp_path, "2018-09-04", _line(when="2018-09-04 10:00:00") + "\n")  # a plain file beside it
    bronze, lines, quarantine = _split(tmp_path)
    assert bronze.select("source_file", "line_number").rows() == [
        ("transactions/d=2018-09-03/transactions.json", 1),
        ("transactions/d=2018-09-03/transactions.json", 2),
        ("transactions/d=2018-09-03/transactions.json", 3),
        ("transactions/d=2018-09-04/transactions.json", 1),
    ]
    assert lines.height == 3
    assert quarantine.select("line_number", "reason", "raw").rows() == [(2, "not_utf8", '{"customer_id": "C\\xff1"}')]


def test_a_json_object_with_fields_of_the_wrong_type_is_named_as_such(tmp_path):
    _write_day(tmp_path, "2018-09-03", _line(basket='"P1 x2"') + "\n" + _line(when="2018-09-03 11:00:00") + "\n")
    _, lines, quarantine = _split(tmp_path)
    assert lines.height == 1
    assert quarantine.select("line_number", "reason").rows() == [(1, "unexpected_field_types")]


def test_a_duplicate_names_the_line_it_repeats(tmp_path):
    _write_day(tmp_path, "2018-09-03", _line() + "\n")
    _write_day(tmp_path, "2018-09-05", _line(when="2018-09-05 08:00:00") + "\n" + _line() + "\n")
    _, _, quarantine = _split(tmp_path)
    assert quarantine.select("source_file", "line_number", "reason", "detail").rows() == [
        (
            "transactions/d=2018-09-05/transactions.json",
            2,
            "duplicate_transaction",
            "duplicate of transactions/d=2018-09-03/transactions.json line 1",
        )
    ]


def test_missing_and_empty_days_give_an_empty_week_and_are_listed(tmp_path):
    (tmp_path / "transactions" / "d=2018-09-04").mkdir(parents=True)  # folder without a file
    _write_day(tmp_path, "2018-09-05", "")  # empty file
    bronze, lines, quarantine = _split(tmp_path)
    assert bronze.is_empty() and lines.is_empty() and quarantine.is_empty()
    assert bronze.schema == transaction_files.BRONZE_SCHEMA
    missing = transaction_files.missing_transaction_days(tmp_path, [WEEK])
    assert "transactions/d=2018-09-04/transactions.json" in missing and len(missing) == 6  # all but the empty file


def test_weekly_counts_follow_the_contract(tmp_path):
    _write_day(
        tmp_path,
        "2018-09-03",
        "\n".join(
            [
                _line(
                    basket='[{"product_id": "P1", "price": 5}, {"product_id": "P1", "price": 5}, {"product_id": "P2", "price": 1}]'
                ),
                _line(customer="C2", when="2018-09-04 10:00:00"),
            ]
        ),
    )
    customers = pl.DataFrame({"customer_id": ["C1", "C2"], "loyalty_score": [0.5, None]})
    products = pl.DataFrame({"product_id": ["P1", "P2"], "product_category": ["tea", "cake"]})
    counts = transactions.transform_in_memory(tmp_path, [WEEK], customers, products).counts
    assert counts.columns == [
        "week_start",
        "customer_id",
        "loyalty_score",
        "product_id",
        "product_category",
        "purchase_count",
    ]
    assert counts.drop("week_start").sort("customer_id", "product_id").rows() == [
        ("C1", 0.5, "P1", "tea", 2),
        ("C1", 0.5, "P2", "cake", 1),
        ("C2", None, "P1", "tea", 1),
    ]


def test_reference_rows_keep_the_first_of_each_id_and_quarantine_the_rest(tmp_path):
    (tmp_path / "customers.csv").write_bytes(
        b"\xef\xbb\xbfcustomer_id,loyalty_score\r\nC1,5\r\nC2,n/a\r\nC1,9\r\n,1\r\n"
    )
    bronze = reference.read_reference_csv(tmp_path, reference.CUSTOMERS_FILE, reference.CUSTOMER_COLUMNS)
    customers, rejected = reference.clean_customers(bronze)
    assert customers.select("customer_id", "loyalty_score", "line_number").rows() == [("C1", 5.0, 2), ("C2", None, 3)]
    assert rejected.select("line_number", "reason", "raw").rows() == [
        (4, "duplicate_customer_id", "C1,9"),
        (5, "missing_customer_id", ",1"),
    ]


# The real Revolve starter files end every line with \r\r\n; the first version read that header as garbage.
REVOLVE_CUSTOMERS = b"customer_id,loyalty_score\r\r\nC1,7\r\r\nC2,10\r\r\nC3,1\r\r\n"


def test_revolve_line_ends_read_as_one_line_each(tmp_path):
    (tmp_path / "customers.csv").write_bytes(REVOLVE_CUSTOMERS)
    customers, rejected = reference.clean_customers(
        reference.read_reference_csv(tmp_path, reference.CUSTOMERS_FILE, reference.CUSTOMER_COLUMNS)
    )
    expected = [line.split(b",") for line in REVOLVE_CUSTOMERS.split(b"\r\r\n")[1:] if line]
    assert customers.select("customer_id", "loyalty_score", "line_number").rows() == [
        (cid.decode(), float(score), number) for number, (cid, score) in enumerate(expected, start=2)
    ]
    assert rejected.is_empty()


@pytest.mark.parametrize(
    ("raw", "issue"),
    [
        ("7", None),
        ("10", None),
        ("1", None),
        (" 3 ", None),
        ("0.734", "not_a_whole_number"),
        ("0", "out_of_range"),
        ("11", "out_of_range"),
        ("n/a", "not_a_number"),
        ("", "missing"),
        ("7.0", None),
    ],
)
def test_loyalty_scores_outside_the_sources_1_to_10_scale_keep_the_customer_with_a_null_score(tmp_path, raw, issue):
    (tmp_path / "customers.csv").write_text(f"customer_id,loyalty_score\nC1,{raw}\n")
    customers, rejected = reference.clean_customers(
        reference.read_reference_csv(tmp_path, reference.CUSTOMERS_FILE, reference.CUSTOMER_COLUMNS)
    )
    assert rejected.is_empty() and customers["customer_id"].to_list() == ["C1"]
    row = customers.row(0, named=True)
    assert row["loyalty_score_issue"] == issue and row["loyalty_score_raw"] == raw.strip()
    assert row["loyalty_score"] == (None if issue else float(raw))


def test_an_absent_reference_file_reads_as_empty_and_a_broken_one_is_quarantined_and_reported(tmp_path):
    assert reference.read_reference_csv(tmp_path, reference.PRODUCTS_FILE, reference.PRODUCT_COLUMNS).is_empty()
    (tmp_path / "products.csv").write_text("id;name\nP1;tea\n")
    bronze = reference.read_reference_csv(tmp_path, reference.PRODUCTS_FILE, reference.PRODUCT_COLUMNS)
    products, rejected = reference.clean_products(bronze)
    assert products.is_empty()
    assert rejected.select("source_file", "line_number", "reason", "raw").rows() == [
        ("products.csv", 2, "wrong_header", "P1;tea")
    ]
    status = reference.reference_file_status(tmp_path, reference.PRODUCTS_FILE, reference.PRODUCT_COLUMNS).row(
        0, named=True
    )
    assert status["status"] == "wrong_header" and "product_id" in status["detail"]


def test_another_basket_at_the_same_time_is_not_a_duplicate_but_its_repeat_is(tmp_path):
    other_basket = '[{"product_id": "P2", "price": 3}]'
    _write_day(tmp_path, "2018-09-03", "\n".join([_line(), _line(basket=other_basket), _line(basket=other_basket)]))
    _, lines, quarantine = _split(tmp_path)
    assert lines.select("line_number", "product_id").rows() == [(1, "P1"), (2, "P2")]
    assert quarantine.select("line_number", "reason", "detail").rows() == [
        (3, "duplicate_transaction", "duplicate of transactions/d=2018-09-03/transactions.json line 2")
    ]
