"""The pipeline's steps. Each has execute(ctx) and rollback(ctx); what a step makes is saved
on the deployment (ctx.save) before the next step starts, so rollback — in this process or,
after a crash, in the warden — knows exactly what exists and undoes only that."""

import shutil
from dataclasses import asdict
from pathlib import Path

from django.conf import settings

from apps.models import Preview
from deployments.adapters.builders import BuildPlan, build_image, detect
from deployments.adapters.builders.procfile import read_procfile, shell_command
from deployments.adapters.git_providers.tokens import clone_token_for
from deployments.adapters.router import Route
from deployments.adapters.runtime import ContainerSpec, RunOutcome
from deployments.adapters.sources import fetch
from deployments.adapters.sources.archive import archive_limits, extract_archive
from deployments.models import WEB, Deployment, RuntimeLogLine, Status, Trigger
from deployments.models.pipeline import NO_RELEASE_TRIGGERS
from deployments.workers import routing
from deployments.workers.networks import ensure_app_network, ensure_build_network
from deployments.workers.pipeline.context import Context
from deployments.workers.pipeline.errors import Cancelled, StepFailed
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
            ref=pull_request_ref(ctx.environment),
        )
        d.commit_sha, d.commit_message, d.branch = (
            fetched.commit_sha,
            fetched.commit_message[:500],
            fetched.branch,
        )
        d.save(update_fields=["commit_sha", "commit_message", "branch"])

    def rollback(self, ctx):
        remove_build_dir(ctx)


def pull_request_ref(environment) -> str:
    """A preview of a fork's pull request fetches the forge's ref for it; every other
    deployment fetches its branch."""
    preview = Preview.objects.filter(environment=environment).first()
    return preview.fetch_ref if preview and preview.from_fork else ""


class PrepareBuild(Step):
    name = "prepare"

    def skip(self, ctx):
        return ctx.reuses_image

    def execute(self, ctx):
        app = ctx.app
        plan = detect(
            ctx.build_dir,
            ctx.deployment.build_method or app.build_method,
            build_command=app.build_command,
            build_env=ctx.environment.env_dict(),
            start_command=app.start_command,
        )
        ctx.log(f"==> Build plan: {plan.description}")
        ctx.deployment.build_method = plan.method
        ctx.deployment.save(update_fields=["build_method"])
        procfile = read_procfile(ctx.build_dir)
        processes, release = process_commands(procfile, app.start_command, app.release_command)
        log_processes(ctx, processes, release)
        ctx.save(
            self.name,
            dockerfile=plan.dockerfile_path,
            method=plan.method,
            processes=processes,
            release_command=release,
        )


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
        network = ensure_build_network(ctx.runtime)  # RUN steps under the egress firewall
        # The app's labels only: the same at every build, the image's LABEL step comes from
        # the cache (the tag names the deployment; its containers carry the rest).
        labels = ctx.app.resource_labels
        image_id = build_image(
            ctx.runtime.client, ctx.build_dir, plan, tag, labels, ctx.log, network
        )
        d = ctx.deployment
        d.image_id, d.image_tag = image_id, tag
        d.save(update_fields=["image_id", "image_tag"])
        ctx.save(self.name, image_id=image_id)
        remove_build_dir(ctx)  # the image holds everything now; free the disk early

    def rollback(self, ctx):
        tag = ctx.data.get("image_tag")
        if tag:
            ctx.runtime.remove_image(tag)  # shared cached layers stay for the next build
        pushed = ctx.data.get("image_id", "")
        if "@" in pushed:  # a build node's image, in the registry by digest
            ctx.runtime.remove_image(pushed)


class ReleasePhase(Step):
    """The release command, once, in a one-off container of the new image with the new env
    vars and add-ons, before any new container starts: a failure leaves the live deployment
    serving, untouched."""

    name = "release"

    def skip(self, ctx):
        trigger = ctx.deployment.trigger
        if trigger in NO_RELEASE_TRIGGERS:
            return True  # the same release, already run
        if trigger == Trigger.ROLLBACK and not settings.PAAS_RELEASE_ON_ROLLBACK:
            return True
        return not ctx.release_command

    def execute(self, ctx):
        adopt_source_image(ctx)
        command = ctx.release_command
        ctx.log(f"==> Release phase: {command}")
        prepare_runtime(ctx)
        spec = container_spec(ctx, process="release")
        spec.command, spec.restart = shell_command(command), False
        ctx.save(self.name, release_container=spec.name)
        timeout = settings.PAAS_RELEASE_TIMEOUT
        outcome = ctx.runtime.run_once(
            spec, _release_output(ctx, spec.name), timeout, lambda: is_cancelled(ctx)
        )
        release_verdict(outcome, timeout)
        ctx.log("==> Release phase done")

    def rollback(self, ctx):
        name = ctx.data.get("release_container")
        if name:  # run_once removes it; this covers a worker that died during the run
            ctx.runtime.remove(name)


