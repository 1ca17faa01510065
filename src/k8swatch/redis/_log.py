"""RedisEventLog: one resource's event log in Redis, mirrored locally per replica."""

from __future__ import annotations

import bisect
import json
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, cast

import anyio
import anyio.lowlevel
import attrs
from anyio.abc import TaskStatus
from typing_extensions import final

from k8swatch._eventlog import (
    LogEntry,
    LogSnapshot,
    PreconditionFailedError,
    Write,
    WriteOp,
    too_old_resource_version,
    with_resource_version,
)
from k8swatch._events import EventType
from k8swatch._status import StatusError, service_unavailable

from ._errors import REDIS_ERRORS, UNAVAILABLE_ERRORS, status_error_for
from ._scripts import Op
from ._stream import Record, StreamClient

__all__ = ["Backoff", "RedisEventLog", "decode_object", "encode_object"]


logger = logging.getLogger("k8swatch.redis")


def _encode_std(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _select_codec() -> tuple[Callable[[bytes], Any], Callable[[Mapping[str, Any]], bytes]]:
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the environment
        return json.loads, _encode_std

    def _encode_orjson(obj: Mapping[str, Any]) -> bytes:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # e.g. an int beyond 64 bits: the stdlib copes
            return _encode_std(obj)

    return orjson.loads, _encode_orjson


_loads, _dumps = _select_codec()


def encode_object(obj: Mapping[str, Any]) -> bytes:
    """Encode *obj* as canonical JSON (sorted keys) without ``metadata.resourceVersion``.

    The RV is assigned by Redis and lives in the stream id; leaving it out of
    the body makes identical objects encode identically (``PUT``'s no-op check).
    """
    metadata: Any = obj.get("metadata")
    if isinstance(metadata, Mapping) and "resourceVersion" in metadata:
        meta = cast("Mapping[str, Any]", metadata)
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return _dumps(obj)


def decode_object(body: bytes, rv: int) -> dict[str, Any]:
    """Decode a stored body and write *rv* into its ``metadata.resourceVersion``."""
    obj: dict[str, Any] = _loads(body)
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = obj["metadata"] = {}
    metadata["resourceVersion"] = str(rv)
    return obj


@attrs.define
class Backoff:
    """Exponential backoff with full jitter: sleep a random time in [0, min(cap, base * 2**n)].

    Replicas that lost Redis together do not all reconnect at the same instant.
    """

    base: float = 0.05
    cap: float = 5.0
    attempts: int = 0

    def next_delay(self) -> float:
        """Return the next delay in seconds (and count the attempt)."""
        ceiling = min(self.cap, self.base * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return random.uniform(0, ceiling)

    async def sleep(self) -> None:
        """Sleep for the next delay."""
        await anyio.sleep(self.next_delay())

    def reset(self) -> None:
        """Start again from the shortest delay (after a success)."""
        self.attempts = 0


_OPS = {
    WriteOp.CREATE: Op.CREATE,
    WriteOp.UPDATE: Op.UPDATE,
    WriteOp.DELETE: Op.DELETE,
    WriteOp.PUT: Op.PUT,
    WriteOp.REMOVE: Op.REMOVE,
}

_REFUSALS: dict[str, Literal["AlreadyExists", "NotFound", "Conflict"]] = {
    "exists": "AlreadyExists",
    "missing": "NotFound",
    "conflict": "Conflict",
}


def _entry(record: Record) -> LogEntry:
    return LogEntry(record.rv, record.type, record.key, decode_object(record.body, record.rv))


@final
@attrs.define(eq=False)
class RedisEventLog:
    """An `EventLog` on Redis Streams, mirrored in each replica.

    Give it to a storage (``MemoryStorage(..., log=log)``); get it from
    [`RedisBackend.log_for()`][k8swatch.redis.RedisBackend.log_for], which
    also runs its task.

    **Writes** (`append()`) run one Lua script in Redis that checks the write's
    condition, increments the resourceVersion counter shared by every resource
    of the backend's prefix, appends the change to the resource's stream (entry
    id ``<rv>-0``) and updates the resource's current-state hash, atomically:
    every replica sees the same changes in the same RV order, and a refused or
    failed write changes nothing. Concurrent writes are sent in batches, one
    round trip for many writes. `append()` returns once this replica's mirror
    has the entry too (read your writes), or after ``write_wait`` seconds: the
    batch's script call also returns the stream's entries after the mirror's
    position (up to ``read_batch`` written before the batch, then its own),
    so the mirror usually has them with the reply.

    **Reads**: one reader task per log (`run()`) follows the stream with a
    blocking ``XREAD`` (none while this replica's appends are in flight:
    their replies bring the entries) and keeps the newest ``window`` entries
    in memory, so the storage's follower and every local watcher cost one
    Redis read in total. `read_after()` serves RVs inside the mirror from memory and older
    ones from the stream in Redis, which keeps about ``retention`` entries;
    an RV older than that gets 410 Expired, as the in-memory window does.
    `snapshot()` reads the current-state hash and its RV atomically, so a
    fresh replica starts consistent.

    **Failures**: with Redis down, `append()`, `snapshot()` and
    `current_resource_version()` raise 503 ServiceUnavailable (nothing is
    half-applied; a write whose reply was lost may or may not have been
    applied, as with any remote store); the mirror keeps serving what it has
    and `read_after(wait=True)` keeps waiting; the reader reconnects with
    jittered exponential backoff and continues exactly where it stopped. If
    the stream was trimmed past that point meanwhile, the mirror restarts at
    the current RV and every read from inside the gap gets 410: nothing is
    skipped silently.

    **Data loss**: when Redis comes back without data this replica saw (a
    restart without persistence, ``FLUSHALL``, a failover to a stale
    replica; checked on reconnect, on every idle ``XREAD`` and by every
    append), the counter is re-seeded above every RV used before, every read
    from before the loss gets 410 (so the storage reloads from `snapshot()`
    and ends its watches with 410) and no RV is ever handed out twice.

    Attributes:
        window: Entries the mirror keeps in memory.
        read_batch: Entries the reader takes per ``XREAD``; also the most an
            append batch reads from before its own entries.
        block: Seconds one blocking ``XREAD`` waits before it is re-issued.
        write_wait: Seconds `append()` waits for the mirror to reach its entry.
    """

    _stream: StreamClient = attrs.field(alias="stream")
    window: int = 1000
    read_batch: int = 1000
    block: float = 2.0
    write_wait: float = 5.0
    _rvs: list[int] = attrs.field(init=False, factory=lambda: list[int]())
    _entries: list[LogEntry] = attrs.field(init=False, factory=lambda: list[LogEntry]())
    _head: int = attrs.field(init=False, default=0)
    _rv: int = attrs.field(init=False, default=0)
    _oldest: int = attrs.field(init=False, default=0)
    _tail: int = attrs.field(init=False, default=0)  # the stream's RV at the mirror's position
    _lost_below: int = attrs.field(init=False, default=0)  # reads from before it get 410
    _changed: anyio.Event = attrs.field(init=False, factory=anyio.Event)
    # applied batches whose writers wait for the mirror: (newest RV, give up at, release)
    _held: deque[tuple[int, float, Callable[[], None]]] = attrs.field(
        init=False, factory=lambda: deque[tuple[int, float, Callable[[], None]]]()
    )
    _ready: anyio.Event = attrs.field(init=False, factory=anyio.Event)
    _connected: bool = attrs.field(init=False, default=False)
    _resets: int = attrs.field(init=False, default=0)
    _append_reads: int = attrs.field(init=False, default=0)  # appends that read the stream
    _closed: bool = attrs.field(init=False, default=False)
    _scope: anyio.CancelScope = attrs.field(init=False, factory=anyio.CancelScope)

    def __attrs_post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        self._stream.release_after = self._release_when_mirrored
        self._stream.read_position = self._read_position
        self._stream.on_read = self._on_append_read
        self._stream.mark.subscribe(self._on_lost)

    # -- state ------------------------------------------------------------------

    @property
    def mirrored_resource_version(self) -> int:
        """The newest RV this replica has read from the stream (or started at)."""
        return self._rv

    @property
    def mirrored_oldest_resource_version(self) -> int:
        """The oldest RV the mirror can read after without asking Redis."""
        return self._oldest

    @property
    def connected(self) -> bool:
        """False while the reader cannot reach Redis."""
        return self._connected

    @property
    def resets(self) -> int:
        """How often the reader found a gap (trimmed or lost) and restarted the mirror."""
        return self._resets

    @property
    def closed(self) -> bool:
        """True after `aclose()`."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    # -- the reader -------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the writer and the reader of this log until `aclose()` or cancellation.

        One call per log (`RedisBackend.log_for()` starts it). The mirror
        starts at the stream's current RV, loaded in the background; calls
        that need it wait for that.
        """
        self._scope = scope = anyio.CancelScope()
        if self._closed:
            scope.cancel()
        with scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._stream.run_batcher)
                tg.start_soon(self._tick)
                task_status.started()
                await self._follow()

    async def _follow(self) -> None:
        backoff = Backoff()
        need_start = not self._ready.is_set()
        verify = not need_start  # run() again after a pause: check Redis first
        while not self._closed:
            checked = False
            try:
                if need_start:
                    current = await self._stream.check()
                    self._restart(max(current, self._lost_below), current)
                    need_start = verify = False
                    checked = True
                elif verify:
                    await self._stream.check()  # a loss restarts the mirror (_on_lost)
                    verify = False
                    checked = True
                elif self._stream.busy:
                    # This replica's appends are in flight: their replies read
                    # the stream up to their entries (see _on_append_read); an
                    # XREAD now would fetch the same entries once more.
                    reads = self._append_reads
                    await self._stream.wait_applied(self.block)
                    if self._append_reads != reads:
                        continue
                records = await self._stream.read_after(
                    self._rv, count=self.read_batch, block=self.block
                )
            except StatusError as exc:
                if exc.status.code == 410:
                    # Trimmed past our position while we were away: start again
                    # at the current RV; reads from inside the gap get 410.
                    need_start = True
                    continue
                logger.warning("Redis event log %s: %s", self._stream.keys[1], exc)
                verify = True
                await backoff.sleep()
                continue
            except UNAVAILABLE_ERRORS:
                self._set_connected(False)
                verify = True
                await backoff.sleep()
                continue
            except REDIS_ERRORS as exc:  # e.g. OOM or a wrong key type: retry, loudly
                logger.warning("Redis event log %s: %s", self._stream.keys[1], exc)
                verify = True
                await backoff.sleep()
                continue
            backoff.reset()
            self._set_connected(True)
            if not records:
                verify = True  # idle: make sure Redis did not lose data meanwhile (FLUSHALL)
                continue
            if records[0].rv <= self._rv:  # some came with an append's reply meanwhile
                records = [r for r in records if r.rv > self._rv]
                if not records:
                    continue
            if records[0].prev < self._tail and not checked:
                # The stream lost entries this replica read: check before trusting it.
                verify = True
            else:
                self._ingest(records)

    def _on_lost(self, seed: int) -> None:
        """Redis lost data; its counter now stands at *seed*, above every RV used before.

        Reads from before *seed* get 410 (those positions may name other
        changes now); the mirror restarts at *seed*; `snapshot()` names the
        state after the loss *seed*.
        """
        logger.warning(
            "Redis event log %s: Redis lost data (restart without persistence, FLUSHALL "
            "or failover); resourceVersions continue after %d, watchers get 410",
            self._stream.keys[1],
            seed,
        )
        self._lost_below = max(self._lost_below, seed)
        if self._ready.is_set():
            self._restart(seed, 0)

    def _set_connected(self, value: bool) -> None:
        if self._connected != value:
            self._connected = value
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- read your writes -------------------------------------------------------

    def _read_position(self) -> tuple[int, int] | None:
        """Where and how much an append batch reads: the mirror's RV (None: not started)."""
        if self._ready.is_set() and not self._closed:
            return self._rv, self.read_batch
        return None

    def _on_append_read(self, records: list[Record]) -> None:
        """Ingest what an append batch read after the mirror's RV (its own entries included).

        The same checks as the reader's: entries the mirror has are skipped,
        and a batch that does not continue the mirror's chain (a gap, or a
        stream that lost entries) is left for the reader, which handles it.
        """
        if self._closed or not self._ready.is_set():
            return
        rv = self._rv
        if records and records[0].rv <= rv:
            records = [r for r in records if r.rv > rv]
        if records:
            if not self._tail <= records[0].prev <= rv:
                return
            self._ingest(records)
        self._set_connected(True)
        self._append_reads += 1

    def _release_when_mirrored(self, rv: int, release: Callable[[], None]) -> None:
        """Resume a batch's writers once the mirror has *rv* (or ``write_wait`` passed)."""
        if rv <= self._rv or self._closed:
            release()
        else:
            self._held.append((rv, anyio.current_time() + self.write_wait, release))

    def _release_mirrored(self) -> None:
        held = self._held
        while held and held[0][0] <= self._rv:
            held.popleft()[2]()

    async def _tick(self) -> None:
        """Resume writers whose entries the mirror has not read within ``write_wait``.

        Held batches need no timer each; a reader stuck on an unresponsive
        Redis would otherwise never resume them.
        """
        held = self._held
        while True:
            await anyio.sleep(self.write_wait / 4)
            now = anyio.current_time()
            while held and held[0][1] <= now:
                held.popleft()[2]()

    def _restart(self, rv: int, tail: int) -> None:
        if self._ready.is_set():
            self._resets += 1
        self._rvs.clear()
        self._entries.clear()
        self._head = 0
        self._rv = self._oldest = rv
        self._tail = tail
        self._ready.set()
        self._release_mirrored()
        self._notify()

    def _ingest(self, records: list[Record]) -> None:
        self._tail = records[-1].rv
        rv, rvs, entries, loads = self._rv, self._rvs, self._entries, _loads
        for r in records:
            if r.rv > rv:
                rv = r.rv
                # decode_object, inlined: this loop runs for every entry of every replica
                obj: dict[str, Any] = loads(r.body)
                metadata = obj.get("metadata")
                if not isinstance(metadata, dict):
                    metadata = obj["metadata"] = {}
                metadata["resourceVersion"] = str(rv)
                rvs.append(rv)
                entries.append(LogEntry(rv, r.type, r.key, obj))
        self._rv = rv
        excess = len(self._rvs) - self._head - self.window
        if excess > 0:
            self._head += excess
            self._oldest = self._rvs[self._head - 1]
            if self._head > 1024 and self._head * 2 > len(self._rvs):
                del self._rvs[: self._head]
                del self._entries[: self._head]
                self._head = 0
        # Readers first: a follower then feeds its cache before our writers
        # resume, so they find their writes there instead of reading them again.
        self._notify()
        self._release_mirrored()

    async def _wait_ready(self) -> None:
        if not self._ready.is_set():
            with anyio.move_on_after(self.write_wait):
                await self._ready.wait()
            self._check_open()
            if not self._ready.is_set():
                raise service_unavailable(
                    "the Redis event log is unavailable: cannot reach Redis to start"
                )

    # -- EventLog ---------------------------------------------------------------

    async def append(self, write: Write) -> LogEntry | None:
        """Apply *write* atomically in Redis (see ``EventLog.append``).

        Raises:
            PreconditionFailedError: The condition failed; nothing was applied.
            StatusError: 503 ServiceUnavailable when Redis is unreachable.
            anyio.ClosedResourceError: The log was closed.
        """
        self._check_open()
        await self._wait_ready()
        body = b"" if write.object is None else encode_object(write.object)
        expect = write.expected_resource_version
        res = await self._stream.append(
            _OPS[write.op], write.key, "" if expect is None else str(expect), body
        )
        if res.status != "ok":
            if res.status == "same":
                return None
            raise PreconditionFailedError(_REFUSALS[res.status], write.key, res.rv)
        assert res.type is not None
        # The stream released us once the mirror had our entry (read your
        # writes), or after write_wait: see _release_when_mirrored. Hand out
        # the mirror's entry, the one every reader of this replica shares.
        rv = res.rv
        if self._oldest < rv <= self._rv:
            index = bisect.bisect_left(self._rvs, rv, lo=self._head)
            if index < len(self._rvs) and self._rvs[index] == rv:
                return self._entries[index]
        if res.type is EventType.DELETED or write.object is None:
            obj = decode_object(res.body, res.rv)
        else:
            obj = with_resource_version(write.object, res.rv)
        return LogEntry(res.rv, res.type, write.key, obj)

    async def read_after(
        self, resource_version: int, *, limit: int = 1000, wait: bool = False
    ) -> Sequence[LogEntry]:
        """Return up to *limit* entries with RV > *resource_version*, oldest first.

        From the mirror when it reaches back that far, else from Redis. With
        *wait*, block until there is at least one (also across Redis outages).

        Raises:
            StatusError: 410 Expired when entries after *resource_version* were
                trimmed (``too old resource version: <rv> (<oldest>)``); 503
                when they must come from Redis and Redis is unreachable.
            anyio.ClosedResourceError: The log was (or got) closed.
        """
        self._check_open()
        await self._wait_ready()
        limit = max(limit, 1)
        while True:
            if 0 < resource_version < self._lost_below:
                raise too_old_resource_version(resource_version, self._lost_below)
            if resource_version >= self._oldest:
                start = bisect.bisect_right(self._rvs, resource_version, lo=self._head)
                found = self._entries[start : start + limit]
            else:
                try:
                    records = await self._stream.read_after(resource_version, count=limit)
                except REDIS_ERRORS as exc:
                    raise status_error_for(exc) from exc
                found = [_entry(r) for r in records]
            if found:
                # No yield: the follower feeding a cache handles what it read
                # before the writers of those entries resume (see _ingest).
                await anyio.lowlevel.checkpoint_if_cancelled()
                return found
            if not wait:
                await anyio.lowlevel.checkpoint()
                return found
            await self._changed.wait()
            self._check_open()

    async def oldest_resource_version(self) -> int:
        """Return the smallest RV one can read after: Redis's, or the mirror's if Redis is down."""
        self._check_open()
        await self._wait_ready()
        try:
            oldest = (await self._stream.bounds())[0]
        except REDIS_ERRORS:
            return max(self._oldest, self._lost_below)
        return max(min(oldest, self._oldest), self._lost_below)

    async def current_resource_version(self) -> int:
        """Return the stream's newest RV as Redis has it now (503 when unreachable).

        A cache that reached it serves a consistent read across replicas.
        """
        self._check_open()
        try:
            current = (await self._stream.bounds())[1]
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
        return max(current, self._lost_below)

    async def snapshot(self) -> LogSnapshot:
        """Return the current objects and their RV, read atomically from Redis (503 when down)."""
        self._check_open()
        snap = await self._stream.snapshot()
        # After a data loss the counter was raised to _lost_below: nothing can
        # exist between the stream's RV and it, so this state is also the
        # state at _lost_below, a position no pre-loss reader holds.
        rv = max(snap.rv, self._lost_below)
        return LogSnapshot(
            rv, {k: decode_object(body, rv) for k, (rv, body) in snap.objects.items()}
        )

    async def aclose(self) -> None:
        """Stop the reader and writer and wake every waiter (idempotent).

        Afterwards every method raises ``anyio.ClosedResourceError``; appends
        not yet sent fail with it too.
        """
        self._closed = True
        self._stream.mark.unsubscribe(self._on_lost)
        self._scope.cancel()
        self._stream.close()
        while self._held:
            self._held.popleft()[2]()
        self._notify()
        await anyio.lowlevel.checkpoint()
