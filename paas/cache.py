"""The cache backend: Django's Redis cache, keeping one redis-py client per connection pool.

Django's makes a new `redis.Redis` for every call, and redis-py 8's constructor is not
cheap: a signed-in request reads its session and the two-factor rule from the cache, and
the two constructions were a tenth of a status poll's CPU (bench/run --dashboard). A
client is safe to share between threads (each command takes a connection from the pool)
and after a fork (the pool opens new connections in the child)."""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _SharedClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _SharedClient
