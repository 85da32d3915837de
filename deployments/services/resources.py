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
    """Summed over the environment's running web replicas."""
    live = env.live_deployment
    running = [] if env.stopped else [c for c in live.web_containers if runtime.is_running(c)]
    samples = [runtime.stats(container) for container in running]
    memory = sum(s.get("memory_bytes") or 0 for s in samples)
    limit = sum(s.get("memory_limit_bytes") or 0 for s in samples)
    return {
        "environment": env.name,
        "deployment": live.number,
        "stopped": env.stopped,
        "running": bool(samples),
        "replicas": len(samples),
        "cpu_percent": round(sum(s.get("cpu_percent") or 0 for s in samples), 2)
        if samples
        else None,
        "memory_bytes": memory if samples else None,
        "memory_limit_bytes": limit if samples else None,
        "memory_percent": round(100 * memory / limit, 2) if samples and limit else None,
    }
