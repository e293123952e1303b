"""The bundled store purchase-history REST service: a real HTTP server that serves made-up purchases on request.

What belongs here: the HTTP endpoints (`/purchases`, `/health`), start-up fault injection for tests, and the
`custpipe purchases-api` command. What it serves, the store customer list and the purchase history generated
from it with the dirt real APIs serve, is `purchases_history.py`. The client lives in `purchases_client.py`;
cleaning the served records belongs to the pipeline, not here.

Endpoints
- `GET /health` -> `{"status": "ok"}`.
- `GET /purchases?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD&page=N&page_size=M` (end exclusive, `page` from 1,
  `page_size` 1..5000, default 500) -> `{"data": [{"mobile", "date", "amount", "store"}, ...], "page": N,
  "page_size": M, "total": T, "next_page": N + 1 or null}`. Missing, repeated, unknown or bad parameters get a
  400 `{"error": ..., "parameter": name}`.

Fault injection (`faults="500:2,429:1,timeout:1,malformed:1,duplicate_page:1"`)
Steps apply in order to the requests made to `/purchases`, one request per unit of count; `*` as a count means
every request from then on. Kinds: `500`, `502`, `503`, `504` (that status), `429` (with `Retry-After: 0`),
`timeout` (waits `fault_sleep_s` before answering normally), `malformed` (a 200 with truncated JSON) and
`duplicate_page` (the body of the last request answered without a fault, again). A `duplicate_page` step waits,
without being used up, until some request has been answered without a fault, so it always repeats a real page.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from custpipe_assets.sample.purchases_history import DEFAULT_HISTORY_START, PurchaseHistory, read_store_customers

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000
DEFAULT_FAULT_SLEEP_S = 2.0
FAULT_KINDS = ("500", "502", "503", "504", "429", "timeout", "malformed", "duplicate_page")
PURCHASE_PARAMETERS = ("start_date", "end_date", "page", "page_size")


@dataclass
class FaultStep:
    """One step of a fault plan; `remaining` None means forever."""

    kind: str
    remaining: int | None


def parse_faults(spec: str | None) -> list[FaultStep]:
    """Parse `"500:2,429:1,timeout:1"` into steps; a bad item is a ValueError naming it."""
    steps: list[FaultStep] = []
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        kind, _, count = (part.strip() for part in item.partition(":"))
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault {item.strip()!r}: kind must be one of {', '.join(FAULT_KINDS)}")
        if count == "*":
            steps.append(FaultStep(kind, None))
        elif count.isdigit() and int(count) > 0:
            steps.append(FaultStep(kind, int(count)))
        else:
            raise ValueError(f"fault {item.strip()!r}: count must be a positive integer or '*'")
    return steps


class FaultPlan:
    """The faults still to inject, taken in order, one per `/purchases` request; safe across handler threads."""

    def __init__(self, steps: Sequence[FaultStep]) -> None:
        self._steps = deque(FaultStep(step.kind, step.remaining) for step in steps)
        self._lock = threading.Lock()

    def take(self, *, can_repeat_page: bool) -> str | None:
        """The fault for this request, or None to answer normally."""
        with self._lock:
            if not self._steps:
                return None
            step = self._steps[0]
            if step.kind == "duplicate_page" and not can_repeat_page:
                return None
            if step.remaining is not None:
                step.remaining -= 1
                if step.remaining == 0:
                    self._steps.popleft()
            return step.kind


class QueryParameterError(ValueError):
    """A bad `/purchases` parameter; `parameter` names it for the 400 body."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class PurchasesQuery:
    """The validated parameters of one `/purchases` request."""

    start_date: date
    end_date: date
    page: int
    page_size: int


def parse_purchases_query(query_string: str) -> PurchasesQuery:
    """Validate `/purchases` parameters; raises QueryParameterError naming the first bad one."""
    values = parse_qs(query_string, keep_blank_values=True)
    for name, given in values.items():
        if name not in PURCHASE_PARAMETERS:
            raise QueryParameterError(name, f"unknown parameter {name!r}; expected {', '.join(PURCHASE_PARAMETERS)}")
        if len(given) > 1:
            raise QueryParameterError(name, f"parameter {name!r} given {len(given)} times")
    start_date = _date_parameter(values, "start_date")
    end_date = _date_parameter(values, "end_date")
    if end_date < start_date:
        raise QueryParameterError("end_date", "end_date must not be before start_date (end_date is exclusive)")
    page = _int_parameter(values, "page", default=1, low=1, high=None)
    page_size = _int_parameter(values, "page_size", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    return PurchasesQuery(start_date, end_date, page, page_size)


def _date_parameter(values: dict[str, list[str]], name: str) -> date:
    if name not in values:
        raise QueryParameterError(name, f"missing required parameter {name!r} (YYYY-MM-DD)")
    try:
        return datetime.strptime(values[name][0], "%Y-%m-%d").date()
    except ValueError:
        message = f"parameter {name!r} must be a date YYYY-MM-DD, got {values[name][0]!r}"
        raise QueryParameterError(name, message) from None


def _int_parameter(values: dict[str, list[str]], name: str, *, default: int, low: int, high: int | None) -> int:
    if name not in values:
        return default
    text = values[name][0]
    upper = f" and {high}" if high is not None else ""
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        raise QueryParameterError(name, f"parameter {name!r} must be an integer between {low}{upper}, got {text!r}")
    return int(text)


def purchases_page(history: PurchaseHistory, query: PurchasesQuery) -> dict[str, Any]:
    """The response body for one page of a range."""
    records = history.records_between(query.start_date, query.end_date)
    first = (query.page - 1) * query.page_size
    has_more = first + query.page_size < len(records)
    return {
        "data": records[first : first + query.page_size],
        "page": query.page,
        "page_size": query.page_size,
        "total": len(records),
        "next_page": query.page + 1 if has_more else None,
    }


class _PurchasesServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], history: PurchaseHistory, faults: FaultPlan, fault_sleep_s: float):
        super().__init__(address, _PurchasesHandler)
        self.history = history
        self.faults = faults
        self.fault_sleep_s = fault_sleep_s
        self.stopping = threading.Event()
        self.purchase_requests = 0
        self.last_body: bytes | None = None
        self.state_lock = threading.Lock()


