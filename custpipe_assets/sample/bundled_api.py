"""The purchase-history API resource for a run with no CUSTPIPE_PURCHASES_API_URL: it starts the bundled stand-in
service (`purchases_service.py`) on 127.0.0.1 for the step that uses it and stops it afterwards."""

import dagster as dg
from pydantic import PrivateAttr

from custpipe_assets.sample.purchases_service import RunningService, start_service
from custpipe_assets.segmentation.resources import PurchasesApiResource


class BundledPurchasesApi(PurchasesApiResource):
    """The production client against the bundled service, which serves the stand-in store system's own customer
    table under the landing folder (`_stand_in/`), never the generator's answer key (`_truth/`)."""

    landing_dir: str = "data/landing"
    _service: RunningService | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._service = start_service(self.landing_dir)
        if context.log:
            context.log.info(f"CUSTPIPE_PURCHASES_API_URL unset: started the bundled service at {self._service.url}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._service is not None:
            self._service.stop()
            self._service = None

    @property
    def base_url(self) -> str:
        return self._service.url if self._service else ""
