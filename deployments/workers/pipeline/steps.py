"""The pipeline's steps. Each has execute(ctx) and rollback(ctx); what a step makes is saved
on the deployment (ctx.save) before the next step starts, so rollback — in this process or,
after a crash, in the warden — knows exactly what exists and undoes only that."""

import shutil
from dataclasses import asdict
from pathlib import Path

from django.conf import settings

from deployments.adapters.builders import BuildPlan, build_image, detect
from deployments.adapters.git_providers.tokens import clone_token_for
from deployments.adapters.router import Route
from deployments.adapters.runtime import ContainerSpec
from deployments.adapters.sources import fetch
from deployments.adapters.sources.archive import archive_limits, extract_archive
from deployments.workers import routing
from deployments.workers.networks import ensure_app_network
from deployments.workers.pipeline.context import Context
from deployments.workers.pipeline.errors import StepFailed
from deployments.workers.routing import health_path_for

# The router applies a changed file within its throttle (50 ms); this is the ceiling.
SWITCH_TIMEOUT = 10.0


class Step:
    name = "step"

    def skip(self, ctx: Context) -> bool:
        return False

    def execute(self, ctx: Context) -> None:
        raise NotImplementedError

    def rollback(self, ctx: Context) -> None:
        """Undo what execute made; must work from ctx.data alone (after a crash too)."""


class FetchSource(Step):
    name = "fetch"

    def skip(self, ctx):
        return ctx.reuses_image

    def execute(self, ctx):
        ctx.save(self.name, clone_dir=str(ctx.build_dir))
        d = ctx.deployment
        if d.trigger == "archive":
            archive = ctx.data.get("archive")
            if not archive or not Path(archive).is_file():
                raise StepFailed(
                    "archive_missing", "The uploaded archive is gone; upload it again.", True
                )
            count = extract_archive(Path(archive), ctx.build_dir, *archive_limits())
            ctx.log(f"Extracted {count} files from the uploaded archive")
            return
        token, token_user = clone_token_for(ctx.app)
        fetched = fetch(
            ctx.app.repository,
            d.branch,
            ctx.build_dir,
            commit_sha=d.commit_sha,
            token=token,
            token_user=token_user,
            log=ctx.log,
        )
        d.commit_sha, d.commit_message, d.branch = (
            fetched.commit_sha,
            fetched.commit_message[:500],
            fetched.branch,
        )
        d.save(update_fields=["commit_sha", "commit_message", "branch"])

    def rollback(self, ctx):
        remove_build_dir(ctx)


class PrepareBuild(Step):
    name = "prepare"

    def skip(self, ctx):
        return ctx.reuses_image

    def execute(self, ctx):
        plan = detect(ctx.build_dir, ctx.deployment.build_method or ctx.app.build_method)
        ctx.log(f"==> Build plan: {plan.description}")
        ctx.deployment.build_method = plan.method
        ctx.deployment.save(update_fields=["build_method"])
        ctx.save(self.name, dockerfile=plan.dockerfile_path, method=plan.method)


class BuildImage(Step):
    name = "build"

    def skip(self, ctx):
        return ctx.reuses_image

    def execute(self, ctx):
        plan = BuildPlan(
            method=ctx.data["method"], dockerfile_path=ctx.data["dockerfile"], description=""
        )
        tag = image_tag(ctx)
        ctx.save(self.name, image_tag=tag)
        image_id = build_image(ctx.runtime.client, ctx.build_dir, plan, tag, ctx.labels, ctx.log)
        d = ctx.deployment
        d.image_id, d.image_tag = image_id, tag
        d.save(update_fields=["image_id", "image_tag"])
        ctx.save(self.name, image_id=image_id)
        remove_build_dir(ctx)  # the image holds everything now; free the disk early

    def rollback(self, ctx):
        tag = ctx.data.get("image_tag")
        if tag:
            ctx.runtime.remove_image(tag)  # shared cached layers stay for the next build


