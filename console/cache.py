"""Cache values as JSON, never pickles.

The console's cache holds login-failure counters and timestamps, which JSON carries. Django's
Redis backend unpickles whatever it finds under a key, so anything that can write to that Redis
(it is also the broker, reachable over the network) could run code in the web and worker
processes; with this serializer a planted value is at worst a wrong number.
"""

from __future__ import annotations

import json


class JSONSerializer:
    """For Django's RedisCache (`OPTIONS: {"serializer": ...}`); integers stay bare, as Django's
    own serializer keeps them, so `incr` is Redis's atomic INCR."""

    def dumps(self, value: object) -> int | bytes:
        if type(value) is int:
            return value
        return json.dumps(value).encode()

    def loads(self, data: bytes) -> object:
        try:
            return int(data)
        except ValueError:
            return json.loads(data)
