"""Property-based tests of the CTR API against its own OpenAPI schema (schemathesis), over real HTTP on 127.0.0.1.

Schemathesis generates valid and invalid parameter combinations from the served /openapi.json and checks that
the server never fails (5xx), answers only with documented status codes and content types, rejects invalid input
and returns bodies matching the documented schema (a CtrPoint list or an ErrorResponse). Timestamps drawn from the
schema alone span years 0000-9999 and mostly miss the data, so one run moves each generated range inside the two
generated days to exercise the successful path too.

The schema is loaded from the live server inside the test and driven through `as_strategy` + hypothesis:
`schemathesis.pytest.from_fixture` (schemathesis 4.32) sets `request.node._nodeid`, which pytest 9 no longer has.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

DATA_START = datetime(2018, 9, 3)  # the `generated` fixture covers two local days from here


@pytest.mark.parametrize(
    ("mode", "inside_the_data"),
    [
        (schemathesis.GenerationMode.POSITIVE, False),
        (schemathesis.GenerationMode.POSITIVE, True),
        (schemathesis.GenerationMode.NEGATIVE, False),
    ],
)
def test_ctr_api_honours_its_openapi_schema(
    live_api: str, mode: schemathesis.GenerationMode, inside_the_data: bool
) -> None:
    operation = schemathesis.openapi.from_url(f"{live_api}/openapi.json")["/ctr"]["GET"]
    statuses: list[int] = []

    @given(
        case=operation.as_strategy(generation_mode=mode),
        window=st.tuples(st.integers(0, 2 * 24 * 60 - 1), st.integers(1, 12 * 60)),
    )
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    def call(case: schemathesis.Case, window: tuple[int, int]) -> None:
        if inside_the_data:
            start = DATA_START + timedelta(minutes=window[0])
            end = start + timedelta(minutes=window[1])
            case.query = {**case.query, "startTimestamp": f"{start:%Y-%m-%d %H:%M:%S}"}
            case.query["endTimestamp"] = f"{end:%Y-%m-%d %H:%M:%S}"
        # Schema-valid requests can still get a documented 422: OpenAPI cannot say that endTimestamp must follow
        # startTimestamp, that the date must exist (2018-02-30) or bound the response size, so "valid data is
        # accepted" does not apply. Status, content type and body of those 422s are still checked.
        response = case.call_and_validate(base_url=live_api, excluded_checks=[positive_data_acceptance])
        statuses.append(response.status_code)

    call()
    if inside_the_data:
        assert statuses.count(200) >= 10, f"the successful path was exercised: {statuses}"
