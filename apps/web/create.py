"""The create-app page and its small helpers: the live name check, the repository picker
(the user's connected Git providers) and the env-var rows.

A provider that fails (expired sign-in, rate limit, timeout) is a message in the partial,
never a 500: the user can still paste a URL.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from apps.forms import AppCreateForm, EnvEditor, check_app_name
from apps.models import (
    STARTING_ENVIRONMENTS,
    App,
    BuildMethod,
    Environment,
    EnvironmentName,
    Role,
    Team,
    rank,
)
from apps.web.pages import login_required
from apps.web.switcher import chosen_team
from deployments import services
from deployments.adapters import git_providers as providers
from deployments.adapters.git_providers import ProviderError
from deployments.adapters.sources import validate_branch
from deployments.services import ServiceError, teams
from deployments.services.detection import preview_build
from deployments.services.repositories import validate_repository

REPOSITORIES_PER_PAGE = 10


def _create_context(request, form, env_editor) -> dict:
    return {
        "form": form,
        "env_sections": [
            {
                "name": env,
                "rows": env_editor.rows_for_display(env),
                "bulk": env_editor.bulk[env],
                "errors": env_editor.errors.get(env, []),
            }
            for env in STARTING_ENVIRONMENTS
        ],
        "providers": providers.connected_providers(request.user),
        "build_methods": BuildMethod.choices,
        "teams": teams.teams_of(request.user),
        "default_team": _default_team(request),
    }


def _default_team(request) -> Team:
    """The Team field's first choice: the header's team if the user may deploy there (a
    viewer's would only be refused), else their personal team."""
    team = chosen_team(request)
    if team is not None and rank(team.role_of(request.user)) >= rank(Role.DEVELOPER):
        return team
    return Team.personal_for(request.user)


@login_required
def app_create(request):
    if request.method != "POST":
        form = AppCreateForm(initial={"build_method": BuildMethod.AUTO, "health_check_path": "/"})
        return render(request, "apps/create.html", _create_context(request, form, EnvEditor()))
    form, env_editor = AppCreateForm(data=request.POST), EnvEditor(request.POST)
    env_ok = env_editor.is_valid()
    if form.is_valid():
        _check_with_provider(request.user, form)
    if form.is_valid() and env_ok:
        try:
            app = services.create_app(
                request.user,
                form.cleaned_data,
                env_editor.cleaned_data,
                deploy=True,
                staging=request.POST.get("staging") == "on",
                team=teams.team_to_deploy_in(request.user, _chosen_team(request)),
            )
        except ServiceError as exc:
            taken = exc.code in ("name_taken", "host_taken")
            form.add_error("name" if taken else None, exc.message)
        else:
            messages.success(request, f"App {app.name} is created; its first deployment is queued.")
            return redirect("app-detail", app.name)
    context = _create_context(request, form, env_editor)
    return render(request, "apps/create.html", context, status=400)


def _check_with_provider(user, form) -> None:
    """A URL on one of the user's providers must name a repository (and branch) they can see."""
    try:
        providers.check_repository(
            user, form.cleaned_data["repository"], form.cleaned_data["branch"]
        )
    except ProviderError as exc:
        field = exc.field or "repository"
        form.add_error(field, exc.message)


@login_required
def name_check(request):
    """As the user types: is the name valid and free, and where will the app be served?"""
    name = request.GET.get("name", "")
    context = {"name": name.strip()}
    if name.strip():
        try:
            cleaned = check_app_name(name)
        except ValidationError as exc:
            context["errors"] = exc.messages
        else:
            context["name"] = cleaned
            context["url"] = Environment(app=App(name=cleaned), name="production").url
    return render(request, "apps/_name_check.html", context)


@login_required
def repositories(request):
    """One page of the user's repositories on one provider, optionally searched."""
    provider = request.GET.get("provider", "")
    query = request.GET.get("q", "")
    page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    context = {"provider": provider, "q": query}
    try:
        context["result"] = providers.list_repositories(
            request.user, provider, query, max(page, 1), per_page=REPOSITORIES_PER_PAGE
        )
    except ProviderError as exc:
        context["error"] = exc.message
    return render(request, "apps/_repo_results.html", context)


@login_required
def pick_repository(request):
    """Fill the repository and a branch <select> from the picked repository."""
    provider = request.GET.get("provider", "")
    full_name = request.GET.get("repo", "")
    context = {
        "repository": request.GET.get("clone_url", ""),
        "branch": request.GET.get("branch", ""),
        "picked": full_name,
    }
    try:
        context["branches"] = providers.list_branches(request.user, provider, full_name)
    except ProviderError as exc:
        context["provider_error"] = exc.message
    return render(request, "apps/_source_fields.html", context)


def _chosen_team(request) -> int | None:
    chosen = request.POST.get("team", "")
    return int(chosen) if chosen.isdigit() else None


@login_required
def env_row(request):
    environment = request.GET.get("environment", "")
    if environment not in STARTING_ENVIRONMENTS:
        environment = EnvironmentName.PRODUCTION
    return render(request, "apps/_env_row.html", {"env_name": environment, "key": "", "value": ""})


@login_required
def detect_preview(request):
    """What auto-detection finds in the repository the form names, before anything is made."""
    context = {}
    try:
        repository = validate_repository(request.GET.get("repository", "").strip())
        branch = validate_branch(request.GET.get("branch", "").strip())
        context["plan"] = preview_build(
            request.user, repository, branch, request.GET.get("build_method") or "auto"
        )
    except ValidationError as exc:
        context["error"] = " ".join(exc.messages)
    except ServiceError as exc:
        context["error"] = exc.message
    return render(request, "apps/_detect_preview.html", context)