class _PurchasesHandler(BaseHTTPRequestHandler):
    server: _PurchasesServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive requests stall ~40 ms on delayed ACKs.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            if url.path == "/health":
                self._send_json(HTTPStatus.OK, {"status": "ok"})
            elif url.path == "/purchases":
                self._serve_purchases(url.query)
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint {url.path!r}"})
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away before %s was answered", self.path)

    def _serve_purchases(self, query_string: str) -> None:
        server = self.server
        with server.state_lock:
            server.purchase_requests += 1
            previous_body = server.last_body
        fault = server.faults.take(can_repeat_page=previous_body is not None)
        if fault is not None:
            logger.info("injecting fault %s into %s", fault, self.path)
        if fault in ("500", "502", "503", "504"):
            self._send_json(HTTPStatus(int(fault)), {"error": f"injected fault: HTTP {fault}"})
            return
        if fault == "429":
            self._send_json(HTTPStatus.TOO_MANY_REQUESTS, {"error": "injected fault: rate limited"}, retry_after=0)
            return
        if fault == "duplicate_page" and previous_body is not None:
            self._send_body(HTTPStatus.OK, previous_body)
            return
        if fault == "timeout" and server.stopping.wait(server.fault_sleep_s):
            return
        try:
            query = parse_purchases_query(query_string)
        except QueryParameterError as error:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(error), "parameter": error.parameter})
            return
        body = json.dumps(purchases_page(server.history, query)).encode()
        if fault == "malformed":
            body = body[: len(body) // 2]
        elif fault is None:
            with server.state_lock:
                server.last_body = body
        self._send_body(HTTPStatus.OK, body)

    def _send_json(self, status: HTTPStatus, payload: dict[str, Any], *, retry_after: int | None = None) -> None:
        self._send_body(status, json.dumps(payload).encode(), retry_after=retry_after)

    def _send_body(self, status: HTTPStatus, body: bytes, *, retry_after: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


class RunningService:
    """A purchase-history service serving from a background thread; use as a context manager or call stop()."""

    def __init__(self, server: _PurchasesServer) -> None:
        self._server = server
        # A short poll interval keeps stop() quick: shutdown() waits for serve_forever to notice.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="purchases-service", daemon=True
        )
        self._thread.start()
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"

    @property
    def purchase_requests(self) -> int:
        """How many `/purchases` requests reached the server, faulty ones included."""
        with self._server.state_lock:
            return self._server.purchase_requests

    def stop(self) -> None:
        """Stop serving and free the port; requests still sleeping in a timeout fault are cut short."""
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RunningService:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_service(
    landing_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 7,
    faults: str | None = None,
    history_start: date = DEFAULT_HISTORY_START,
    fault_sleep_s: float = DEFAULT_FAULT_SLEEP_S,
) -> RunningService:
    """Serve the purchase history of `<landing_dir>/_stand_in/store_customers.csv`; port 0 picks a free port."""
    history = PurchaseHistory(read_store_customers(landing_dir), seed=seed, history_start=history_start)
    server = _PurchasesServer((host, port), history, FaultPlan(parse_faults(faults)), fault_sleep_s)
    return RunningService(server)


def main(argv: Sequence[str] | None = None) -> int:
    """`custpipe purchases-api`: serve the purchase history until interrupted."""
    parser = argparse.ArgumentParser(prog="custpipe purchases-api", description=main.__doc__)
    parser.add_argument("--landing-dir", type=Path, default=Path("data/landing"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--history-start", type=date.fromisoformat, default=DEFAULT_HISTORY_START)
    parser.add_argument("--faults", default=None, help='e.g. "500:2,429:1,timeout:1,malformed:1,duplicate_page:1"')
    parser.add_argument(
        "--fault-sleep", type=float, default=DEFAULT_FAULT_SLEEP_S, help="seconds a timeout fault waits"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = start_service(
        args.landing_dir,
        host=args.host,
        port=args.port,
        seed=args.seed,
        faults=args.faults,
        history_start=args.history_start,
        fault_sleep_s=args.fault_sleep,
    )
    print(f"purchase-history service on {service.url} (Ctrl+C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0
