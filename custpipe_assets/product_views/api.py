"""HTTP API for click-through rates, served from a published Parquet snapshot, never from the warehouse.

Belongs here: the FastAPI app (`create_app`) and `serve`, behind the `custpipe api` command. The atomic snapshot
publication the pipeline calls after each gold materialization lives in `serving.py` (re-exported here).

Why a snapshot: DuckDB lets one process write a database file, and no other process can open it meanwhile, so an
API reading the warehouse would fail whenever the pipeline runs. Instead the pipeline writes the gold per-minute
frame (`transforms.GOLD_CTR_MINUTE_SCHEMA`) to a temporary file beside `serving_path` and renames it over it
(`os.replace`, atomic). The API keeps the snapshot in memory and reloads it when the file's identity (inode, size,
mtime) changes; each request queries it through its own in-memory DuckDB connection with bound parameters.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import duckdb
import polars as pl
import pyarrow as pa
import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from custpipe_assets.product_views.serving import publish_serving_snapshot  # noqa: F401  (re-exported: `api.publish_serving_snapshot`)
from custpipe_assets.product_views.transforms import GOLD_CTR_MINUTE_SCHEMA, VIEW_PLATFORMS

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# Documented in OpenAPI (whole minutes, ASCII digits) and enforced by _parse_timestamp, which gives clearer messages
# than a bare pattern mismatch ("must fall on a whole minute", "not a valid timestamp").
TIMESTAMP_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:00$"
_TIMESTAMP_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
# A response is buckets x platforms x products rows (~70 bytes of JSON each); past this limit a BI tool chokes,
# so the caller is asked for a coarser or narrower query.
MAX_RESULT_ROWS = 100_000
MAX_AGGREGATION_MINUTES = 100 * 366 * 24 * 60

Platform = Literal[VIEW_PLATFORMS]  # Literal[("a", "b")] is Literal["a", "b"]: one list of platform names

CTR_DESCRIPTION = f"""
Click-through rate (purchases / product views) per time bucket, platform and product, in GMT-03:00 local time.

- Buckets start at `startTimestamp` and step by `aggregation` minutes; together they cover
  [`startTimestamp`, `endTimestamp`): an event exactly on a bucket boundary belongs to the later bucket, and the
  last bucket stops at `endTimestamp` when the range is not a multiple of `aggregation`.
- Series: the given `platform`, or each of {", ".join(VIEW_PLATFORMS)}; the given `product`, or every product
  with a view or a purchase on those platforms in the range. Every series gets every bucket, ordered by
  `startTimestamp`, `platform`, `product`.
- `ctr` is purchases / views rounded half-up to four decimals (0.0150 is 1.50%). It is `null` when the bucket
  has no views: the rate is undefined there, and keeping the bucket with a null (instead of omitting it or
  writing 0) gives charting tools a regular time axis that shows a gap rather than a misleading zero. It can
  exceed 1 when purchases outnumber views in a bucket (a purchase is not tied to a view in the same bucket).
- Purchases are distinct orders containing the product whose status is a purchase (approved, invoiced, shipped
  or delivered); orders from desktop or unknown devices have no views and are not served.
- Data is kept per minute, so both timestamps must have seconds `00`. At most {MAX_RESULT_ROWS:,} rows per
  response.
