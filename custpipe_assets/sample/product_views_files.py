"""The product-view files (`amaro/product_views/<platform>/*.json`): sessions' events uploaded in batches, grouped
by platform and UTC day into real-shape files or older-shape part files, with the file-level dirt (ids through a
float, a batch delivered twice, a truncated upload).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from custpipe_assets.sample.product_views_sessions import INT64_MAX, Session, UniqueIds, is_product_view

if TYPE_CHECKING:
    from custpipe_assets.sample.product_views import GenerationSummary


def _batches(rng: random.Random, ids: UniqueIds, session: Session) -> list[dict]:
    """The session's events uploaded in one batch, or in two for about a third of the longer sessions."""
    events = session.events
    split = len(events) > 3 and rng.random() < 0.3 and not session.one_batch
    cut = rng.randrange(1, len(events)) if split else len(events)
    session_end = max(map(_timestamp_or_zero, events))
    batches = []
    for chunk in (events[:cut], events[cut:]):
        if not chunk:
            continue
        last_time = max(map(_timestamp_or_zero, chunk)) or session_end
        batches.append(
            {
                "events": chunk,
                "mpid": session.mpid,
                "timestamp_unixtime_ms": last_time + rng.randrange(100, 5000),
                "batch_id": ids.next(),
                "message_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "message_type": "events",
                "schema_version": 1,
            }
        )
    return batches


def _timestamp_or_zero(event: dict) -> float:
    timestamp = event["data"]["timestamp_unixtime_ms"]
    return timestamp if isinstance(timestamp, (int, float)) else 0.0


def write_view_files(
    rng: random.Random, ids: UniqueIds, sessions: list[Session], views_dir: Path, summary: GenerationSummary
) -> None:
    """Batches grouped by platform and UTC day of the batch's first event: one real-shape file per group, or a
    few older-shape part files for the second day of Android and MobileWeb (where the older dirt sits)."""
    grouped: dict[tuple[str, date], list[dict]] = {}
    boundary_batches: dict[int, str] = {}
    for session in sessions:
        for batch in _batches(rng, ids, session):
            event_times = [time for time in map(_timestamp_or_zero, batch["events"]) if time]
            first_time = min(event_times, default=batch["timestamp_unixtime_ms"])  # (a lone bad-time event)
            day = datetime.fromtimestamp(first_time / 1000, tz=UTC).date()
            grouped.setdefault((session.platform, day), []).append(batch)
            if session.one_batch:
                boundary_batches[id(batch)] = "midnight" if session.platform == "iOS" else "week"
    days = sorted({day for _, day in grouped})
    dirty_day = days[min(1, len(days) - 1)]
    repeated_day = days[0]
    for (platform, day), batches in sorted(grouped.items(), key=lambda item: (item[0][1], item[0][0])):
        batches.sort(key=lambda batch: batch["timestamp_unixtime_ms"])
        older_shape = platform in ("Android", "MobileWeb") and day == dirty_day
        if older_shape:
            parts = _split(batches, rng.randint(2, 4))
            names = [f"{day.isoformat()}_part-{number:03d}.json" for number in range(1, len(parts) + 1)]
        else:
            _lose_id_precision(batches)
            parts, names = [batches], [f"productEvent_{day:%Y%m%d}.json"]
            if platform == "iOS" and day == repeated_day:
                batches.append(batches[-1])  # the exporter retried: the last batch is landed twice
                summary.duplicated_batch_ids.append(str(batches[-1]["batch_id"]))
        if older_shape and platform == "Android" and len(parts) > 1 and len(parts[0]) > 1:
            # The upstream exporter retried: the last batch of part 1 is delivered again at the top of part 2.
            parts[1].insert(0, parts[0][-1])
            summary.duplicated_batch_ids.append(str(parts[0][-1]["batch_id"]))
        for part_number, (part, name) in enumerate(zip(parts, names, strict=True), start=1):
            path = views_dir / platform / name
            text = "[\n" + ",\n".join(json.dumps(batch, ensure_ascii=False) for batch in part) + "\n]\n"
            if older_shape and platform == "MobileWeb" and part_number == len(parts):
                text = text[: len(text) * 3 // 5]  # the upload was cut off mid-file
                summary.malformed_files.append(str(path.relative_to(views_dir.parent)))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            landed_name = path.relative_to(views_dir.parent.parent).as_posix()
            for batch in part:
                if boundary_batches.get(id(batch)) == "midnight":
                    summary.midnight_crossing_file = landed_name
                elif boundary_batches.get(id(batch)) == "week":
                    summary.week_crossing_file = landed_name
            summary.view_files += 1
            summary.batches += len(part)
            summary.events += sum(len(batch["events"]) for batch in part)
            summary.product_views += sum(is_product_view(e) for batch in part for e in batch["events"])


def _lose_id_precision(batches: list[dict]) -> None:
    """Event ids as the real export writes them: through a float64, so neighbouring 64-bit ids become one number
    (here ids near the int64 limit collapse onto a handful of values, printed as JavaScript would print the float:
    `9223372036854776000`; how the real export printed them is a guess, that its ids collide is not)."""
    for batch in batches:
        for event in batch["events"]:
            event_id = event["data"]["event_id"]
            event["data"]["event_id"] = int(Decimal(repr(float(INT64_MAX - abs(event_id) % 4096))))


def _split(batches: list[dict], parts: int) -> list[list[dict]]:
    parts = max(1, min(parts, len(batches)))
    size = -(-len(batches) // parts)
    return [batches[index : index + size] for index in range(0, len(batches), size)]
