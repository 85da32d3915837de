"""Strict readers for settings that come from the environment.

A value that is present but malformed is an error at start-up, never a silent default
(healthchecks does the same): an operator who typed DEBUG=ture wants to hear about it.
"""

import math
import os

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    # float() also reads "nan" and "inf", which no timeout or CPU share means.
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name} must be a finite number, not {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices` (case-insensitive); empty or unset is the default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().lower()
    if word not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return word


def env_map(name: str, default: dict[str, str]) -> dict[str, str]:
    """`key=value` pairs, comma-separated; a pair without `=` or with an empty side is an
    error, as is a key given twice."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    found: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        key, sep, value = (side.strip() for side in item.partition("="))
        if not (sep and key and value) or key in found:
            raise ImproperlyConfigured(f"{name} must be key=value pairs, comma-separated: {item!r}")
        found[key] = value
    return found