"""


class CtrPoint(BaseModel):
    startTimestamp: str = Field(pattern=TIMESTAMP_PATTERN, examples=["2018-09-03 10:00:00"])
    platform: Platform
    product: str = Field(examples=["20005748_001"])
    ctr: float | None = Field(ge=0, description="purchases / views rounded to 4 decimals; null without views")


class ParameterProblem(BaseModel):
    parameter: str
    message: str


class ErrorResponse(BaseModel):
    detail: str = Field(description="Human-readable summary naming the offending parameter(s)")
    errors: list[ParameterProblem]


class ParameterError(Exception):
    """A request parameter that is well-formed for OpenAPI but unusable; answered with `status` and its name."""

    def __init__(self, parameter: str, message: str, status: int = 422) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message
        self.status = status


class SnapshotUnavailable(Exception):
    """The serving snapshot is missing or unusable: 503, the pipeline has to publish it."""


class _SnapshotCache:
    """The snapshot as an Arrow table, reloaded when the file at the path is a different file than last time."""

    def __init__(self, serving_path: Path) -> None:
        self._path = Path(serving_path)
        self._lock = threading.Lock()
        self._identity: tuple[int, int, int] | None = None
        self._table: pa.Table | None = None

    def current(self) -> pa.Table:
        with self._lock:
            try:
                if self._table is None or _identity(os.stat(self._path)) != self._identity:
                    self._load()
            except FileNotFoundError:
                raise SnapshotUnavailable(
                    f"no serving snapshot at {self._path}: run the pipeline to publish one"
                ) from None
            except (OSError, pl.exceptions.PolarsError) as error:
                raise SnapshotUnavailable(f"serving snapshot {self._path} is unreadable: {error}") from error
            return self._table

    def _load(self) -> None:
        # Read through one open handle so the identity recorded is the one of the bytes read.
        with self._path.open("rb") as handle:
            identity = _identity(os.fstat(handle.fileno()))
            frame = pl.read_parquet(handle)
        if frame.schema != GOLD_CTR_MINUTE_SCHEMA:
            found, expected = dict(frame.schema), dict(GOLD_CTR_MINUTE_SCHEMA)
            raise SnapshotUnavailable(f"serving snapshot {self._path} has schema {found}, expected {expected}")
        self._identity, self._table = identity, frame.to_arrow()


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class _CtrQuery:
    start: datetime
    end: datetime
    aggregation: int
    platforms: list[str]
    product: str | None

    @property
    def bucket_count(self) -> int:
        minutes = int((self.end - self.start) / timedelta(minutes=1))
        return -(-minutes // self.aggregation)


_RANGE_FILTER = """
    minute_local >= $start AND minute_local < $end AND list_contains($platforms, platform)
