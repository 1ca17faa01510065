"""A lease in Redis: at most one replica at a time does a job (e.g. polls Coder)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from typing_extensions import final

from ._errors import REDIS_ERRORS

if TYPE_CHECKING:
    import coredis

__all__ = ["RedisLease"]

# Acquire the lease when free, renew it when it is ours; 1 = held, 0 = someone else's.
_ACQUIRE = """
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@final
@attrs.define(eq=False)
class RedisLease:
    """A named lease shared by every replica using the same Redis and key prefix.

    At most one holder at a time: ``SET key token NX PX ttl`` takes it, a script
    renews it only while the token is still ours, and it lapses by itself
    ``ttl`` seconds after the last renewal if its holder dies. Use it to let one
    replica run an out-of-band poller while the others stand by, so the poller's
    events are not written once per replica:

    ```python
    lease = backend.lease("coder-poller", ttl=10.0)
    while True:
        if await lease.acquire():      # take it, or renew it if we hold it
            await poll_once()          # only the holder polls
        await anyio.sleep(2.0)         # renew well within the ttl
    ```

    ``held`` is judged locally and conservatively (the ttl is counted from before
    the request was sent), so two replicas never both believe they hold it,
    unless clocks run at very different speeds or a holder pauses longer than
    its remaining ttl between checking ``held`` and acting, which no lease
    can rule out. Create leases with
    `RedisBackend.lease()`.

    Attributes:
        key: The Redis key holding the lease.
        ttl: Seconds the lease lasts after each successful ``acquire()``.
        token: This holder's identity (random unless given).
    """

    _client: coredis.Redis[Any] = attrs.field(alias="client")
    key: str
    ttl: float = 10.0
    token: str = attrs.field(factory=lambda: secrets.token_hex(16))
    _expires_at: float = attrs.field(default=0.0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.ttl <= 0:
            raise ValueError(f"ttl must be > 0, got {self.ttl}")

    @property
    def held(self) -> bool:
        """True while this holder's lease has not lapsed (as far as it can tell)."""
        return anyio.current_time() < self._expires_at

    async def acquire(self) -> bool:
        """Take the lease if it is free, or renew it if we hold it.

        Returns True when we hold the lease for the next ``ttl`` seconds, False
        when another holder has it. Redis being unreachable also returns False
        (and drops our local claim): when in doubt, do not act as the holder.
        """
        started = anyio.current_time()
        try:
            got = await self._client.eval(
                _ACQUIRE, keys=[self.key], args=[self.token, max(1, int(self.ttl * 1000))]
            )
        except REDIS_ERRORS:
            self._expires_at = 0.0
            return False
        if got == 1:
            self._expires_at = started + self.ttl
            return True
        self._expires_at = 0.0
        return False

    async def release(self) -> None:
        """Give the lease up now if we hold it (idempotent; errors are ignored).

        If Redis is unreachable the lease simply lapses after its ttl.
        """
        self._expires_at = 0.0
        try:
            await self._client.eval(_RELEASE, keys=[self.key], args=[self.token])
        except REDIS_ERRORS:
            pass
