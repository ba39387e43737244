"""The Redis channel layer, with a pool that waits for a free connection.

channels-redis's default pool raises "Too many connections" once a burst needs more than it
holds, which thousands of chargers reconnecting at once do. A blocking pool of bounded size
queues the burst instead and keeps Redis's connection count in check.
"""

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from django.conf import settings
from redis.asyncio import BlockingConnectionPool


class RedisChannelLayer(BaseRedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        host.setdefault("socket_connect_timeout", 5)
        # redis-py 8 reads with a 5 s socket timeout by default, the same as channels-redis's
        # blocking pop: the read then times out and kills the consumer. Wait longer than that.
        host.setdefault("socket_timeout", 30)
        return BlockingConnectionPool.from_url(
            address, max_connections=settings.CHANNELS_REDIS_POOL_SIZE, timeout=30, **host
        )
