"""Dagster resources of the customers domain: the store purchase-history API.

With no URL configured (CUSTPIPE_PURCHASES_API_URL unset) the bundled service is started on 127.0.0.1 for the
duration of the step that uses it, serving the history of the landing folder's customers.
"""

from datetime import date

import dagster as dg
from pydantic import PrivateAttr

from custpipe_assets.customers.purchases_client import FetchResult, PurchasesApiError, fetch_purchases
from custpipe_assets.customers.purchases_service import RunningService, start_service


class PurchasesApiResource(dg.ConfigurableResource):
    """Fetches store purchases a week at a time, with timeouts and retries (urllib3 Retry) in the client."""

    url: str = ""
    landing_dir: str = "data/landing"
    timeout_s: float = 10.0
    retries: int = 5
    backoff_factor: float = 0.5
    _service: RunningService | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if not self.url:
            self._service = start_service(self.landing_dir)
            if context.log:
                context.log.info(f"CUSTPIPE_PURCHASES_API_URL unset: started the bundled service at {self._service.url}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._service is not None:
            self._service.stop()
            self._service = None

    @property
    def base_url(self) -> str:
        return self.url or (self._service.url if self._service else "")

    def fetch_week(self, week: date) -> FetchResult:
        """Every purchase of the week starting `week`; raises dg.Failure naming the URL after the last retry."""
        try:
            return fetch_purchases(
                self.base_url, week, date.fromordinal(week.toordinal() + 7),
                timeout_s=self.timeout_s, retries=self.retries, backoff_factor=self.backoff_factor,
            )
        except PurchasesApiError as error:
            raise dg.Failure(description=f"store purchases for the week of {week}: {error}") from error
