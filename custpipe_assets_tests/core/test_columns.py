"""Column schemas at definition time: every warehouse table shows its columns, types and descriptions in the UI
before it is materialized, and those columns are the ones the transforms write."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from custpipe_assets.conversions import transforms as conversion_transforms
from custpipe_assets.core.columns import COLUMN_SCHEMA, table_schema, undescribed
from custpipe_assets.core.conventions import with_column_schemas
from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import Warehouse, table_name
from custpipe_assets.definitions import build_definitions
from custpipe_assets.product_views import schemas as product_view_schemas
from custpipe_assets.purchases import transactions

NOT_TABLES = {"gold/conversion_insights", "gold/ctr_api_snapshot"}  # a report and a Parquet file, not tables


@pytest.fixture(scope="module")
def graph():
    settings = Settings(landing_dir=Path("/landing"), warehouse=Path("/warehouse.duckdb"), first_week=date(2018, 9, 3))
    return build_definitions(settings).resolve_asset_graph()


def _column_schemas(graph) -> dict[str, dg.TableSchema | None]:
    """Every materializable asset stored in the warehouse (kind `duckdb`) and its column schema (None if absent)."""
    return {
        key.to_user_string(): graph.get(key).metadata.get(COLUMN_SCHEMA)
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_materializable and "duckdb" in graph.get(key).kinds
    }


def _names(graph, key: str) -> list[str]:
    return [column.name for column in graph.get(dg.AssetKey.from_user_string(key)).metadata[COLUMN_SCHEMA].columns]


def test_every_warehouse_table_has_a_described_column_schema(graph):
    schemas = _column_schemas(graph)
    materializable = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    assert set(schemas) == materializable - NOT_TABLES, "every asset but the report and the snapshot is a table"
    missing = sorted(key for key, schema in schemas.items() if schema is None)
    assert not missing, f"tables without a column schema: {missing}"
    undescribed_columns = {key: undescribed(schema) for key, schema in schemas.items() if undescribed(schema)}
    assert not undescribed_columns, f"columns without a description: {undescribed_columns}"
    assert all(column.type for schema in schemas.values() for column in schema.columns)


def test_column_names_are_the_transforms_schemas(graph):
    assert _names(graph, "gold/customer_product_purchases") == transactions.COUNTS_SCHEMA.names()
    assert _names(graph, "silver/transaction_lines") == transactions.LINES_SCHEMA.names()
    # weekly tables without a week column of their own get the warehouse's partition column first
    assert _names(graph, "gold/ctr_per_minute") == [
        "week_start",
        "minute_local",
        "platform",
        "product",
        "views",
        "purchases",
    ]
    assert _names(graph, "silver/product_views") == ["week_start", *product_view_schemas.PRODUCT_VIEWS_SILVER_SCHEMA]
    assert _names(graph, "silver/purchase_quarantine") == [
        "source_file",
        "line_number",
        "position",
        "reason",
        "detail",
        "raw",
    ]


def test_conversions_columns_are_what_the_transforms_write_from_a_real_file(graph, tmp_path):
    """The conversions schemas are derived from the transforms on empty input: a real batch file gives the same."""
    folder = tmp_path / "brokerchooser" / "conversions"
    folder.mkdir(parents=True)
    (folder / "batch_1.csv").write_text(
        "id;session_id;country_name;is_mobile;ui_element;created_at;measurement_category\n"
        "1;s1;Germany;1;button;2018-09-03 10:00:00;stocks\n"
        "x;s2;;0;;2018-09-03 11:00:00;\n"
    )
    bronze = conversion_transforms.read_conversions(tmp_path).rows
    silver = conversion_transforms.clean_conversions(
        bronze, pl.DataFrame(schema=dict.fromkeys(["page_category", "measurement_category"], pl.String))
    )
    assert _names(graph, "bronze/conversions") == bronze.columns
    assert _names(graph, "silver/conversions") == silver.rows.columns
    assert silver.rows.height == 1 and silver.quarantine.height == 1


def test_a_tables_own_description_comes_before_the_shared_one():
    schema = table_schema(pl.Schema({"source_file": pl.String, "total": pl.Int64}), {"source_file": "The first one."})
    assert [(c.name, c.type, c.description) for c in schema.columns] == [
        ("source_file", "String", "The first one."),
        ("total", "Int64", None),
    ]
    assert undescribed(schema) == ["total"]


def test_a_column_schema_for_an_asset_that_is_not_defined_is_refused():
    @dg.asset(key=["silver", "defined"])
    def defined() -> None: ...

    columns = {dg.AssetKey(["silver", "elsewhere"]): table_schema(pl.Schema({"a": pl.Int64}), {"a": "A."})}
    with pytest.raises(ValueError, match="silver/elsewhere"):
        with_column_schemas(columns, [defined])


def test_every_table_in_the_warehouse_has_the_columns_its_definition_shows(sample_run):
    """After the main job over every domain's sample, each stored table's columns, in order, are its column schema's."""
    schemas = _column_schemas(build_definitions(sample_run.settings).resolve_asset_graph())
    warehouse = Warehouse(sample_run.settings.warehouse)
    for key, schema in sorted(schemas.items()):
        stored = warehouse.query(f"select * from {table_name(dg.AssetKey.from_user_string(key))} limit 0").columns
        assert stored == [column.name for column in schema.columns], key
