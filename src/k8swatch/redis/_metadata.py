"""RedisMetadataStore: the Kubernetes metadata of objects kept elsewhere, in a Redis hash.

Layout for a key prefix ``P`` and a name ``N`` (e.g.
``coderworkspaces.aggregation.coder.com``): the hash ``{P}:meta:N`` maps an
object's id to ``"<revision> <JSON body>"``. A write is one script call that
compares the stored revision with the expected one before it changes
anything, so replicas writing the same object never lose each other's change.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, cast

import attrs
from typing_extensions import final

from ._errors import REDIS_ERRORS, status_error_for

__all__ = ["RedisMetadataStore"]

# KEYS[1] the hash; ARGV: id, expected revision ("0": absent), new revision, body ("": remove).
# Returns 1 when written, 0 when the stored revision is not the expected one.
_WRITE = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
local current = '0'
if v then current = string.match(v, '^(%d+) ') or '' end
if current ~= ARGV[2] then return 0 end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ' ' .. ARGV[4])
end
return 1
"""


def _decode(raw: bytes | str) -> tuple[int, dict[str, Any]]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    revision, _, body = text.partition(" ")
    return int(revision), cast("dict[str, Any]", json.loads(body))


@final
@attrs.define(eq=False)
class RedisMetadataStore:
    """A Coder storage's ``MetadataStore`` in Redis: shared by replicas, kept across restarts.

    Get one from `RedisBackend.metadata_store_for()` and pass it to a Coder
    storage (``WorkspaceStorage(provider, metadata_store=...)``). Records
    live in one Redis hash per store; they are removed when their object is
    deleted (by the storage) or found gone from Coder (by the poller). Every
    method raises a `StatusError`: 503 when Redis is unreachable, 500 for
    another Redis error (details in the server log only).

    Attributes:
        key: The Redis hash holding the records.
    """

    _client: Any = attrs.field(alias="client")
    key: str

    async def read(self, keys: Collection[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """The records of those *keys* (object ids) that have one."""
        ids = list(keys)
        if not ids:
            return {}
        try:
            values = await self._client.hmget(self.key, ids)
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
        return {i: _decode(v) for i, v in zip(ids, values, strict=True) if v is not None}

    async def read_all(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """Every record."""
        try:
            values = await self._client.hgetall(self.key)
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): _decode(v)
            for k, v in cast("dict[Any, Any]", values).items()
        }

    async def write(
        self, key: str, body: dict[str, Any] | None, revision: int, *, expected: int
    ) -> bool:
        """Store *body* at *revision* (None: remove) if the record is at *expected* (0: absent)."""
        encoded = "" if body is None else json.dumps(body, separators=(",", ":"))
        try:
            written = await self._client.eval(
                _WRITE, keys=[self.key], args=[key, str(expected), str(revision), encoded]
            )
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
        return bool(written == 1)

    async def remove(self, keys: Collection[str]) -> None:
        """Remove the records of *keys* (object ids)."""
        ids = list(keys)
        if not ids:
            return
        try:
            await self._client.hdel(self.key, ids)
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
