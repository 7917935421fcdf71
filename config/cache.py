"""Django's Redis cache, with one Redis client per connection pool instead of one per command.

Django's ``RedisCacheClient.get_client`` makes a new ``redis.Redis`` for every cache call;
redis-py builds its tables of reply callbacks in each one, which cost about as much as the
command's round trip. The link throttle reads the cache on every request to a secret link
(``config.throttling``), the survey API's submit among them. Django keeps one cache object
per thread, and each now keeps one ``redis.Redis`` per connection pool.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    # Django's own attributes, which its type stubs leave out.
    _client: Any
    _get_connection_pool: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(django_redis.RedisCache):
    """What ``CACHES["default"]["BACKEND"]`` names: Django's, with the client above."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
