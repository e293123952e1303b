"""The conversions report in words: the insights and the action steps they suggest, each sentence chosen and
filled from the report's tables, and a segment named best or worst only when it is big enough and its gap is
not chance.
"""

from __future__ import annotations

import math

import polars as pl

from custpipe_assets.conversions.report_tables import SEGMENT_COLUMNS

MIN_SEGMENT_SHARE = 0.02  # segments smaller than this share of conversions are not named best or worst
MIN_SEGMENT_CONVERSIONS = 30
RATE_GAP_WORTH_ACTING = 0.10  # 10 percentage points between best and worst segment
Z_NOT_CHANCE = 3.0  # two-proportion z-score above which a best-vs-worst gap is not put down to chance
DEVICE_GAP_WORTH_ACTING = 0.05
UNMATCHED_REGISTRATIONS_WORTH_ACTING = 0.05
# segment -> its name in a sentence, and the action suggested when its best and worst differ by more than chance
SEGMENT_ACTIONS = {
    "page_category": (
        "page category",
        "Steer traffic toward {best} pages and review the path from {worst} pages to the broker.",
    ),
    "ui_element": ("UI element", "Give {best} more placements and rework or replace {worst}."),
    "country": ("country", "Check the broker's onboarding for {worst} (language, eligibility) against {best}."),
}


def insights_markdown(tables: dict[str, pl.DataFrame], delay_label: str = "the report's weeks") -> str:
    """Insights and the actions they suggest, in words; each sentence is chosen and filled from the tables."""
    overview = tables["overview"].row(0, named=True)
    insights: list[str] = []
    actions: list[str] = []
    if not overview["conversions"]:
        return "# Conversions report\n\nNo conversions in this period: nothing to report.\n"
    insights.append(
        f"{overview['matched_conversions']:,} of {overview['conversions']:,} conversions "
        f"({_pct(overview['registration_rate'])}) became a broker registration."
    )
    if overview["registrations"]:
        unmatched_share = overview["unmatched_registrations"] / overview["registrations"]
        insights.append(
            f"{overview['unmatched_registrations']:,} of the broker's {overview['registrations']:,} registrations "
            f"({_pct(unmatched_share)}) follow no conversion."
        )
        if unmatched_share > UNMATCHED_REGISTRATIONS_WORTH_ACTING:
            actions.append(
                f"Ask the broker to pass back the site's session id: {_pct(unmatched_share)} of its registrations "
                "cannot be attributed by time and country alone."
            )
    min_size = max(MIN_SEGMENT_CONVERSIONS, MIN_SEGMENT_SHARE * overview["conversions"])
    _segment_insight(tables["by_page_category"], "page_category", min_size, insights, actions)
    _segment_insight(tables["by_ui_element"], "ui_element", min_size, insights, actions)
    _device_insight(tables["by_device"], insights, actions)
    _segment_insight(tables["by_country"], "country", min_size, insights, actions)
    _empty_ui_insight(tables["by_ui_element"], insights, actions)
    _score_insight(tables["important_score_by_page_category"], insights, actions)
    _delay_insight(tables["delay_summary"], insights)
    if "fitted_delay" in tables:
        _fitted_delay_insight(tables["fitted_delay"], delay_label, insights)
    _quality_insight(overview, tables["unmapped_measurement_categories"], insights, actions)
    lines = ["# Conversions report", "", "## Insights", ""]
    lines += [f"- {sentence}" for sentence in insights]
    lines += ["", "## Action steps", ""]
    numbered = [f"{number}. {action}" for number, action in enumerate(actions, start=1)]
    lines += numbered or ["No segment stands out enough to act on."]
    lines += ["", "## Registration rate by page category", "", _markdown_table(tables["by_page_category"]), ""]
    if "fitted_delay" in tables:
        lines += [
            f"## The delay the matcher fitted from {delay_label}",
            "",
            "Seconds from conversion to registration below which each share of the true pairs falls.",
            "",
            _markdown_table(tables["fitted_delay"]),
            "",
        ]
    return "\n".join(lines)


def _best_and_worst(table: pl.DataFrame, segment: str, min_size: float) -> tuple[dict, dict] | None:
    """Highest and lowest registration rate among named segments big enough to matter (ties: by name)."""
    eligible = table.filter(
        (pl.col("conversions") >= min_size) & ~pl.col(segment).is_in(list(SEGMENT_COLUMNS.values()))
    ).sort(["registration_rate", segment], descending=[True, False])
    if eligible.height < 2:
        return None
    return eligible.row(0, named=True), eligible.row(-1, named=True)


def _segment_insight(
    table: pl.DataFrame, segment: str, min_size: float, insights: list[str], actions: list[str]
) -> None:
    label, action = SEGMENT_ACTIONS[segment]
    extremes = _best_and_worst(table, segment, min_size)
    if extremes is None:
        return
    best, worst = extremes
    gap = best["registration_rate"] - worst["registration_rate"]
    insights.append(
        f"By {label}, {_code(best[segment])} registers best ({_pct(best['registration_rate'])} of "
        f"{best['conversions']:,}) and {_code(worst[segment])} worst ({_pct(worst['registration_rate'])} of "
        f"{worst['conversions']:,}): a gap of {gap * 100:.1f} points."
    )
    if gap >= RATE_GAP_WORTH_ACTING and _gap_z_score(best, worst) >= Z_NOT_CHANCE:
        actions.append(action.format(best=_code(best[segment]), worst=_code(worst[segment])))


