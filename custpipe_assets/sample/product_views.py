"""Synthetic landing data for the product-views domain (Amaro formats), deterministic for a seed.

Belongs here: writing `amaro/orders.csv`, `amaro/order_items.csv` and `amaro/product_views/<platform>/*.json`
with realistic proportions and the dirt the pipeline must survive. Nothing here is read back by the pipeline;
parsing lives in `transforms.py` and the layer modules it gathers.

Shape of the data:
- Sessions happen during `days` local days (GMT-03:00) starting at `start`, more of them at lunch and in the
  evening. View files hold the batches whose first event falls on one UTC day, so a session running past UTC
  midnight puts events of the next day in the file (the real export crosses midnight too). Files have the real
  AMARO shape, one per platform and day, `productEvent_YYYYMMDD.json`, except the second day of Android and
  MobileWeb, in the older shape (`YYYY-MM-DD_part-NNN.json`, several parts), so both names keep working.
- Two planted sessions always cross a boundary: one UTC midnight on the first day, one Sunday -> Monday UTC
  (the first Sunday on or after `start`, even when it lies past the last day), so one file spans two weeks.
- Event ids in the real-shape files went through a float on export (as in the real file): they collide, many
  views share one id while being different events. Ids in the older files are exact and unique.
- A session is one user on one platform: session start/end and screen views, product views
  (custom_event "product", the only events that count), searches and add-to-cart events (which also carry a
  codeColor). Its events are uploaded in one or two batches.
- Orders follow some sessions' product views a few minutes later on the same platform; desktop orders have no
  views at all (the platform is labelled `Other` downstream).

Dirt, each kind present at least once: device names spelled several ways, cancelled/refunded/pending orders,
an unknown order status, `\r\r\n` line ends in orders.csv and `\r\n` in order_items.csv (a guess: real AMARO
line ends are unknown; the Revolve exports end lines with `\r\r\n`), a ragged order line, an unparseable order date, a duplicated order line, an item whose
order does not exist, items with a malformed code_color, items for products nobody viewed, a truncated JSON file,
a batch delivered twice (in two part files, and again at the end of a real-shape file), product views without codeColor or with a non-numeric timestamp, fractional millisecond
timestamps and ids near the int64 limits.

This module is the entry point and the summary; the parts live beside it: `product_views_sessions.py` (the
catalogue, sessions and their events), `product_views_files.py` (the view files) and `product_views_orders.py`
(the orders that follow the sessions, and the order CSVs).
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from custpipe_assets.sample.product_views_files import write_view_files
from custpipe_assets.sample.product_views_orders import orders_from_sessions, write_orders
from custpipe_assets.sample.product_views_sessions import (
    UniqueIds,
    boundary_sessions,
    inject_view_dirt,
    make_catalog,
    sessions_for_day,
)


@dataclass
class GenerationSummary:
    """What was written, so tests and people can see the proportions and where the dirt is."""

    amaro_dir: Path
    orders: int = 0
    order_items: int = 0
    view_files: int = 0
    batches: int = 0
    events: int = 0
    product_views: int = 0
    malformed_files: list[str] = field(default_factory=list)
    duplicated_batch_ids: list[str] = field(default_factory=list)
    # landing-relative names of the files planted to cross UTC midnight and a week (Sunday -> Monday)
    midnight_crossing_file: str = ""
    week_crossing_file: str = ""


def generate_product_views_landing(
    landing_dir: Path,
    *,
    seed: int = 7,
    start: date = date(2018, 9, 3),
    days: int = 14,
    views_per_day: int = 3000,
    overwrite: bool = False,
) -> GenerationSummary:
    """Write the Amaro landing files under `landing_dir/amaro`; refuse a non-empty folder unless `overwrite`."""
    if days < 1 or views_per_day < 1:
        raise ValueError("days and views_per_day must be positive")
    amaro_dir = Path(landing_dir) / "amaro"
    if amaro_dir.exists() and any(amaro_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{amaro_dir} is not empty; pass overwrite=True to replace it")
        shutil.rmtree(amaro_dir)
    rng = random.Random(seed)
    ids = UniqueIds(rng)
    catalog = make_catalog(rng, size=150)
    sessions = [
        session
        for day_index in range(days)
        for session in sessions_for_day(rng, ids, catalog, start + timedelta(days=day_index), views_per_day)
    ]
    sessions += boundary_sessions(rng, ids, catalog, start)
    inject_view_dirt(rng, sessions)
    summary = GenerationSummary(amaro_dir=amaro_dir)
    write_view_files(rng, ids, sessions, amaro_dir / "product_views", summary)
    orders, items = orders_from_sessions(rng, sessions, catalog)
    write_orders(rng, orders, items, amaro_dir, summary)
    return summary