def _release_output(ctx, container: str):
    """Each line into the deployment's log and the runtime log (process `release`)."""

    def line(text: str) -> None:
        ctx.log(text)
        RuntimeLogLine.record(
            ctx.environment, "release", container, text, deployment=ctx.deployment.number
        )

    return line


def release_verdict(outcome: RunOutcome, timeout: int) -> None:
    if outcome.cancelled:
        raise Cancelled()
    if outcome.timed_out:
        raise StepFailed(
            "release_failed", f"The release command did not finish within {timeout}s.", True
        )
    if outcome.exit_code != 0:
        raise StepFailed(
            "release_failed",
            f"The release command exited with code {outcome.exit_code}; nothing was switched.",
            True,
        )


class StartContainers(Step):
    """Every process type's containers, all from the deployment's image: web's replicas
    first (the ones the router will get), then the rest."""

    name = "start"

    def execute(self, ctx):
        d = ctx.deployment
        adopt_source_image(ctx)
        d.mark_starting()
        plan = formation_plan(ctx)
        ctx.log(f"==> Starting {describe_plan(plan)} from {d.image_tag or d.image_id[:19]}")
        prepare_runtime(ctx)
        names = [container_spec(ctx, index, kind).name for kind, index in plan]
        ctx.save(self.name, container_names=names, container_ids=[], process_containers={})
        web, others = [], {}
        for kind, index in plan:
            container = ctx.runtime.start(container_spec(ctx, index, kind))
            if kind == WEB:
                web.append(container)
            else:
                others.setdefault(kind, []).append(container)
            # Saved after each one: a crash in the middle leaves nothing unaccounted for.
            d.containers = [*web, *(c for ids in others.values() for c in ids)]
            d.save(update_fields=["containers"])
            ctx.save(self.name, container_ids=list(web), process_containers=others)

    def rollback(self, ctx):
        made = [*ctx.data.get("container_ids", [])]
        for ids in (ctx.data.get("process_containers") or {}).values():
            made.extend(ids)
        names = ctx.data.get("container_names", [])
        for container in [*made, *names[len(made) :]]:
            ctx.runtime.remove(container)


def adopt_source_image(ctx) -> None:
    """Promote, rollback, restart and scale run the source deployment's image and commands."""
    d, source = ctx.deployment, ctx.deployment.source_deployment
    if not ctx.reuses_image or "processes" in ctx.data:
        return  # built here, or adopted already (the release phase does it first)
    if source is None or not source.image_id:
        raise StepFailed("image_missing", "The source deployment has no image to reuse.", True)
    d.image_id, d.image_tag, d.commit_sha = source.image_id, source.image_tag, source.commit_sha
    d.commit_message, d.build_method = source.commit_message, source.build_method
    d.save(update_fields=["image_id", "image_tag", "commit_sha", "commit_message", "build_method"])
    ctx.save(d.step, processes=source.processes, release_command=source.release_command)
    ctx.log(f"==> Reusing the image of deployment #{source.number} (no build)")


def prepare_runtime(ctx) -> None:
    """The app's network (add-ons answer on it) and the environment's volumes."""
    ensure_app_network(ctx.app, ctx.runtime)
    for volume in ctx.environment.volume_mounts():
        ctx.runtime.ensure_volume(volume, ctx.app.resource_labels)


def formation_plan(ctx) -> list[tuple[str, int]]:
    """(process type, replica index) for every container to start, web's first."""
    kinds = sorted(ctx.deployment.processes, key=lambda kind: (kind != WEB, kind))
    env = ctx.environment
    return [(kind, index) for kind in kinds for index in range(env.process_count(kind))]


def describe_plan(plan: list[tuple[str, int]]) -> str:
    counts: dict[str, int] = {}
    for kind, _ in plan:
        counts[kind] = counts.get(kind, 0) + 1
    if not counts:
        return "no containers (every process type is scaled to 0)"
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def is_cancelled(ctx) -> bool:
    status = Deployment.objects.filter(pk=ctx.deployment.pk).values_list("status", flat=True)
    return status.first() not in (Status.BUILDING, Status.STARTING)


