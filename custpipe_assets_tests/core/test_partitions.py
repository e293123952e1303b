"""How weekly ranges are cut: batches of weeks within a budget, groups for parallel writers."""

from datetime import date, timedelta

import pytest

from custpipe_assets.core.partitions import weeks_in_batches
from custpipe_assets.core.warehouse import consecutive_groups

WEEKS = [date(2018, 9, 3) + timedelta(weeks=index) for index in range(6)]


def test_batches_keep_weeks_in_order_and_each_within_the_budget():
    weight = dict(zip(WEEKS, [4, 3, 3, 9, 0, 5], strict=True))
    batches = weeks_in_batches(WEEKS, weight, budget=7)
    assert batches == [WEEKS[0:2], [WEEKS[2]], [WEEKS[3]], WEEKS[4:6]]  # the 9 alone: heavier than the budget
    assert [week for batch in batches for week in batch] == WEEKS
    assert all(sum(weight[week] for week in batch) <= 7 for batch in batches if len(batch) > 1)


def test_weeks_without_weight_fit_in_one_batch():
    assert weeks_in_batches(WEEKS, {}, budget=1) == [WEEKS]


@pytest.mark.parametrize("count", [1, 2, 4, 6, 9])
def test_writer_groups_are_consecutive_near_equal_and_cover_every_week(count):
    groups = consecutive_groups(WEEKS, count)
    assert [week for group in groups for week in group] == WEEKS
    assert len(groups) == min(count, len(WEEKS))
    assert max(map(len, groups)) - min(map(len, groups)) <= 1