class StartContainers(Step):
    """The environment's web replicas, all from the deployment's image."""

    name = "start"

    def execute(self, ctx):
        d = ctx.deployment
        if ctx.reuses_image:
            self._reuse_image(ctx)
        d.mark_starting()
        replicas = max(1, ctx.environment.replicas)
        plural = "s" if replicas > 1 else ""
        ctx.log(f"==> Starting {replicas} container{plural} from {d.image_tag or d.image_id[:19]}")
        ensure_app_network(ctx.app, ctx.runtime)
        for volume in ctx.environment.volume_mounts():
            ctx.runtime.ensure_volume(volume, ctx.app.resource_labels)
        names = [container_spec(ctx, index).name for index in range(replicas)]
        ctx.save(self.name, container_names=names, container_ids=[])
        started = []
        for index in range(replicas):
            started.append(ctx.runtime.start(container_spec(ctx, index)))
            # Saved after each one: a crash in the middle leaves nothing unaccounted for.
            d.containers = list(started)
            d.save(update_fields=["containers"])
            ctx.save(self.name, container_ids=list(started))

    def _reuse_image(self, ctx):
        d, source = ctx.deployment, ctx.deployment.source_deployment
        if source is None or not source.image_id:
            raise StepFailed("image_missing", "The source deployment has no image to reuse.", True)
        d.image_id, d.image_tag, d.commit_sha = source.image_id, source.image_tag, source.commit_sha
        d.commit_message, d.build_method = source.commit_message, source.build_method
        d.save(
            update_fields=["image_id", "image_tag", "commit_sha", "commit_message", "build_method"]
        )
        ctx.log(f"==> Reusing the image of deployment #{source.number} (no build)")

    def rollback(self, ctx):
        made = ctx.data.get("container_ids") or []
        for container in [*made, *ctx.data.get("container_names", [])[len(made) :]]:
            ctx.runtime.remove(container)


class HealthCheck(Step):
    """Every new replica must answer before any of them takes traffic."""

    name = "health"

    def execute(self, ctx):
        path = ctx.app.health_check_path
        ctx.log(f"==> Health check: GET {path} on port {ctx.port}")
        upstreams = []
        for container in ctx.data["container_ids"]:
            endpoint = ctx.runtime.endpoint(container, ctx.network)
            seconds = ctx.runtime.wait_healthy(
                container, endpoint, path, settings.PAAS_HEALTH_TIMEOUT, ctx.log
            )
            ctx.log(f"Healthy after {seconds:.2f}s")
            upstreams.append(str(endpoint))
        ctx.save(self.name, upstreams=upstreams, router_health=health_path_for(upstreams[0], path))


class SwitchRoute(Step):
    """One write moves the whole pool to the new replicas; the old ones keep serving the
    requests they have until they are retired after the drain period."""

    name = "switch"

    def execute(self, ctx):
        env = ctx.environment
        previous = ctx.router.get(env.route_id)
        ctx.save(self.name, previous_route=asdict(previous) if previous else None, switched=False)
        route = routing.apply(env, ctx.router, ctx.data["upstreams"], ctx.data["router_health"])
        if route is not None:
            seconds = ctx.router.wait_applied(route, timeout=SWITCH_TIMEOUT)
            ctx.log(f"==> Routed {env.url} to the new containers ({seconds * 1000:.0f} ms)")
        else:
            ctx.log("==> Not routed: the environment is internal")
        ctx.save(self.name, switched=True)

    def rollback(self, ctx):
        if "previous_route" not in ctx.data:
            return
        previous = ctx.data.get("previous_route")
        if previous:
            ctx.router.apply(route_from_dict(previous))
        elif ctx.environment.live_deployment_id is None:
            ctx.router.remove(ctx.environment.route_id)


def image_tag(ctx) -> str:
    return f"{settings.PAAS_INSTANCE}/{ctx.app.name}:{ctx.deployment.number}"


def container_spec(ctx, replica: int = 0) -> ContainerSpec:
    """Replica 0 keeps the name a single container always had; others get a suffix."""
    env = ctx.environment.env_dict()
    env["PORT"] = str(ctx.port)
    name = f"{settings.PAAS_INSTANCE}-{ctx.app.name}-{ctx.environment.name}-{ctx.deployment.number}"
    return ContainerSpec(
        name=name if replica == 0 else f"{name}-{replica + 1}",
        image=ctx.deployment.image_id,
        env=env,
        port=ctx.port,
        labels=ctx.labels,
        network=ctx.network,
        memory=settings.PAAS_CONTAINER_MEMORY,
        cpus=settings.PAAS_CONTAINER_CPUS,
        volumes=ctx.environment.volume_mounts(),
    )


def remove_build_dir(ctx) -> None:
    clone_dir = ctx.data.get("clone_dir")
    if clone_dir:
        shutil.rmtree(clone_dir, ignore_errors=True)


STEPS: list[Step] = [
    FetchSource(),
    PrepareBuild(),
    BuildImage(),
    StartContainers(),
    HealthCheck(),
    SwitchRoute(),
]


def route_from_dict(data: dict) -> Route:
    """A Route saved in step_data (lists where the Route has tuples)."""
    tuples = {key: tuple(value) for key, value in data.items() if isinstance(value, list)}
    return Route(**{**data, **tuples})
