"""What an app's live containers use right now: CPU and memory, per environment."""

from concurrent.futures import ThreadPoolExecutor

from apps.models import App
from deployments import wiring

# Each sample blocks about a second in the engine; one thread each, up to a bound.
STATS_THREADS = 16


def resource_usage(app: App) -> list[dict]:
    """One entry per environment with something deployed; stats only for running ones.

    The engine samples each container for about a second; every container is sampled at
    once, so the answer takes about a second however many replicas run (it is on the
    request path of a panel that polls)."""
    runtime = wiring.runtime()
    envs = app.environments.filter(live_deployment__isnull=False).select_related("live_deployment")
    ordered = sorted(envs, key=lambda e: (e.position, e.pk))
    running = {env.pk: _running(env, runtime) for env in ordered}
    samples = _sample_all([c for ids in running.values() for c in ids], runtime)
    return [_usage(env, [samples[c] for c in running[env.pk]]) for env in ordered]


def _running(env, runtime) -> list[str]:
    if env.stopped:
        return []
    return [c for c in env.live_deployment.web_containers if runtime.is_running(c)]


def _sample_all(containers: list[str], runtime) -> dict[str, dict]:
    if not containers:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(containers), STATS_THREADS)) as pool:
        return dict(zip(containers, pool.map(runtime.stats, containers), strict=True))


def _usage(env, samples: list[dict]) -> dict:
    """Summed over the environment's running web replicas."""
    live = env.live_deployment
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
