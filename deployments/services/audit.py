"""Recording the use cases in the audit log: `@audited("env.set")` on a service function
writes one entry once it has succeeded (a refusal changes nothing and records nothing).

The app comes from the function's first argument (an App, or anything that belongs to
one); `target` and `details` say more, from the result and the arguments. Details never
hold a secret: callers pass keys and names, never values.
"""

from collections.abc import Callable
from functools import wraps

from apps.models import App, AuditEntry


def app_of(subject) -> App | None:
    """The app a service's subject belongs to (an app, deployment, environment, add-on…)."""
    for _ in range(4):  # App, .app, .environment.app, .addon.environment.app
        if subject is None or isinstance(subject, App):
            return subject
        subject = next(
            (
                getattr(subject, name)
                for name in ("app", "environment", "addon")
                if getattr(subject, name, None) is not None
            ),
            None,
        )
    return None


def audited(
    action: str,
    target: Callable[..., object] | None = None,
    details: Callable[..., dict] | None = None,
):
    def decorate(function):
        @wraps(function)
        def recorded(*args, **kwargs):
            result = function(*args, **kwargs)
            subject = args[0] if args else None
            AuditEntry.record(
                action,
                app_of(subject) or app_of(result),
                target(result, *args, **kwargs) if target else "",
                **(details(result, *args, **kwargs) if details else {}),
            )
            return result

        return recorded

    return decorate


def record(action: str, app=None, target: str = "", team=None, **details) -> AuditEntry:
    """For the few places that are not one service call (the warden's restarts, a team's
    members)."""
    return AuditEntry.record(action, app, target, team=team, **details)
