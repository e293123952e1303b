"""Weekly job, schedule and arrival sensor of the product-views domain: a new or changed view file runs the UTC
weeks its events fall in (read from the events' own timestamps, once per version of the file)."""

from datetime import date
from pathlib import Path

from custpipe_assets.core.arrivals import LandedFiles
from custpipe_assets.core.automation import Arrivals, WeeklyAutomation
from custpipe_assets.product_views import assets
from custpipe_assets.product_views.view_files import scan_view_file

WEEKLY_PRODUCT_VIEWS_JOB = "weekly_product_views"


def weeks_of_landed_view_file(path: Path) -> tuple[date, ...]:
    """Every week a record of the file belongs to (its events' weeks, or its home week when none can be read):
    the weeks bronze will put it in, so a sensor or `make run` that runs them leaves nothing of it unrun."""
    path = Path(path)
    views_dir = next(
        (
            parent
            for parent in path.parents
            if parent.name == "product_views" and parent.parent.name == assets.AMARO_DIR
        ),
        None,
    )
    if views_dir is None or not path.is_file():
        return ()
    return scan_view_file(path, views_dir, views_dir.parent.parent).weeks


# every file under the folder, not only `*.json` in a platform folder: bronze quarantines the others in their week
LANDED_FILES = LandedFiles(f"{assets.AMARO_DIR}/product_views/**/*", weeks_of_landed_view_file)


WEEKLY = WeeklyAutomation(
    WEEKLY_PRODUCT_VIEWS_JOB,
    "One week of product-view events: bronze -> silver views -> CTR per minute (the API snapshot follows).",
    also=(assets.BRONZE_VIEW_FILES,),
    arrivals=Arrivals(
        "product_view_arrivals",
        LANDED_FILES,
        recorded_on=assets.BRONZE_VIEW_EVENTS,
        description="Runs exactly the weeks whose product-view files differ from what bronze/product_view_events "
        "last read for that week (once per file set), by the weeks of the events inside them.",
    ),
)
