"""The BrokerChooser generator: deterministic, refuses to overwrite, and plants the dirt and the truth it claims.

Every check here reads the written files with the standard csv module, not with the project's readers.
"""

import csv
import itertools
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from custpipe_assets.sample.conversions import generate_conversions_landing


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _records(path: Path, separator: str) -> list[list[str]]:
    return [next(csv.reader([line], delimiter=separator)) for line in path.read_text("utf-8").splitlines()]


def _batch_files(root: Path, folder: str, prefix: str) -> list[Path]:
    """The dated batch files, in name order (the bad-input files are named otherwise)."""
    return sorted((root / "brokerchooser" / folder).glob(f"{prefix}_2*.csv"))


def _created(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate_conversions_landing(tmp_path / name, seed=seed, weeks=2)
    first, again, other = (_files(tmp_path / name) for name in "abc")
    assert first == again
    assert first.keys() == other.keys()
    assert first["brokerchooser/_truth/matches.csv"] != other["brokerchooser/_truth/matches.csv"]


def test_refuses_a_non_empty_folder_unless_told_to_overwrite(tmp_path):
    stale = tmp_path / "brokerchooser" / "stale.csv"
    stale.parent.mkdir()
    stale.write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_conversions_landing(tmp_path, weeks=1)
    assert stale.read_text() == "old"
    summary = generate_conversions_landing(tmp_path, weeks=1, overwrite=True)
    assert not stale.exists()
    assert (tmp_path / "brokerchooser" / "page_category_mapping.csv").is_file()
    assert set(summary.files) == set(_files(tmp_path / "brokerchooser"))


def test_rejects_a_first_week_that_is_not_a_monday(tmp_path):
    with pytest.raises(ValueError, match="Monday"):
        generate_conversions_landing(tmp_path, first_week=date(2018, 9, 4))


def test_truth_points_at_the_first_landing_of_each_planted_registration(conversions_sample):
    root = conversions_sample.landing_dir / "brokerchooser"
    first_landing: dict[str, str] = {}
    for path in _batch_files(conversions_sample.landing_dir, "broker_data", "broker_export"):
        for line_number, line in enumerate(path.read_text("utf-8").splitlines()[1:], start=2):
            first_landing.setdefault(line, f"broker_data/{path.name}:{line_number}")
    created_at: dict[str, datetime] = {}
    for path in _batch_files(conversions_sample.landing_dir, "conversions", "conversions"):
        for record in _records(path, ";")[1:]:
            if len(record) == 7 and _created(record[5]) is not None:
                created_at.setdefault(record[0], _created(record[5]))

    truth = _records(root / "_truth" / "matches.csv", ",")
    assert truth[0] == ["conversion_id", "registration_key"]
    keys = [key for _, key in truth[1:]]
    assert len(set(keys)) == len(keys), "a registration is planted for two conversions"
    assert len({cid for cid, _ in truth[1:]}) == len(truth) - 1, "a conversion has two planted registrations"
    for conversion_id, key in truth[1:]:
        source_file, line_number = key.rsplit(":", 1)
        line = (root / source_file).read_text("utf-8").splitlines()[int(line_number) - 1]
        assert first_landing[line] == key
        registered_at = datetime.fromtimestamp(int(next(csv.reader([line]))[0]), tz=UTC)
        assert timedelta(0) < registered_at - created_at[conversion_id] <= timedelta(minutes=60)


def test_every_quirk_of_the_real_exports_is_planted(conversions_sample):
    root = conversions_sample.landing_dir / "brokerchooser"
    conversion_rows = [
        record
        for path in _batch_files(conversions_sample.landing_dir, "conversions", "conversions")
        for record in _records(path, ";")[1:]
    ]
    countries_per_id = defaultdict(set)
    for record in conversion_rows:
        if len(record) == 7:
            countries_per_id[record[0]].add(record[2])
    assert sum(len(names) > 1 for names in countries_per_id.values()) >= 20, "ids split into two country rows"
    assert sum(record[4] == "" for record in conversion_rows if len(record) == 7) > 100, "empty ui_element"
    mapped = {record[1] for record in _records(root / "page_category_mapping.csv", ";")[1:]}
    unmapped = {record[6] for record in conversion_rows if len(record) == 7} - mapped
    assert "'; DROP TABLE x;--" in unmapped and "asdf" in unmapped
    assert any(len(record) == 8 for record in conversion_rows), "a conversion row with too many fields"

    broker_files = _batch_files(conversions_sample.landing_dir, "broker_data", "broker_export")
    broker_lines = [(path.name, line) for path in broker_files for line in path.read_text("utf-8").splitlines()[1:]]
    scores = Counter(next(csv.reader([line]))[-1] for _, line in broker_lines)
    assert scores["#REF!"] > 0
    residencies = [next(csv.reader([line]))[1] for _, line in broker_lines]
    assert residencies.count("") > len(residencies) / 2, "country_residency is empty for most rows"
    within_file = Counter(broker_lines)
    assert any(count > 1 for count in within_file.values()), "exact duplicate rows inside a file"
    files_per_line = Counter(line for _, line in set(broker_lines))
    assert any(count > 1 for count in files_per_line.values()), "overlapping batches repeat rows"
    assert any(len(next(csv.reader([line]))) == 5 for _, line in broker_lines), "a broker row with too many fields"

    assert (root / "broker_data" / "broker_export_empty.csv").read_bytes() == b""
    assert (root / "conversions" / "conversions_header_only.csv").read_text().splitlines() == [
        "id;session_id;country_name;is_mobile;ui_element;created_at;measurement_category"
    ]
    comma_header = (root / "conversions" / "conversions_resend_comma.csv").read_text().splitlines()[0]
    assert ";" not in comma_header and comma_header.count(",") == 6


def test_batches_overlap_in_time_and_span_the_weeks(conversions_sample):
    spans = []
    for path in _batch_files(conversions_sample.landing_dir, "conversions", "conversions"):
        times = [_created(r[5]) for r in _records(path, ";")[1:] if len(r) == 7]
        times = [time for time in times if time is not None]
        spans.append((min(times), max(times)))
    assert len(spans) >= 3
    for (_, earlier_end), (later_start, _) in itertools.pairwise(spans):
        assert later_start < earlier_end, "consecutive batch files overlap"
    assert spans[0][0] >= datetime(2018, 9, 3, tzinfo=UTC)
    assert spans[-1][1] < datetime(2018, 10, 29, tzinfo=UTC)


def test_planted_story_rates_noise_traps_and_week_boundaries(conversions_sample):
    root = conversions_sample.landing_dir / "brokerchooser"
    conversions: dict[str, tuple[datetime, str]] = {}
    for path in _batch_files(conversions_sample.landing_dir, "conversions", "conversions"):
        for record in _records(path, ";")[1:]:
            if len(record) == 7 and _created(record[5]) is not None:
                conversions.setdefault(record[0], (_created(record[5]), record[2]))
    broker_rows = {
        line
        for path in _batch_files(conversions_sample.landing_dir, "broker_data", "broker_export")
        for line in path.read_text("utf-8").splitlines()[1:]
        if line.split(",")[0].isdigit() and len(next(csv.reader([line]))) == 4
    }
    truth = _records(root / "_truth" / "matches.csv", ",")[1:]
    registered = {}
    for conversion_id, key in truth:
        source_file, line_number = key.rsplit(":", 1)
        line = (root / source_file).read_text("utf-8").splitlines()[int(line_number) - 1]
        registered[conversion_id] = datetime.fromtimestamp(int(line.split(",")[0]), tz=UTC)

    assert len(conversions) == 3200
    assert 0.65 <= len(truth) / len(conversions) <= 0.75, "about 70% of conversions register"
    assert len(broker_rows) - len(truth) >= 0.05 * len(broker_rows), "registrations without a conversion"

    ordered = sorted(conversions.items(), key=lambda item: item[1][0])
    traps = 0
    for conversion_id, registered_at in registered.items():
        created_at, country = conversions[conversion_id]
        between = [c for _, (t, c) in ordered if created_at < t < registered_at and c != country]
        traps += bool(between)
    assert traps >= 0.03 * len(truth), "another country's conversion sits between a conversion and its registration"

    for week in range(1, 9):
        boundary = datetime(2018, 9, 3, tzinfo=UTC) + timedelta(weeks=week)
        assert any(conversions[cid][0] < boundary <= registered_at for cid, registered_at in registered.items()), (
            f"a registration crosses into the week of {boundary:%Y-%m-%d}"
        )


def _planted_delays(landing: Path) -> list[float]:
    """Seconds from each planted conversion to its registration, read from the written files."""
    root = landing / "brokerchooser"
    created_at: dict[str, datetime] = {}
    for path in _batch_files(landing, "conversions", "conversions"):
        for record in _records(path, ";")[1:]:
            if len(record) == 7 and _created(record[5]) is not None:
                created_at.setdefault(record[0], _created(record[5]))
    delays = []
    for conversion_id, key in _records(root / "_truth" / "matches.csv", ",")[1:]:
        source_file, line_number = key.rsplit(":", 1)
        line = (root / source_file).read_text("utf-8").splitlines()[int(line_number) - 1]
        registered_at = datetime.fromtimestamp(int(next(csv.reader([line]))[0]), tz=UTC)
        delays.append((registered_at - created_at[conversion_id]).total_seconds())
    return delays


def test_delay_regimes_plant_registrations_seconds_or_minutes_after_or_both(tmp_path):
    delays = {}
    for regime in ("seconds", "minutes", "mixed"):
        generate_conversions_landing(tmp_path / regime, weeks=2, delay_regime=regime)
        delays[regime] = _planted_delays(tmp_path / regime)
    # seconds: redirect-and-register, 0 to 5 seconds (a few more where two broker rows would have been identical)
    assert sum(d <= 5 for d in delays["seconds"]) >= 0.99 * len(delays["seconds"])
    assert max(delays["seconds"]) <= 10
    # minutes: 1 to 50 minutes, and the cross-country traps' 25 seconds to 3 minutes
    assert min(delays["minutes"]) >= 25 and max(delays["minutes"]) <= 50 * 60 + 15 * 60
    assert sorted(delays["minutes"])[len(delays["minutes"]) // 2] == pytest.approx(300, rel=0.2)
    # mixed: about half of each
    within_seconds = sum(d <= 5 for d in delays["mixed"]) / len(delays["mixed"])
    assert 0.4 <= within_seconds <= 0.6
    assert all(d <= 10 or d >= 25 for d in delays["mixed"])
    with pytest.raises(ValueError, match="delay_regime"):
        generate_conversions_landing(tmp_path / "other", delay_regime="hours")


def test_the_default_sample_is_the_minutes_regime_at_1x_and_10x_is_ten_times_busier(tmp_path):
    default = generate_conversions_landing(tmp_path / "default", weeks=1)
    minutes = generate_conversions_landing(
        tmp_path / "minutes", weeks=1, delay_regime="minutes", conversions_per_week=400
    )
    assert _files(tmp_path / "default") == _files(tmp_path / "minutes")
    busier = generate_conversions_landing(tmp_path / "busier", weeks=1, conversions_per_week=4000)
    assert (default.conversions, busier.conversions) == (400, 4000)
    assert busier.planted_matches == pytest.approx(10 * minutes.planted_matches, rel=0.1)


def test_custpipe_generate_exposes_the_regime_and_density_with_the_sample_as_default():
    from custpipe_assets.cli import build_parser

    defaults = build_parser().parse_args(["generate"])
    assert (defaults.delay_regime, defaults.conversions_density) == ("minutes", 1)
    chosen = build_parser().parse_args(["generate", "--delay-regime", "mixed", "--conversions-density", "10"])
    assert (chosen.delay_regime, chosen.conversions_density) == ("mixed", 10)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--delay-regime", "hours"])
