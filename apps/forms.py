"""Forms shared by the dashboard and the JSON API: one set of rules for every way in."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.models import STARTING_ENVIRONMENTS, App, BuildMethod, Team
from apps.models.app import COMMAND_MAX
from apps.models.tokens import NAME_MAX, TokenScope, expiry_from
from apps.validators import (
    parse_placement,
    validate_app_name,
    validate_env_key,
    validate_env_value,
)
from deployments.adapters.sources import validate_branch
from deployments.services.repositories import validate_repository


def clean_command(command: str) -> str:
    """A shell command line, as a Procfile line is: one line, no NUL; empty is none."""
    command = (command or "").strip()
    if "\x00" in command:
        raise ValidationError("A command cannot contain a NUL character.")
    if "\n" in command or "\r" in command:
        raise ValidationError("A command is one line (chain commands with && or ;).")
    return command


class AppSettingsForm(forms.Form):
    """What can change on an existing app."""

    repository = forms.CharField(max_length=500)
    branch = forms.CharField(max_length=255, required=False)
    build_method = forms.ChoiceField(choices=BuildMethod.choices, required=False)
    port = forms.IntegerField(min_value=1, max_value=65535, required=False)
    health_check_path = forms.CharField(max_length=255, required=False)
    build_command = forms.CharField(max_length=COMMAND_MAX, required=False)
    start_command = forms.CharField(max_length=COMMAND_MAX, required=False)
    release_command = forms.CharField(max_length=COMMAND_MAX, required=False)
    auto_rollback = forms.BooleanField(required=False)
    placement = forms.CharField(max_length=600, required=False)

    COMMANDS = (
        ("build_command", "Build command", "npm run build", "Runs in the image build."),
        ("start_command", "Start command", "uvicorn main:app --port $PORT", "The web process."),
        (
            "release_command",
            "Release command",
            "python manage.py migrate",
            "Runs once per deployment, before it takes traffic.",
        ),
    )

    def command_fields(self):
        """(bound field, label, placeholder, help) for the template."""
        return [(self[name], label, example, help) for name, label, example, help in self.COMMANDS]

    def clean_build_command(self):
        return clean_command(self.cleaned_data.get("build_command", ""))

    def clean_start_command(self):
        return clean_command(self.cleaned_data.get("start_command", ""))

    def clean_release_command(self):
        return clean_command(self.cleaned_data.get("release_command", ""))

    def clean_placement(self):
        constraints = parse_placement(self.cleaned_data.get("placement", ""))
        if constraints and settings.PAAS_RUNTIME != "swarm":
            raise ValidationError(
                "Placement constraints apply to the Swarm backend only (PAAS_RUNTIME=swarm); "
                "this installation runs apps on one host."
            )
        return ", ".join(constraints)

    def clean_repository(self):
        return validate_repository(self.cleaned_data["repository"].strip())

    def clean_branch(self):
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


def clean_env_payload(payload, known=STARTING_ENVIRONMENTS) -> dict[str, dict[str, str]]:
    """Check {"production": {K: V}, "staging": {K: V}} and return it; errors name the key.
    A new app has the default environments; an app's PATCH names any it has (`known`)."""
    if payload in (None, ""):
        return {}
    if not isinstance(payload, dict):
        raise ValidationError({"env": ["Expected an object keyed by environment."]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, dict[str, str]] = {}
    for env_name, values in payload.items():
        if env_name not in known:
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


SETTINGS_FIELDS = (
    "repository",
    "branch",
    "build_method",
    "port",
    "health_check_path",
    "build_command",
    "start_command",
    "release_command",
    "auto_rollback",
    "placement",
)


def clean_settings_patch(app: App, patch: dict) -> tuple[dict, dict[str, dict[str, str]]]:
    """A partial change of an app's settings (the API's PATCH): the given fields over the
    current values, checked whole by AppSettingsForm. `build` is the API's name for
    build_method; `env` goes through clean_env_payload. Returns (settings, env)."""
    incoming = dict(patch)
    if "build" in incoming:
        incoming["build_method"] = incoming.pop("build")
    env = incoming.pop("env", None)
    unknown = sorted(set(incoming) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationError({field: ["Unknown field."] for field in unknown})
    current = {field: getattr(app, field) for field in SETTINGS_FIELDS}
    form = AppSettingsForm(data={**current, **incoming})
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    names = set(app.environments.values_list("name", flat=True))
    return form.cleaned_data, clean_env_payload(env, known=names)


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


# --- dashboard-only forms -------------------------------------------------------------------


def check_app_name(name: str) -> str:
    """The cleaned name, or ValidationError saying why it cannot be used (the live check)."""
    form = AppCreateForm(data={"name": name})
    form.is_valid()
    if "name" in form.errors:
        raise ValidationError(form.errors["name"])
    return form.cleaned_data["name"]


class EnvEditor:
    """The create page's env-var editor: KEY/value rows per environment plus a bulk paste.

    Rows come as the repeated fields env-<environment>-key / env-<environment>-value; the bulk
    textarea env-<environment>-bulk holds KEY=value lines (parse_env_lines). A row wins over a
    pasted line with the same key. Rows with neither key nor value are ignored.
    """

    def __init__(self, data=None):
        self.rows: dict[str, list[tuple[str, str]]] = {env: [] for env in STARTING_ENVIRONMENTS}
        self.bulk: dict[str, str] = {env: "" for env in STARTING_ENVIRONMENTS}
        self.errors: dict[str, list[str]] = {}
        self.cleaned_data: dict[str, dict[str, str]] = {}
        if data is not None:
            for env in STARTING_ENVIRONMENTS:
                keys = data.getlist(f"env-{env}-key")
                values = data.getlist(f"env-{env}-value")
                values += [""] * (len(keys) - len(values))
                self.rows[env] = [(k.strip(), v) for k, v in zip(keys, values, strict=False)]
                self.bulk[env] = data.get(f"env-{env}-bulk", "")
        self.bound = data is not None

    def is_valid(self) -> bool:
        if not self.bound:
            return False
        for env in STARTING_ENVIRONMENTS:
            values = self._clean_environment(env)
            if values:
                self.cleaned_data[env] = values
        return not self.errors

    def _clean_environment(self, env: str) -> dict[str, str]:
        values: dict[str, str] = {}
        try:
            values.update(parse_env_lines(self.bulk[env]))
        except ValidationError as exc:
            self.errors.setdefault(env, []).extend(exc.messages)
        for number, (key, value) in enumerate(self.rows[env], start=1):
            if not key and not value:
                continue
            try:
                validate_env_key(key)
                validate_env_value(value)
            except ValidationError as exc:
                shown = key or "(no key)"
                self.errors.setdefault(env, []).append(
                    f"Row {number} ({shown}): {' '.join(exc.messages)}"
                )
                continue
            values[key] = value
        return values

    def rows_for_display(self, env: str) -> list[tuple[str, str]]:
        """What to show again after an error; at least one empty row to type in."""
        return self.rows[env] or [("", "")]


class EnvVarForm(forms.Form):
    """One variable typed on the settings page, or a bulk paste of KEY=value lines."""

    key = forms.CharField(max_length=255, required=False)
    value = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    bulk = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    # Ticked: every variable saved is marked protected (admins and owners only). Unticked
    # keeps each one's mark.
    protected = forms.BooleanField(required=False)

    def clean_key(self):
        key = self.cleaned_data.get("key", "").strip()
        if key:
            validate_env_key(key)
        return key

    def clean_value(self):
        value = self.cleaned_data.get("value", "")
        validate_env_value(value)
        return value

    def clean_bulk(self):
        return parse_env_lines(self.cleaned_data.get("bulk", ""))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if data.get("value") and not data.get("key"):
            self.add_error("key", "A key is required for this value.")
        elif not data.get("key") and not data.get("bulk"):
            raise ValidationError("Type a key and a value, or paste KEY=value lines.")
        return data

    @property
    def values(self) -> dict[str, str]:
        values = dict(self.cleaned_data.get("bulk") or {})
        if self.cleaned_data.get("key"):
            values[self.cleaned_data["key"]] = self.cleaned_data["value"]
        return values


class EnvVarProtectForm(forms.Form):
    """Mark one variable protected (ticked) or not."""

    protected = forms.BooleanField(required=False)


class EnvironmentChoiceForm(forms.Form):
    # Any name the app's environments might have; the service says whether it has it.
    environment = forms.CharField(max_length=30)


class PromoteForm(forms.Form):
    """A step of the pipeline; none given means staging → production, as always."""

    source = forms.CharField(max_length=30, required=False)
    target = forms.CharField(max_length=30, required=False)

    def step(self) -> tuple[str, str]:
        data = self.cleaned_data
        return data["source"] or "staging", data["target"] or "production"


class PipelineForm(forms.Form):
    """The stages typed in order, e.g. "dev staging production" (commas or arrows work)."""

    stages = forms.CharField(max_length=1000)

    def clean_stages(self) -> list[str]:
        text = self.cleaned_data["stages"]
        for separator in ("→", "->", ","):
            text = text.replace(separator, " ")
        return text.split()


class DeleteAppForm(forms.Form):
    """Deleting needs the app's name typed out: a slip of the mouse deletes nothing."""

    confirm = forms.CharField(label="Type the app name to confirm", max_length=63)

    def __init__(self, *args, app: App, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def clean_confirm(self):
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.app.name:
            raise ValidationError(f"Type “{self.app.name}” exactly to delete this app.")
        return typed


class ApiTokenForm(forms.Form):
    """Named as ApiToken's fields, so the model's own errors land on the right one."""

    EXPIRY_CHOICES = [
        ("7", "7 days"),
        ("30", "30 days"),
        ("90", "90 days"),
        ("365", "1 year"),
        ("never", "Never"),
    ]

    name = forms.CharField(label="Token name", max_length=NAME_MAX)
    team = forms.ModelChoiceField(
        label="Team",
        queryset=Team.objects.none(),
        empty_label=None,
        required=False,  # none chosen: the personal team, as ApiToken.issue does
        error_messages={"invalid_choice": "Choose one of your teams."},
    )
    # Least privilege by default: writing is asked for, not given.
    scope = forms.ChoiceField(label="Scope", choices=TokenScope.choices, initial=TokenScope.READ)
    expires_at = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, initial="90")

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A token reaches one team's apps: one of the user's own.
        self.fields["team"].queryset = Team.reached_by(user).order_by("name", "pk")
        self.fields["team"].initial = Team.personal_for(user).pk

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Give the token a name, such as the machine that uses it.")
        return name

    def clean_expires_at(self):
        return expiry_from(self.cleaned_data["expires_at"])
