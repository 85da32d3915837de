"""The pipeline's shape, as data both the worker and the dashboard read.

The worker's step classes (deployments/workers/pipeline/steps.py) carry these names, in
this order; a test checks that the two agree.
"""

from deployments.models.deployment import Trigger

PIPELINE_STEPS: tuple[tuple[str, str], ...] = (
    ("fetch", "Fetch source"),
    ("prepare", "Prepare build"),
    ("build", "Build image"),
    ("release", "Release phase"),
    ("start", "Start containers"),
    ("health", "Health check"),
    ("switch", "Switch traffic"),
)
# Promote, rollback, restart and scale start an image that exists: no fetch, no build.
IMAGE_REUSING_TRIGGERS = frozenset(
    {Trigger.PROMOTE, Trigger.ROLLBACK, Trigger.RESTART, Trigger.SCALE}
)
IMAGE_STEPS = frozenset({"fetch", "prepare", "build"})
# Scale and restart start the image that is live, whose release has run already.
NO_RELEASE_TRIGGERS = frozenset({Trigger.RESTART, Trigger.SCALE})


def reuses_image(trigger: str) -> bool:
    return trigger in IMAGE_REUSING_TRIGGERS


def planned_steps(trigger: str, release: bool = False) -> list[tuple[str, str]]:
    """The (name, label) of each step a deployment with this trigger runs; `release`: it
    has a release command."""
    skipped = set(IMAGE_STEPS if reuses_image(trigger) else ())
    if not release or trigger in NO_RELEASE_TRIGGERS:
        skipped.add("release")
    return [(name, label) for name, label in PIPELINE_STEPS if name not in skipped]