def process_commands(
    procfile: dict[str, str], start_command: str, release_command: str
) -> tuple[dict[str, str], str]:
    """Each process type's command, and the release command: the app's settings win over
    the Procfile; web "" runs the image's own command (the detected one, or the CMD)."""
    processes = {kind: command for kind, command in procfile.items() if kind != "release"}
    processes[WEB] = start_command or procfile.get(WEB, "")
    return processes, release_command or procfile.get("release", "")


IMAGE_COMMAND = "(the image's own command)"


def log_processes(ctx, processes: dict[str, str], release: str) -> None:
    for kind, command in sorted(processes.items()):
        ctx.log(f"    {kind}: {command or IMAGE_COMMAND}")
    if release:
        ctx.log(f"    release: {release}")


class HealthCheck(Step):
    """Every new replica must answer before any of them takes traffic."""

    name = "health"

    def execute(self, ctx):
        upstreams = self._web(ctx)
        for kind, containers in ctx.deployment.process_containers.items():
            for container in containers:
                ctx.runtime.wait_running(container, settings.PAAS_PROCESS_SETTLE_SECONDS)
            ctx.log(f"==> {kind}: {len(containers)} running")
        health = health_path_for(upstreams[0], ctx.app.health_check_path) if upstreams else None
        ctx.save(self.name, upstreams=upstreams, router_health=health)

    def _web(self, ctx) -> list[str]:
        path = ctx.app.health_check_path
        containers = ctx.data["container_ids"]
        if not containers:
            ctx.log("==> No web process runs: nothing to health-check or route")
            return []
        ctx.log(f"==> Health check: GET {path} on port {ctx.port}")
        upstreams = []
        for container in containers:
            # A port found on the first replica is where the others listen too.
            endpoint = ctx.runtime.endpoint(container, ctx.network, ctx.deployment.web_port)
            seconds = ctx.runtime.wait_healthy(
                container,
                endpoint,
                path,
                settings.PAAS_HEALTH_TIMEOUT,
                ctx.log,
                on_port=lambda found: ctx.save(self.name, port=found.port),
            )
            ctx.log(f"Healthy after {seconds:.2f}s")
            upstreams.append(
                str(ctx.runtime.endpoint(container, ctx.network, ctx.deployment.web_port))
            )
        return upstreams


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


def container_spec(ctx, replica: int = 0, process: str = WEB) -> ContainerSpec:
    """One container of a process type. Web's replica 0 keeps the name a single container
    always had; other replicas and types get a suffix."""
    env = ctx.environment.env_dict()
    env["PORT"] = str(ctx.port)
    base = f"{settings.PAAS_INSTANCE}-{ctx.app.name}-{ctx.environment.name}-{ctx.deployment.number}"
    name = base if process == WEB else f"{base}-{process}"
    command = ctx.deployment.processes.get(process, "")
    return ContainerSpec(
        name=name if replica == 0 else f"{name}-{replica + 1}",
        image=ctx.deployment.image_id,
        env=env,
        port=ctx.port,
        labels={**ctx.labels, "slipway.process": process, "slipway.replica": str(replica + 1)},
        network=ctx.network,
        memory=settings.PAAS_CONTAINER_MEMORY,
        cpus=settings.PAAS_CONTAINER_CPUS,
        command=shell_command(command) if command else None,
        volumes=ctx.environment.volume_mounts(),
        constraints=ctx.app.placement_constraints,
    )


def remove_build_dir(ctx) -> None:
    clone_dir = ctx.data.get("clone_dir")
    if clone_dir:
        shutil.rmtree(clone_dir, ignore_errors=True)


# What a build node does (PAAS_BUILD_QUEUE), and what the deployment's own worker does then.
BUILD_STEPS: list[Step] = [FetchSource(), PrepareBuild(), BuildImage()]
RUN_STEPS: list[Step] = [ReleasePhase(), StartContainers(), HealthCheck(), SwitchRoute()]
STEPS: list[Step] = [*BUILD_STEPS, *RUN_STEPS]


def route_from_dict(data: dict) -> Route:
    """A Route saved in step_data (lists where the Route has tuples)."""
    tuples = {key: tuple(value) for key, value in data.items() if isinstance(value, list)}
    return Route(**{**data, **tuples})
