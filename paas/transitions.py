"""Guarded status moves, the one way every status machine in Slipway changes state.

A machine is a table {source: frozenset(targets)} kept as data beside its model. A move
checks the table against the status the object saw, then writes with a conditional
update (`WHERE pk = .. AND status = <seen>`): if another worker or a click moved the row
first, nothing is written and the move is refused, so two movers never both win.
"""

from collections.abc import Mapping
from typing import Any

from django.db import models

Transitions = Mapping[str, frozenset[str]]

# Shown as the current status when the row vanished before the move could be written.
GONE = "(deleted)"


class InvalidTransition(Exception):
    """A status move that the table does not allow, or that someone else's move beat."""

    def __init__(self, subject: str, current: str, target: str):
        self.subject, self.current, self.target = subject, current, target
        super().__init__(f"{subject} cannot go from {current} to {target}")


def allows(table: Transitions, source: str, target: str) -> bool:
    return target in table[source]


def move(
    instance: models.Model,
    field: str,
    table: Transitions,
    target: str,
    subject: str | None = None,
    /,
    **fields: Any,
) -> None:
    """Move instance's `field` to target, also writing `fields`, or raise InvalidTransition.

    Positional-only, so a model field of any name can be passed in `fields`. On success
    the instance holds what was written; when the move lost a race, it holds the status
    that won (and nothing else of it is reloaded).
    """
    subject = subject or f"{instance._meta.verbose_name} {instance.pk}"
    seen = getattr(instance, field)
    if not allows(table, seen, target):
        raise InvalidTransition(subject, seen, target)
    rows = type(instance)._default_manager.filter(pk=instance.pk, **{field: seen})
    if not rows.update(**{field: target}, **fields):
        raise InvalidTransition(subject, _reload(instance, field), target)
    setattr(instance, field, target)
    for name, value in fields.items():
        setattr(instance, name, value)


def _reload(instance: models.Model, field: str) -> str:
    """The status another mover wrote; GONE if the row was deleted meanwhile."""
    current = (
        type(instance)._default_manager.filter(pk=instance.pk).values_list(field, flat=True).first()
    )
    if current is None:
        return GONE
    setattr(instance, field, current)
    return current
