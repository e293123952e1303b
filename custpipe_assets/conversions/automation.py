"""Weekly job, schedule and arrival sensor of the conversions domain.

A week's matching reads the weeks on either side of it, so runs here cover stretches of weeks: a new or changed
conversions or broker batch file runs the weeks its lines belong to plus one week on either side, and the Monday
schedule runs the week that just ended together with the week before it (whose look-ahead reaches into it).
"""

import functools
from datetime import date
from pathlib import Path

from custpipe_assets.conversions import assets
from custpipe_assets.conversions.formats import SOURCE_DIR
from custpipe_assets.conversions.transforms import BATCH_FORMATS, read_batch_file
from custpipe_assets.core.arrivals import LandedFiles
from custpipe_assets.core.automation import Arrivals, WeeklyAutomation

WEEKLY_CONVERSIONS_JOB = "weekly_conversions"


def weeks_in_batch_file(path: Path) -> list[date]:
    """The weeks a batch file's lines belong to, by the same rule bronze uses (so no line is left unrun)."""
    if path.parent.name not in BATCH_FORMATS:
        return []
    stat = path.stat()
    return list(_weeks_in_file_version(path, stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=20_000)
def _weeks_in_file_version(path: Path, size: int, mtime_ns: int) -> tuple[date, ...]:
    """Read once per version of a file: the sensor asks every minute about every batch file, and reading them all
    takes seconds at two years of history (measured: 6.1 s for 107 files, 860k lines)."""
    return tuple(sorted(read_batch_file(path).rows.get_column("week_start").unique()))


LANDED_FILES = LandedFiles(f"{SOURCE_DIR}/[cb]*/*.csv", weeks_in_batch_file)


WEEKLY = WeeklyAutomation(
    WEEKLY_CONVERSIONS_JOB,
    "Conversion and broker batches read, cleaned and matched for a stretch of weeks (mapping and file inventory too).",
    also=(assets.BRONZE_MAPPING, assets.BRONZE_FILES, assets.SILVER_MAPPING, assets.MAPPING_QUARANTINE),
    arrivals=Arrivals(
        "conversion_arrivals",
        LANDED_FILES,
        recorded_on=assets.BRONZE_CONVERSIONS,
        description="Runs the weeks whose conversions or broker-data batch files differ from what "
        "bronze/conversions last read for that week, and their neighbours.",
        neighbour_weeks=1,
    ),
    scheduled_weeks=2,
)
