"""Sessions: Django's cached_db store (the session table, with Redis in front), so a
signed-in request reads its session from the cache instead of querying the table
(bench/run --dashboard). The table stays the truth: a session outlives a Redis restart,
and signing out deletes both.

Django's load() writes the cache, unguarded, after reading a session from the table: with
Redis away that write would fail every signed-in request. Here the table answers alone
then, as it did before the cache was in front of it."""

import logging

from django.contrib.sessions.backends import cached_db, db

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    def load(self):
        try:
            return super().load()
        except Exception:  # the cache backend's own error (redis-py's), whichever it is
            logger.warning("the session cache did not answer; reading the session table")
            return db.SessionStore.load(self)
