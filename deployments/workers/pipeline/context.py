"""What every step sees: the deployment, the adapters, and a log that goes to the database."""

from dataclasses import dataclass
from functools import cached_property

from django.conf import settings

from deployments.adapters.router import Router
from deployments.adapters.runtime import RuntimeBackend
from deployments.models import Deployment
from deployments.models.pipeline import reuses_image
from deployments.workers.outages import through_outages


@dataclass
class Context:
    deployment: Deployment
    runtime: RuntimeBackend
    router: Router | None

    @property
    def app(self):
        return self.deployment.app

    @property
    def environment(self):
        return self.deployment.environment

    @property
    def data(self) -> dict:
        return self.deployment.step_data

    def log(self, text: str) -> None:
        through_outages(lambda: self.deployment.log(text))

    def save(self, step: str, **data) -> None:
        self.deployment.record_step(step, **data)

    @property
    def reuses_image(self) -> bool:
        return reuses_image(self.deployment.trigger)

    @property
    def release_command(self) -> str:
        """What the release phase runs: an image put back live brings its own command."""
        d = self.deployment
        if self.reuses_image and "processes" not in self.data:
            return d.source_deployment.release_command if d.source_deployment else ""
        return d.release_command

    @property
    def network(self) -> str:
        return self.app.network

    @property
    def port(self) -> int:
        return self.app.port or settings.PAAS_DEFAULT_PORT

    @property
    def labels(self) -> dict[str, str]:
        return {
            **self.app.resource_labels,
            "slipway.environment": self.environment.name,
            "slipway.deployment": str(self.deployment.number),
        }

    @cached_property
    def build_dir(self):
        d = self.deployment
        return settings.PAAS_BUILD_DIR / f"{self.app.name}-{d.number}-{d.attempt}"
