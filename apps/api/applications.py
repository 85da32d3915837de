"""/api/v1: thin views over the services. Every app lookup goes through _app_for(), which
answers 404 for an app the caller may not see."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from apps.access import app_for
from apps.api.auth import api_view, error, form_errors
from apps.api.openapi import OPENAPI
from apps.forms import AppCreateForm, AppSettingsForm, clean_env_payload
from apps.models import App
from deployments import services
from deployments.models import Deployment, LogLine


def _iso(value):
    return value.isoformat() if value else None


def app_json(app: App) -> dict:
    envs = {env.name: env for env in app.environments.all()}
    return {
        "name": app.name,
        "repository": app.repository,
        "branch": app.branch,
        "build": app.build_method,
        "port": app.port,
        "health_check_path": app.health_check_path,
        "status": app.status,
        "urls": {name: env.url for name, env in envs.items()},
        "live": {
            name: (env.live_deployment.number if env.live_deployment_id else None)
            for name, env in envs.items()
        },
        "created_at": _iso(app.created_at),
        "updated_at": _iso(app.updated_at),
    }


def deployment_json(d: Deployment) -> dict:
    return {
        "number": d.number,
        "status": d.status,
        "environment": d.environment.name,
        "trigger": d.trigger,
        "step": d.step,
        "error": {"code": d.error_code, "message": d.error_message} if d.error_code else None,
        "image": d.image_id or None,
        "commit": d.commit_sha or None,
        "branch": d.branch,
        "created_at": _iso(d.created_at),
        "started_at": _iso(d.started_at),
        "finished_at": _iso(d.finished_at),
    }


@api_view(["GET", "POST"])
def apps_collection(request):
    if request.method == "GET":
        apps = App.objects.visible_to(request.user).prefetch_related("environments")
        return JsonResponse({"apps": [app_json(a) for a in apps]})
    data = dict(request.json)
    payload = {
        "name": data.get("name", ""),
        "repository": data.get("repository", ""),
        "branch": data.get("branch") or "",
        "build_method": data.get("build") or "auto",
        "port": data.get("port"),
        "health_check_path": data.get("health_check_path") or "/",
    }
    form = AppCreateForm(data=payload)
    if not form.is_valid():
        raise form_errors(form)
    env = clean_env_payload(data.get("env"))
    app = services.create_app(request.user, form.cleaned_data, env, deploy=bool(data.get("deploy")))
    return JsonResponse(app_json(app), status=201)


@api_view(["GET", "PATCH", "DELETE"])
def app_detail(request, name):
    app = app_for(request.user, name)
    if request.method == "DELETE":
        services.request_cleanup(app)
        return JsonResponse({"name": app.name, "status": app.status}, status=202)
    if request.method == "PATCH":
        current = {
            "repository": app.repository,
            "branch": app.branch,
            "build_method": app.build_method,
            "port": app.port,
            "health_check_path": app.health_check_path,
        }
        incoming = dict(request.json)
        if "build" in incoming:
            incoming["build_method"] = incoming.pop("build")
        unknown = set(incoming) - set(current) - {"env"}
        if unknown:
            return error(
                400, "Unknown fields.", "invalid", {f: ["Unknown field."] for f in sorted(unknown)}
            )
        form = AppSettingsForm(
            data={**current, **{k: v for k, v in incoming.items() if k != "env"}}
        )
        if not form.is_valid():
            raise form_errors(form)
        env = clean_env_payload(incoming.get("env"))
        changed = services.update_app(app, form.cleaned_data)
        for env_name, values in env.items():
            services.set_env_vars(app.environment(env_name), values)
            changed.append(f"env.{env_name}")
        body = app_json(app)
        body["changed"] = changed
        body["redeploy_needed"] = bool(changed)
        return JsonResponse(body)
    return JsonResponse(app_json(app))


@api_view(["GET", "POST"])
def deployments_collection(request, name):
    app = app_for(request.user, name)
    if request.method == "GET":
        qs = app.deployments.select_related("environment")[:100]
        return JsonResponse({"deployments": [deployment_json(d) for d in qs]})
    environment = request.json.get("environment", "production")
    deployment = services.queue_deployment(app, environment, requested_by=request.user)
    return JsonResponse(
        {"number": deployment.number, "status": deployment.status, "environment": environment},
        status=202,
    )


@api_view(["GET"])
def deployment_detail(request, name, number):
    app = app_for(request.user, name)
    deployment = get_object_or_404(app.deployments.select_related("environment"), number=number)
    return JsonResponse(deployment_json(deployment))


@api_view(["POST"])
def deployment_cancel(request, name, number):
    app = app_for(request.user, name)
    deployment = get_object_or_404(app.deployments.select_related("environment"), number=number)
    services.cancel_deployment(deployment)
    return JsonResponse(deployment_json(deployment))


def _int_param(request, name: str, default: int = 0) -> int:
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit():
        from django.core.exceptions import ValidationError

        raise ValidationError({name: ["Expected a non-negative whole number."]})
    return int(raw)


@api_view(["GET"])
def deployment_logs(request, name, number):
    app = app_for(request.user, name)
    deployment = get_object_or_404(app.deployments, number=number)
    after = _int_param(request, "after")
    limit = min(_int_param(request, "limit", 500) or 500, 2000)
    lines = LogLine.page(deployment, after=after, limit=limit)
    next_cursor = lines[-1].id if lines else after
    return JsonResponse(
        {
            "lines": [{"cursor": line.id, "text": line.text} for line in lines],
            "next": next_cursor,
            "final": deployment.is_final,
        }
    )


def openapi(request):
    spec = dict(OPENAPI)
    spec["servers"] = [{"url": request.build_absolute_uri("/api/v1")}]
    return JsonResponse(spec)


@api_view(["GET"])
def runtime_logs(request, name):
    """The live container's output after a nanosecond cursor; X-Last-Log-Nano is the next one."""
    app = app_for(request.user, name)
    env_name = request.GET.get("environment", "production")
    if env_name not in ("production", "staging"):
        from django.core.exceptions import ValidationError

        raise ValidationError({"environment": ["Use production or staging."]})
    since = _int_param(request, "since")
    limit = min(_int_param(request, "limit", 200) or 200, 1000)
    lines = services.runtime_logs(app.environment(env_name), since_ns=since, limit=limit)
    last = lines[-1][0] if lines else since
    response = JsonResponse(
        {"lines": [{"ns": ns, "text": text} for ns, text in lines], "next": last}
    )
    response["X-Last-Log-Nano"] = str(last)
    return response


@api_view(["POST"])
def archives_collection(request, name):
    """Deploy an uploaded .tar.gz (multipart field `archive`, optional `environment`)."""
    from django.core.exceptions import ValidationError

    from deployments.adapters.sources.archive import archive_limits
    from deployments.services.archives import deploy_archive

    app = app_for(request.user, name)
    # Refused on the declared length, before Django spools the upload to disk.
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > archive_limits()[0] + 64 * 1024:
        return error(413, "The archive is too large.", "archive_too_large")
    upload = request.FILES.get("archive")
    if upload is None:
        raise ValidationError({"archive": ["Attach a .tar.gz file in the “archive” field."]})
    environment = request.POST.get("environment") or "production"
    deployment = deploy_archive(app, environment, upload, request.user)
    return JsonResponse(
        {"number": deployment.number, "status": deployment.status, "environment": environment},
        status=202,
    )
