"""Client for the store purchase-history REST API: fetch every page of a date range, retrying what is worth retrying.

What belongs here: HTTP paging, retries and the checks that make a fetch all-or-nothing (malformed bodies, pages
served twice, totals that don't add up). The records come back raw, exactly as served; cleaning them belongs to
the pipeline. No Dagster here: a resource wraps `fetch_purchases`.

Retries: transport-level ones (connection errors, read timeouts, HTTP 429/500/502/503/504, honouring Retry-After)
are urllib3's `Retry`; a malformed body is retried here, up to the same `retries`; a page served twice is
re-requested once. Every retry is counted by reason in `FetchResult.retry_reasons`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl
import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

logger = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
PURCHASES_SCHEMA = {
    "mobile": pl.String,
    "date": pl.String,
    "amount": pl.Float64,
    "store": pl.String,
    "page": pl.Int64,
}
RECORD_STRING_FIELDS = ("mobile", "date", "store")
BODY_SNIPPET_CHARS = 200


class PurchasesApiError(RuntimeError):
    """The purchase-history API could not give a complete, trustworthy answer."""


class _MalformedBody(ValueError):
    """A 200 whose body is not the JSON page the API promises."""


@dataclass(frozen=True)
class FetchResult:
    """The raw records of a range plus what it took to get them, for the pipeline to report."""

    frame: pl.DataFrame
    pages: int
    retry_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def retries(self) -> int:
        """How many requests were repeated, for any reason."""
        return sum(self.retry_reasons.values())

    @property
    def records(self) -> int:
        """How many records were fetched, duplicates served by the API included."""
        return self.frame.height


def fetch_purchases(
    base_url: str,
    start: date,
    end: date,
    *,
    page_size: int = 1000,
    timeout_s: float = 10.0,
    retries: int = 5,
    backoff_factor: float = 0.5,
) -> FetchResult:
    """Fetch every purchase from `start` (inclusive) to `end` (exclusive); raises PurchasesApiError, never partial."""
    url = base_url.rstrip("/") + "/purchases"
    retry_reasons: Counter[str] = Counter()
    rows: dict[str, list[Any]] = {column: [] for column in PURCHASES_SCHEMA}
    with _retrying_session(retries, backoff_factor) as session:
        fetcher = _PageFetcher(session, url, start, end, page_size, timeout_s, retries, backoff_factor, retry_reasons)
        page = 1
        previous_data: list[dict[str, Any]] | None = None
        total: int | None = None
        while True:
            body = fetcher.unique_page(page, previous_data)
            if total is None:
                total = body["total"]
            elif body["total"] != total:
                raise PurchasesApiError(f"GET {url} page {page}: total changed from {total} to {body['total']}")
            for record in body["data"]:
                for column in RECORD_STRING_FIELDS:
                    rows[column].append(record[column])
                rows["amount"].append(record["amount"])
                rows["page"].append(page)
            if body["next_page"] is None:
                break
            if body["next_page"] != page + 1:
                raise PurchasesApiError(f"GET {url} page {page}: next_page is {body['next_page']}, not {page + 1}")
            previous_data = body["data"]
            page += 1
    frame = pl.DataFrame(rows, schema=PURCHASES_SCHEMA)
    if frame.height != total:
        raise PurchasesApiError(f"GET {url}: {frame.height} records over {page} pages, but the API said {total}")
    logger.info("fetched %d purchases in %d pages from %s (retries: %s)", frame.height, page, url, dict(retry_reasons))
    return FetchResult(frame=frame, pages=page, retry_reasons=dict(retry_reasons))


def _retrying_session(retries: int, backoff_factor: float) -> requests.Session:
    retry = Retry(
        total=retries,
        backoff_factor=backoff_factor,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        # Hand back the last failed response so the error can name its status.
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class _PageFetcher:
    """Gets one page right: transport retries, malformed-body retries, and the served-twice check."""

    session: requests.Session
    url: str
    start: date
    end: date
    page_size: int
    timeout_s: float
    retries: int
    backoff_factor: float
    retry_reasons: Counter[str]

    def unique_page(self, page: int, previous_data: list[dict[str, Any]] | None) -> dict[str, Any]:
        """The page, re-requested once if it looks like the previous page served again."""
        body = self.well_formed_page(page)
        problem = _served_twice_problem(body, page, previous_data)
        if problem is None:
            return body
        logger.warning("GET %s page %d: %s; asking again", self.url, page, problem)
        self.retry_reasons["duplicate page"] += 1
        body = self.well_formed_page(page)
        problem = _served_twice_problem(body, page, previous_data)
        if problem is not None:
            raise PurchasesApiError(f"GET {self.url} page {page}: {problem}, again after asking twice")
        return body

    def well_formed_page(self, page: int) -> dict[str, Any]:
        """A 200 with a valid page body, retrying malformed bodies up to `retries` times."""
        attempt = 0
        while True:
            response = self.response(page)
            try:
                return _parse_page_body(response.text)
            except _MalformedBody as problem:
                if attempt == self.retries:
                    raise PurchasesApiError(
                        f"GET {response.url} page {page}: malformed body after {self.retries} retries: {problem}"
                    ) from None
                logger.warning("GET %s page %d: malformed body (%s); retrying", response.url, page, problem)
                self.retry_reasons["malformed body"] += 1
                time.sleep(self.backoff_factor * 2**attempt)
                attempt += 1

    def response(self, page: int) -> requests.Response:
        """One successful response; transport retries happen inside urllib3 and are counted from its history."""
        params = {
            "start_date": self.start.isoformat(),
            "end_date": self.end.isoformat(),
            "page": page,
            "page_size": self.page_size,
        }
        try:
            response = self.session.get(self.url, params=params, timeout=self.timeout_s)
        except requests.RequestException as error:
            raise PurchasesApiError(
                f"GET {self.url} page {page} failed (retried up to {self.retries} times): {error}"
            ) from error
        history = getattr(response.raw, "retries", None)
        for attempt in history.history if history is not None else ():
            self.retry_reasons[str(attempt.status) if attempt.status else type(attempt.error).__name__] += 1
        if response.status_code != 200:
            raise PurchasesApiError(
                f"GET {response.url} page {page} failed with HTTP {response.status_code}"
                f"{f' after {self.retries} retries' if response.status_code in RETRY_STATUSES else ''}: "
                f"{response.text[:BODY_SNIPPET_CHARS]}"
            )
        return response


def _parse_page_body(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise _MalformedBody(f"invalid JSON ({error}) in {text[:BODY_SNIPPET_CHARS]!r}") from None
    if not isinstance(body, dict):
        raise _MalformedBody(f"expected a JSON object, got {type(body).__name__}")
    for key, expected in (("data", list), ("page", int), ("total", int)):
        if not isinstance(body.get(key), expected) or isinstance(body.get(key), bool):
            raise _MalformedBody(f"{key!r} must be a {expected.__name__}, got {body.get(key)!r:.80}")
    if body.get("next_page") is not None and not isinstance(body["next_page"], int):
        raise _MalformedBody(f"'next_page' must be an integer or null, got {body['next_page']!r:.80}")
    for index, record in enumerate(body["data"]):
        problem = _record_problem(record)
        if problem:
            raise _MalformedBody(f"record {index}: {problem}")
    return body


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"expected an object, got {record!r:.80}"
    for key in RECORD_STRING_FIELDS:
        if key not in record or not (record[key] is None or isinstance(record[key], str)):
            return f"{key!r} must be a string or null in {record!r:.200}"
    amount = record.get("amount", "missing")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
        return f"'amount' must be a number or null in {record!r:.200}"
    return None


def _served_twice_problem(body: dict[str, Any], page: int, previous_data: list[dict[str, Any]] | None) -> str | None:
    """Why this page looks like a page served twice, or None.

    Identical records only count from two records up: the feed itself repeats single records, so with
    page_size=1 two neighbouring one-record pages can legitimately be equal.
    """
    if body["page"] != page:
        return f"asked for page {page}, the body says page {body['page']}"
    if previous_data is not None and len(body["data"]) > 1 and body["data"] == previous_data:
        return f"records identical to page {page - 1}"
    return None
