"""The read-only database view of an add-on: tables, rows, one SQL statement, Redis keys.

The browsing itself (read-only transactions, statement timeouts) is the adapter's; this
hands it the engine to find the add-on's container on.
"""

from apps.models.addons import AddOn
from deployments import wiring
from deployments.adapters import addon_browser
from deployments.adapters.addon_browser import BrowseError, Result, Table  # noqa: F401

__all__ = ["BrowseError", "redis_keys", "run_query", "table_rows", "tables"]


def tables(addon: AddOn) -> list[Table]:
    return addon_browser.tables(addon, wiring.runtime())


def table_rows(addon: AddOn, name: str) -> Result:
    return addon_browser.table_rows(addon, name, wiring.runtime())


def run_query(addon: AddOn, statement: str) -> Result:
    return addon_browser.run_query(addon, statement, wiring.runtime())


def redis_keys(addon: AddOn, pattern: str = "*"):
    return addon_browser.redis_keys(addon, pattern, wiring.runtime())