def _gap_z_score(higher: dict, lower: dict) -> float:
    """Two-proportion z-score of the registration-rate gap: small segments' gaps are mostly chance."""
    registered = higher["registrations"] + lower["registrations"]
    converted = higher["conversions"] + lower["conversions"]
    pooled = registered / converted
    spread = math.sqrt(pooled * (1 - pooled) * (1 / higher["conversions"] + 1 / lower["conversions"]))
    gap = higher["registration_rate"] - lower["registration_rate"]
    return gap / spread if spread else 0.0


def _device_insight(table: pl.DataFrame, insights: list[str], actions: list[str]) -> None:
    rates = {row["device"]: row for row in table.iter_rows(named=True)}
    if "mobile" not in rates or "desktop" not in rates:
        return
    mobile, desktop = rates["mobile"], rates["desktop"]
    gap = desktop["registration_rate"] - mobile["registration_rate"]
    insights.append(
        f"Mobile brings {_pct(mobile['share_of_conversions'])} of conversions and registers at "
        f"{_pct(mobile['registration_rate'])}, desktop at {_pct(desktop['registration_rate'])}."
    )
    if abs(gap) >= DEVICE_GAP_WORTH_ACTING and abs(_gap_z_score(desktop, mobile)) >= Z_NOT_CHANCE:
        weaker = "mobile" if gap > 0 else "desktop"
        actions.append(
            f"Audit the {weaker} registration flow on the broker's side: it loses {abs(gap) * 100:.1f} points "
            "against the other device."
        )


def _empty_ui_insight(table: pl.DataFrame, insights: list[str], actions: list[str]) -> None:
    empty = table.filter(pl.col("ui_element") == SEGMENT_COLUMNS["ui_element"])
    if empty.is_empty():
        return
    row = empty.row(0, named=True)
    insights.append(f"{row['conversions']:,} conversions ({_pct(row['share_of_conversions'])}) carry no UI element.")
    actions.append(
        f"Fix the tracking tag that leaves ui_element empty on {_pct(row['share_of_conversions'])} of conversions."
    )


def _score_insight(table: pl.DataFrame, insights: list[str], actions: list[str]) -> None:
    scored = table.filter(
        pl.col("mean_score").is_not_null() & (pl.col("page_category") != SEGMENT_COLUMNS["page_category"])
    )
    if scored.height < 2:
        return
    best, worst = scored.row(0, named=True), scored.row(-1, named=True)
    insights.append(
        f"Registrations from {_code(best['page_category'])} pages score highest on important_score "
        f"(mean {best['mean_score']:.1f}), from {_code(worst['page_category'])} lowest "
        f"(mean {worst['mean_score']:.1f})."
    )
    if best["mean_score"] - worst["mean_score"] >= 1:
        actions.append(
            f"Weigh {_code(best['page_category'])} pages higher than their volume suggests: their registrations "
            f"are worth more to the broker ({best['mean_score'] - worst['mean_score']:.1f} points above "
            f"{_code(worst['page_category'])})."
        )


def _delay_insight(table: pl.DataFrame, insights: list[str]) -> None:
    summary = table.row(0, named=True)
    if not summary["matched"]:
        return
    insights.append(
        f"Registrations follow their conversion after {summary['median_minutes']:.1f} minutes (median); "
        f"90% within {summary['p90_minutes']:.1f}, {_pct(summary['share_within_30_minutes'])} within 30."
    )


def _fitted_delay_insight(table: pl.DataFrame, delay_label: str, insights: list[str]) -> None:
    within = dict(zip(table["share_of_true_pairs"], table["within"], strict=True))
    insights.append(
        f"The delay the matcher learned from {delay_label}: half of the true pairs register within {within['50%']}, "
        f"10% within {within['10%']}, 90% within {within['90%']} (it is fitted from the data, not assumed)."
    )


def _quality_insight(overview: dict, unmapped: pl.DataFrame, insights: list[str], actions: list[str]) -> None:
    if overview["unmapped_conversions"]:
        top = ", ".join(
            f"{_code(row['measurement_category'])} ({row['conversions']})"
            for row in unmapped.head(3).iter_rows(named=True)
        )
        insights.append(
            f"{overview['unmapped_conversions']:,} conversions have a measurement category outside the mapping; "
            f"most common: {top}."
        )
        actions.append(
            "Extend the page-category mapping for the legitimate categories above and find where the junk ones "
            "are emitted."
        )
    if overview["unresolved_country_conversions"]:
        insights.append(
            f"{overview['unresolved_country_conversions']:,} conversions have a country no ISO code fits; "
            "they can only be matched by time."
        )


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


def _code(value: object) -> str:
    """Render a data value inline and inert: junk like `<script>` must not become markup."""
    return "`" + str(value).replace("`", "'") + "`"


def _markdown_table(frame: pl.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])
