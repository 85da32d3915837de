"""Forms shared by the dashboard and the JSON API: one set of rules for every way in."""

from django import forms
from django.core.exceptions import ValidationError

from apps.models import App, BuildMethod, EnvironmentName
from apps.validators import validate_app_name, validate_env_key, validate_env_value


def _source_validators():
    # Imported late: the git adapter pulls in GitPython, which forms should not pay for at import.
    from deployments.sources import validate_branch, validate_repository_url

    return validate_repository_url, validate_branch


class AppSettingsForm(forms.Form):
    """What can change on an existing app."""

    repository = forms.CharField(max_length=500)
    branch = forms.CharField(max_length=255, required=False)
    build_method = forms.ChoiceField(choices=BuildMethod.choices, required=False)
    port = forms.IntegerField(min_value=1, max_value=65535, required=False)
    health_check_path = forms.CharField(max_length=255, required=False)

    def clean_repository(self):
        validate_repository_url, _ = _source_validators()
        return validate_repository_url(self.cleaned_data["repository"].strip())

    def clean_branch(self):
        _, validate_branch = _source_validators()
        return validate_branch(self.cleaned_data.get("branch", "").strip())

    def clean_build_method(self):
        return self.cleaned_data.get("build_method") or BuildMethod.AUTO

    def clean_health_check_path(self):
        path = self.cleaned_data.get("health_check_path") or "/"
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise ValidationError("The health check path starts with / and has no spaces.")
        return path


class AppCreateForm(AppSettingsForm):
    name = forms.CharField(max_length=63)
    field_order = ["name", "repository", "branch", "build_method", "port", "health_check_path"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip().lower()
        validate_app_name(name)
        if App.objects.filter(name__iexact=name).exists():
            raise ValidationError(f"An app called “{name}” already exists.", code="taken")
        return name


def clean_env_payload(payload) -> dict[str, dict[str, str]]:
    """Check {"production": {K: V}, "staging": {K: V}} and return it; errors name the key."""
    if payload in (None, ""):
        return {}
    if not isinstance(payload, dict):
        raise ValidationError({"env": ["Expected an object keyed by environment."]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, dict[str, str]] = {}
    for env_name, values in payload.items():
        if env_name not in EnvironmentName.values:
            errors.setdefault("env", []).append(f"Unknown environment “{env_name}”.")
            continue
        if not isinstance(values, dict):
            errors.setdefault(f"env.{env_name}", []).append("Expected an object of KEY: value.")
            continue
        cleaned[env_name] = {}
        for key, value in values.items():
            try:
                validate_env_key(key)
                validate_env_value(value)
            except ValidationError as exc:
                errors.setdefault(f"env.{env_name}.{key}", []).extend(exc.messages)
                continue
            cleaned[env_name][key] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


def parse_env_lines(text: str) -> dict[str, str]:
    """Bulk paste: KEY=value per line; blank lines and # comments ignored."""
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValidationError(f"Line {number}: expected KEY=value.")
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        try:
            validate_env_key(key)
            validate_env_value(value)
        except ValidationError as exc:
            raise ValidationError(f"Line {number}: {' '.join(exc.messages)}") from None
        result[key] = value
    return result