"""
_PRODUCTS_IN_RANGE_SQL = f"SELECT DISTINCT product FROM gold WHERE {_RANGE_FILTER} ORDER BY product"
_CTR_SQL = f"""
WITH totals AS (
    SELECT
        datediff('minute', $start, minute_local) // $aggregation AS bucket,
        platform,
        product,
        sum(views) AS views,
        sum(purchases) AS purchases
    FROM gold
    WHERE {_RANGE_FILTER} AND list_contains($products, product)
    GROUP BY ALL
), grid AS (
    SELECT bucket, platform, product
    FROM range($bucket_count) AS buckets(bucket),
         unnest($platforms) AS platforms(platform),
         unnest($products) AS products(product)
)
SELECT
    strftime($start + to_minutes(grid.bucket * $aggregation), '{TIMESTAMP_FORMAT}') AS "startTimestamp",
    grid.platform,
    grid.product,
    CASE WHEN totals.views > 0
        THEN ((totals.purchases * 20000 + totals.views) // (2 * totals.views)) / 10000
    END AS ctr
FROM grid LEFT JOIN totals USING (bucket, platform, product)
ORDER BY grid.bucket, grid.platform, grid.product
"""


def _ctr_json(table: pa.Table, query: _CtrQuery) -> bytes:
    """The response body: a JSON array of CtrPoint objects, computed by DuckDB over the snapshot."""
    with duckdb.connect() as connection:
        connection.register("gold", table)
        range_parameters = {"start": query.start, "end": query.end, "platforms": query.platforms}
        if query.product is None:
            products = [row[0] for row in connection.execute(_PRODUCTS_IN_RANGE_SQL, range_parameters).fetchall()]
        else:
            known = connection.execute("SELECT count(*) FROM gold WHERE product = $product", {"product": query.product})
            if known.fetchone()[0] == 0:
                raise ParameterError("product", f"no product {query.product!r} in the serving data", status=404)
            products = [query.product]
        rows = query.bucket_count * len(query.platforms) * len(products)
        if rows > MAX_RESULT_ROWS:
            raise ParameterError(
                "aggregation",
                f"{query.aggregation} minutes over this range gives {query.bucket_count:,} buckets x "
                f"{len(query.platforms)} platforms x {len(products)} products = {rows:,} rows, above the limit of "
                f"{MAX_RESULT_ROWS:,}; use a larger aggregation, a shorter range, or filter by product or platform",
            )
        if not products:
            return b"[]"
        parameters = {
            **range_parameters,
            "aggregation": query.aggregation,
            "bucket_count": query.bucket_count,
            "products": products,
        }
        frame = connection.execute(_CTR_SQL, parameters).pl()
    return frame.write_json().encode()


def _timestamp_query(alias: str, meaning: str, example: str):
    """A timestamp query parameter: GMT-03:00 local time to the whole minute, its pattern in the OpenAPI schema
    (checked by `_parse_timestamp`, so a bad value gets this API's error body)."""
    return Query(
        alias=alias,
        description=f"{meaning}, GMT-03:00 local time, whole minute",
        json_schema_extra={"pattern": TIMESTAMP_PATTERN},
        examples=[example],
    )


def _parse_timestamp(parameter: str, text: str) -> datetime:
    try:
        if not _TIMESTAMP_SHAPE.fullmatch(text):
            raise ValueError(text)
        moment = datetime.strptime(text, TIMESTAMP_FORMAT)
    except ValueError:
        raise ParameterError(parameter, f"{text!r} is not a valid YYYY-MM-DD HH:MM:SS timestamp") from None
    if moment.second:
        raise ParameterError(parameter, f"{text!r} must fall on a whole minute (seconds 00): data is kept per minute")
    return moment


def _error_response(status: int, problems: list[ParameterProblem]) -> JSONResponse:
    detail = "; ".join(f"{problem.parameter}: {problem.message}" for problem in problems)
    body = ErrorResponse(detail=detail, errors=problems)
    return JSONResponse(status_code=status, content=body.model_dump())


def create_app(serving_path: Path) -> FastAPI:
    """The CTR API over the snapshot at `serving_path` (which may appear or change while the app runs)."""
    snapshot = _SnapshotCache(Path(serving_path))
    app = FastAPI(
        title="custpipe product-views CTR API",
        version="1.0.0",
        description="Click-through rate per product, platform and time bucket, from the pipeline's serving snapshot.",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            ParameterProblem(
                parameter=str(item["loc"][-1]) if item.get("loc") else "request",
                message="is required" if item.get("type") == "missing" else item.get("msg", "is invalid"),
            )
            for item in error.errors()
        ]
        return _error_response(422, problems)

    @app.exception_handler(ParameterError)
    async def unusable_parameter(request: Request, error: ParameterError) -> JSONResponse:
        return _error_response(error.status, [ParameterProblem(parameter=error.parameter, message=error.message)])

    @app.exception_handler(SnapshotUnavailable)
    async def snapshot_unavailable(request: Request, error: SnapshotUnavailable) -> JSONResponse:
        return _error_response(503, [ParameterProblem(parameter="snapshot", message=str(error))])

    error_responses = {
        404: {"model": ErrorResponse, "description": "`product` is not in the serving data"},
        422: {"model": ErrorResponse, "description": "A parameter is missing, malformed or out of range"},
        503: {"model": ErrorResponse, "description": "No usable serving snapshot has been published yet"},
    }

    @app.get(
        "/ctr",
        summary="Click-through rate per time bucket, platform and product",
        description=CTR_DESCRIPTION,
        response_model=list[CtrPoint],
        responses=error_responses,
    )
    def ctr(
        start_timestamp: Annotated[
            str, _timestamp_query("startTimestamp", "First bucket start", "2018-09-03 10:00:00")
        ],
        end_timestamp: Annotated[
            str, _timestamp_query("endTimestamp", "End of the range (exclusive)", "2018-09-03 12:00:00")
        ],
        aggregation: Annotated[
            int, Query(description="Bucket size in minutes", gt=0, le=MAX_AGGREGATION_MINUTES, examples=[60])
        ],
        product: Annotated[
            str | None, Query(description="Only this product (codeColor)", min_length=1, max_length=64)
        ] = None,
        platform: Annotated[Platform | None, Query(description="Only this platform")] = None,
    ) -> Response:
        start = _parse_timestamp("startTimestamp", start_timestamp)
        end = _parse_timestamp("endTimestamp", end_timestamp)
        if end <= start:
            raise ParameterError("endTimestamp", f"must be after startTimestamp ({start_timestamp})")
        query = _CtrQuery(start, end, aggregation, [platform] if platform else sorted(VIEW_PLATFORMS), product)
        return Response(content=_ctr_json(snapshot.current(), query), media_type="application/json")

    return app


def serve(serving_path: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API with uvicorn until interrupted (the `custpipe api` command)."""
    uvicorn.run(create_app(serving_path), host=host, port=port)
