"""The landing folder as a Dagster resource: where sources arrive, with one clear error when it is missing."""

from pathlib import Path

import dagster as dg

from custpipe_assets.core.settings import SettingsError, require_landing_dir


class LandingResource(dg.ConfigurableResource):
    """The folder sources land in (`CUSTPIPE_LANDING_DIR`)."""

    path: str

    def root(self) -> Path:
        try:
            return require_landing_dir(Path(self.path))
        except SettingsError as error:
            raise dg.Failure(description=str(error)) from error
