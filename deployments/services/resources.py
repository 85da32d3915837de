"""What an app's live containers use right now: CPU and memory, per environment."""

from apps.models import App, EnvironmentName
from deployments import wiring


def resource_usage(app: App) -> list[dict]:
    """One entry per environment with something deployed; stats only for running ones.

    The engine samples each container for about a second, so this is for a panel that
    polls every few seconds, not for a list of every app."""
    runtime = wiring.runtime()
    envs = app.environments.filter(live_deployment__isnull=False).select_related("live_deployment")
    ordered = sorted(envs, key=lambda e: EnvironmentName.values.index(e.name))
    return [_usage(env, runtime) for env in ordered]


def _usage(env, runtime) -> dict:
    live = env.live_deployment
    container = live.step_data.get("container_id")
    stats = {}
    if container and not env.stopped and runtime.is_running(container):
        stats = runtime.stats(container)
    return {
        "environment": env.name,
        "deployment": live.number,
        "stopped": env.stopped,
        "running": bool(stats),
        "cpu_percent": stats.get("cpu_percent"),
        "memory_bytes": stats.get("memory_bytes"),
        "memory_limit_bytes": stats.get("memory_limit_bytes"),
        "memory_percent": stats.get("memory_percent"),
    }
