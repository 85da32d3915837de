"""Validation of what users name and type: app names, env keys, env values."""

import re

from django.core.exceptions import ValidationError

APP_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ENV_VALUE_BYTES = 32 * 1024
MAX_ENV_KEY_LENGTH = 255

# Host names the platform keeps for itself, and words that would confuse people.
RESERVED_APP_NAMES = frozenset(
    {
        "www", "admin", "api", "app", "apps", "dashboard", "static", "media", "mail", "smtp",
        "ftp", "ns1", "ns2", "localhost", "slipway", "caddy", "docker", "registry", "git",
        "status", "health", "webhooks", "auth", "login", "accounts", "staging", "production",
    }
)  # fmt: skip
# Staging is served at <app>-staging.<domain>; an app called "x-staging" would take app
# x's staging host name, so that suffix is refused.
STAGING_SUFFIX = "-staging"


def validate_app_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValidationError("An app name is required.", code="required")
    if len(name) > 63:
        raise ValidationError("An app name has at most 63 characters.", code="too_long")
    if not APP_NAME_RE.fullmatch(name):
        raise ValidationError(
            "Use lowercase letters, digits and hyphens, not starting or ending with a hyphen.",
            code="invalid",
        )
    if name in RESERVED_APP_NAMES:
        raise ValidationError(f"“{name}” is reserved; choose another name.", code="reserved")
    if name.endswith(STAGING_SUFFIX):
        raise ValidationError(
            "Names ending in “-staging” are kept for staging environments.", code="reserved"
        )


ENVIRONMENT_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")
# Host labels of the platform's own, and "pr-…" kept for preview environments.
RESERVED_ENVIRONMENT_NAMES = frozenset({"www", "api", "admin", "platform", "dashboard"})
RESERVED_ENVIRONMENT_PREFIX = "pr-"
# <app>-production would be app <app>'s production route and container names; any name
# ending so could spell another app's (app sh, env op-production vs app sh-op).
PRODUCTION_SUFFIX = "-production"


def could_be_environment_name(name) -> bool:
    """Worth asking the database about (which cannot even compare a string with a NUL)."""
    return isinstance(name, str) and bool(re.fullmatch(r"[a-z0-9-]{1,30}", name))


def validate_environment_name(name: str) -> None:
    """A DNS label of 1–30 characters starting with a letter (a label of digits alone
    would read like a domain check's route, `<instance>-domaincheck-<id>`)."""
    if not isinstance(name, str) or not ENVIRONMENT_NAME_RE.fullmatch(name) or "--" in name:
        raise ValidationError(
            "Use 1–30 lowercase letters, digits and single hyphens, starting with a letter and "
            "not ending with a hyphen.",
            code="invalid",
        )
    if name in RESERVED_ENVIRONMENT_NAMES or name.endswith(PRODUCTION_SUFFIX):
        raise ValidationError(f"“{name}” is reserved; choose another name.", code="reserved")
    if name.startswith(RESERVED_ENVIRONMENT_PREFIX):
        raise ValidationError(
            "Names starting with “pr-” are kept for pull-request previews.", code="reserved"
        )


def validate_env_key(key: str) -> None:
    if not isinstance(key, str) or not ENV_KEY_RE.fullmatch(key):
        raise ValidationError(
            "Keys start with a letter or underscore and hold only letters, digits and underscores.",
            code="invalid_key",
        )
    if len(key) > MAX_ENV_KEY_LENGTH:
        raise ValidationError("A key has at most 255 characters.", code="key_too_long")


def validate_env_value(value: str) -> None:
    if not isinstance(value, str):
        raise ValidationError("A value must be text.", code="invalid_value")
    if "\x00" in value:
        raise ValidationError("A value cannot contain a NUL character.", code="invalid_value")
    if len(value.encode()) > MAX_ENV_VALUE_BYTES:
        raise ValidationError("A value has at most 32 KiB.", code="value_too_long")


HOST_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MOUNT_PATH_RE = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
VOLUME_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
# Mounting over these would break the container or hide what the image needs to run.
FORBIDDEN_MOUNTS = (
    "/",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/usr",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/boot",
)


def validate_custom_domain(hostname: str, platform_domain: str) -> str:
    """A fully qualified host name an app may answer on; returns it lowercased."""
    host = (hostname or "").strip().lower().rstrip(".")
    labels = host.split(".")
    if not host or len(host) > 253 or len(labels) < 2:
        raise ValidationError(
            "Enter a full host name such as www.example.com.", code="invalid_domain"
        )
    if not all(HOST_LABEL_RE.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValidationError(
            "A host name is dot-separated labels of letters, digits and hyphens (no IP addresses, "
            "no wildcards).",
            code="invalid_domain",
        )
    if host == platform_domain or host.endswith("." + platform_domain):
        raise ValidationError(
            f"Names under {platform_domain} belong to the platform's own app addresses.",
            code="reserved_domain",
        )
    return host


def validate_volume(name: str, mount_path: str) -> None:
    if not VOLUME_NAME_RE.fullmatch(name or ""):
        raise ValidationError(
            {"name": "Use 1–32 lowercase letters, digits and hyphens, not at either end."}
        )
    if not MOUNT_PATH_RE.fullmatch(mount_path or "") or ".." in mount_path.split("/"):
        raise ValidationError(
            {"mount_path": "Use an absolute path such as /data (no .., no spaces)."}
        )
    if any(
        mount_path == p or (p != "/" and mount_path.startswith(p + "/")) for p in FORBIDDEN_MOUNTS
    ):
        raise ValidationError(
            {"mount_path": f"{mount_path} is a system directory; choose another path."}
        )


# Swarm placement constraints an app may set (the Swarm backend's; docs/swarm.md): the
# attributes Swarm itself knows, an operator of == or !=, a plain value.
PLACEMENT_MAX = 5
PLACEMENT_RE = re.compile(
    r"^node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]{1,100})"
    r"\s*(==|!=)\s*([A-Za-z0-9_.:-]{1,100})$"
)


def parse_placement(text: str) -> list[str]:
    """'node.labels.disk==ssd, node.role!=manager' -> its constraints, normalised; a
    ValidationError names the first one Swarm would not take."""
    parts = [part.strip() for part in (text or "").split(",") if part.strip()]
    if len(parts) > PLACEMENT_MAX:
        raise ValidationError(f"At most {PLACEMENT_MAX} placement constraints.")
    constraints = []
    for part in parts:
        match = PLACEMENT_RE.match(part)
        if not match:
            raise ValidationError(
                f"“{part[:100]}” is not a placement constraint: write node.labels.<key>==<value>"
                " (or node.hostname, node.id, node.role, node.platform.os, node.platform.arch;"
                " == or !=)."
            )
        attribute, operator, value = match.groups()
        constraints.append(f"node.{attribute}{operator}{value}")
    return constraints
