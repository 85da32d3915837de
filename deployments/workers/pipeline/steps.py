"""The pipeline's steps. Each has execute(ctx) and rollback(ctx); what a step makes is saved
on the deployment (ctx.save) before the next step starts, so rollback — in this process or,
after a crash, in the warden — knows exactly what exists and undoes only that."""

import shutil
from pathlib import Path

from django.conf import settings

from deployments.adapters.builders import BuildPlan, build_image, detect
from deployments.adapters.git_providers.tokens import clone_token_for
from deployments.adapters.runtime import ContainerSpec
from deployments.adapters.sources import fetch
from deployments.adapters.sources.archive import archive_limits, extract_archive
from deployments.workers.pipeline.context import Context
from deployments.workers.pipeline.errors import StepFailed


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


class StartContainer(Step):
    name = "start"

    def execute(self, ctx):
        d = ctx.deployment
        if ctx.reuses_image:
            self._reuse_image(ctx)
        d.mark_starting()
        ctx.log(f"==> Starting container from {d.image_tag or d.image_id[:19]}")
        ctx.runtime.ensure_network(ctx.network, ctx.app.resource_labels)
        for volume in ctx.environment.volume_mounts():
            ctx.runtime.ensure_volume(volume, ctx.app.resource_labels)
        spec = container_spec(ctx)
        ctx.save(self.name, container_name=spec.name)
        container_id = ctx.runtime.start(spec)
        d.containers = [container_id]
        d.save(update_fields=["containers"])
        ctx.save(self.name, container_id=container_id)

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
        container = ctx.data.get("container_id") or ctx.data.get("container_name")
        if container:
            ctx.runtime.remove(container)


class HealthCheck(Step):
    name = "health"

    def execute(self, ctx):
        endpoint = ctx.runtime.endpoint(ctx.data["container_id"], ctx.network)
        ctx.log(f"==> Health check: GET {ctx.app.health_check_path} on port {ctx.port}")
        seconds = ctx.runtime.wait_healthy(
            ctx.data["container_id"],
            endpoint,
            ctx.app.health_check_path,
            settings.PAAS_HEALTH_TIMEOUT,
            ctx.log,
        )
        ctx.log(f"Healthy after {seconds:.2f}s")
        ctx.save(self.name, upstream=str(endpoint))


class SwitchRoute(Step):
    name = "switch"

    def execute(self, ctx):
        env = ctx.environment
        previous = ctx.proxy.upstream_of(env.route_id)
        ctx.save(self.name, previous_upstream=previous, switched=False)
        ctx.proxy.set_route(env.route_id, env.hostnames, ctx.data["upstream"])
        ctx.save(self.name, switched=True)
        ctx.log(f"==> Routed {env.url} to the new container")

    def rollback(self, ctx):
        if "previous_upstream" not in ctx.data:
            return
        env, previous = ctx.environment, ctx.data.get("previous_upstream")
        if previous:
            ctx.proxy.set_route(env.route_id, env.hostnames, previous)
        elif env.live_deployment_id is None:
            ctx.proxy.remove_route(env.route_id)


def image_tag(ctx) -> str:
    return f"{settings.PAAS_INSTANCE}/{ctx.app.name}:{ctx.deployment.number}"


def container_spec(ctx):
    env = ctx.environment.env_dict()
    env["PORT"] = str(ctx.port)
    return ContainerSpec(
        name=f"{settings.PAAS_INSTANCE}-{ctx.app.name}-{ctx.environment.name}-{ctx.deployment.number}",
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
    StartContainer(),
    HealthCheck(),
    SwitchRoute(),
]
