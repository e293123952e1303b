"""Dagster resource of the segmentation domain: the store purchase-history REST API, reached by URL.

This resource never starts a service. With CUSTPIPE_PURCHASES_API_URL unset, `build_definitions` uses the bundled
stand-in instead (`custpipe_assets.sample.bundled_api.BundledPurchasesApi`, a subclass that starts it for the step).
"""

from datetime import date

import dagster as dg

from custpipe_assets.segmentation.purchases_client import FetchResult, PurchasesApiError, fetch_purchases


class PurchasesApiResource(dg.ConfigurableResource):
    """Fetches store purchases a week at a time, with timeouts and retries (urllib3 Retry) in the client."""

    url: str = ""
    timeout_s: float = 10.0
    retries: int = 5
    backoff_factor: float = 0.5

    @property
    def base_url(self) -> str:
        return self.url

    def fetch_week(self, week: date) -> FetchResult:
        """Every purchase of the week starting `week`; raises dg.Failure naming the URL after the last retry."""
        try:
            return fetch_purchases(
                self.base_url,
                week,
                date.fromordinal(week.toordinal() + 7),
                timeout_s=self.timeout_s,
                retries=self.retries,
                backoff_factor=self.backoff_factor,
            )
        except PurchasesApiError as error:
            raise dg.Failure(description=f"store purchases for the week of {week}: {error}") from error
