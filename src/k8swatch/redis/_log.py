"""RedisEventLog: one resource's event log in Redis, mirrored locally per replica."""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Callable, Mapping
from typing import Any, cast

import anyio
import attrs
from anyio.abc import TaskStatus
from typing_extensions import final

from k8swatch._events import EventType
from k8swatch._status import (
    StatusError,
    already_exists,
    conflict,
    not_found,
    service_unavailable,
)

from ._errors import REDIS_ERRORS, UNAVAILABLE_ERRORS, status_error_for
from ._scripts import Op
from ._stream import AppendResult, Record, Snapshot, StreamClient, too_old

__all__ = ["Backoff", "LogEntry", "RedisEventLog", "decode_object", "encode_object"]


def _select_loads() -> Callable[[bytes], Any]:
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the environment
        return json.loads
    return orjson.loads


_loads = _select_loads()


def encode_object(obj: Mapping[str, Any]) -> bytes:
    """Encode *obj* as canonical JSON (sorted keys) without ``metadata.resourceVersion``.

    The RV is assigned by Redis and lives in the stream id; leaving it out of
    the body makes identical objects encode identically (``PUT``'s no-op check).
    """
    metadata: Any = obj.get("metadata")
    if isinstance(metadata, Mapping) and "resourceVersion" in metadata:
        meta = cast("Mapping[str, Any]", metadata)
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def decode_object(body: bytes, rv: int) -> dict[str, Any]:
    """Decode a stored body and write *rv* into its ``metadata.resourceVersion``."""
    obj: dict[str, Any] = _loads(body)
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = obj["metadata"] = {}
    metadata["resourceVersion"] = str(rv)
    return obj


@final
@attrs.frozen
class LogEntry:
    """One change in the log.

    Attributes:
        rv: The change's resourceVersion (global and strictly increasing).
        type: ``ADDED``, ``MODIFIED`` or ``DELETED``.
        key: The object's key (``namespace/name``, or ``name`` when cluster-scoped).
        object: The object after the change (the last state for ``DELETED``),
            with ``metadata.resourceVersion`` set to ``rv``. Read-only: shared.
    """

    rv: int
    type: EventType
    key: str
    object: dict[str, Any]


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


def _name_of(key: str) -> str:
    return key.rpartition("/")[2]


@final
@attrs.define(eq=False)
class RedisEventLog:
    """The event log of one resource, kept in Redis and mirrored in this process.

    Writes run a Lua script in Redis that checks the write's condition,
    increments the global resourceVersion counter, appends to the resource's
    stream (id ``<rv>-0``) and updates the current-state hash, all atomically:
    every replica sees the same changes in the same RV order, and a refused or
    failed write changes nothing. Concurrent writes are sent in batches (one
    round trip for many writes).

    One reader task per log (`run()`, started by
    [`RedisBackend`][k8swatch.redis.RedisBackend]) follows the stream with a
    blocking ``XREAD`` and keeps the newest ``window`` entries in memory, so any
    number of local watchers cost one Redis read. Older RVs are read from
    Redis, which keeps ``retention`` entries per stream; an RV older than that
    gets the same 410 Expired as the in-memory window. When Redis is down,
    writes fail with 503 ServiceUnavailable, reads of the mirror keep working,
    and the reader reconnects with jittered exponential backoff and continues
    where it stopped, or, if the stream was trimmed past that point meanwhile,
    reloads the current state and reports the gap as 410 to whoever asks for
    an RV inside it. No change is ever skipped silently.

    Attributes:
        resource: The resource (plural) name used in error messages.
        group: The API group used in error messages ("" for the core group).
        window: How many recent entries the local mirror keeps.
    """

    _stream: StreamClient = attrs.field(alias="stream")
    resource: str
    group: str = ""
    window: int = 1000
    read_batch: int = 1000
    block: float = 2.0
    write_wait: float = 5.0
    _rvs: list[int] = attrs.field(init=False, factory=lambda: list[int]())
    _entries: list[LogEntry] = attrs.field(init=False, factory=lambda: list[LogEntry]())
    _head: int = attrs.field(init=False, default=0)
    _rv: int = attrs.field(init=False, default=0)
    _oldest: int = attrs.field(init=False, default=0)
    _changed: anyio.Event = attrs.field(init=False, factory=anyio.Event)
    _ready: anyio.Event = attrs.field(init=False, factory=anyio.Event)
    _connected: bool = attrs.field(init=False, default=False)
    _resets: int = attrs.field(init=False, default=0)
    _closed: bool = attrs.field(init=False, default=False)

    # -- state ------------------------------------------------------------------

    @property
    def current_rv(self) -> int:
        """The newest RV this replica has read from the stream (or loaded)."""
        return self._rv

    @property
    def oldest_rv(self) -> int:
        """The oldest RV `read_after()` can resume from without asking Redis."""
        return self._oldest

    @property
    def connected(self) -> bool:
        """False while the reader cannot reach Redis."""
        return self._connected

    @property
    def resets(self) -> int:
        """How many times the reader found a trimmed gap and reloaded the state."""
        return self._resets

    # -- the reader -------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow the stream until cancelled (one per log; the backend starts it).

        ``task_status.started()`` is called at once: the first snapshot is
        loaded in the background, and operations wait for it (`wait_ready()`).
        """
        task_status.started()
        backoff = Backoff()
        need_snapshot = not self._ready.is_set()
        verify = not need_snapshot  # restarted: check where Redis is first
        while not self._closed:
            try:
                if need_snapshot:
                    self._load(await self._stream.snapshot())
                    need_snapshot = verify = False
                elif verify:
                    # Back after an outage: if Redis now has less than we read
                    # (it restarted without persistence), our position means
                    # nothing any more: reload, and report older RVs as 410.
                    if (await self._stream.bounds())[1] < self._rv:
                        need_snapshot = True
                        self._resets += 1
                        continue
                    verify = False
                records = await self._stream.read_after(
                    self._rv, count=self.read_batch, block=self.block
                )
            except StatusError as exc:
                if exc.status.code == 410:  # trimmed past our position: reload
                    need_snapshot = True
                    self._resets += 1
                    continue
                if exc.status.code != 503:
                    raise
                self._set_connected(False)
                verify = True
                await backoff.sleep()
                continue
            except UNAVAILABLE_ERRORS:
                self._set_connected(False)
                verify = True
                await backoff.sleep()
                continue
            backoff.reset()
            self._set_connected(True)
            if records:
                self._ingest(records)

    def _set_connected(self, value: bool) -> None:
        if self._connected != value:
            self._connected = value
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _load(self, snap: Snapshot) -> None:
        # A (re)load: the mirror restarts at the snapshot's RV. Older RVs are
        # then read from Redis, which reports a trimmed gap as 410.
        self._rvs.clear()
        self._entries.clear()
        self._head = 0
        self._rv = snap.rv
        self._oldest = snap.rv
        self._ready.set()
        self._notify()

    def _ingest(self, records: list[Record]) -> None:
        for r in records:
            if r.rv <= self._rv:
                continue
            self._rvs.append(r.rv)
            self._entries.append(LogEntry(r.rv, r.type, r.key, decode_object(r.body, r.rv)))
            self._rv = r.rv
        excess = len(self._rvs) - self._head - self.window
        if excess > 0:
            self._head += excess
            self._oldest = self._rvs[self._head - 1]
            if self._head > 1024 and self._head * 2 > len(self._rvs):
                del self._rvs[: self._head]
                del self._entries[: self._head]
                self._head = 0
        self._notify()

    # -- reads ------------------------------------------------------------------

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Wait until the first snapshot is loaded; 503 if Redis stays unreachable."""
        if self._ready.is_set():
            return
        with anyio.move_on_after(timeout):
            await self._ready.wait()
            return
        raise service_unavailable("the Redis event log is unavailable: cannot load the state")

    async def wait_for_new(self, rv: int, timeout: float | None = None) -> bool:
        """Wait until the mirror holds an entry newer than *rv* (or *timeout* passes).

        Returns True when ``current_rv > rv``.
        """
        with anyio.move_on_after(timeout):
            while self._rv <= rv and not self._closed:
                await self._changed.wait()
        return self._rv > rv

    def read_local(self, rv: int) -> list[LogEntry]:
        """Return the mirrored entries with RV > *rv*, oldest first (never waits).

        Raises a 410 Expired `StatusError` when *rv* is older than the mirror
        (`oldest_rv`); `read_after()` then falls back to Redis.
        """
        if rv < self._oldest:
            raise too_old(rv, self._oldest)
        start = bisect.bisect_right(self._rvs, rv, lo=self._head)
        return self._entries[start:]

    async def read_after(self, rv: int) -> list[LogEntry]:
        """Return every entry with RV > *rv* this replica has read, oldest first.

        Served from the mirror when it reaches back to *rv*; otherwise the
        missing part is read from the Redis stream. Raises a 410 Expired
        `StatusError` (``too old resource version: rv (oldest)``) when the
        stream no longer holds every change after *rv*, and 503 when the
        mirror does not reach back and Redis is unreachable.
        """
        if rv >= self._oldest:
            return self.read_local(rv)
        older: list[LogEntry] = []
        after = rv
        limit = self._oldest
        while after < limit:
            try:
                records = await self._stream.read_after(after, count=self.read_batch)
            except REDIS_ERRORS as exc:
                raise status_error_for(exc) from exc
            if not records:
                break
            for r in records:
                if r.rv > limit:
                    break
                older.append(LogEntry(r.rv, r.type, r.key, decode_object(r.body, r.rv)))
            after = records[-1].rv
            if records[-1].rv >= limit:
                break
        # The mirror may have moved on (or been reloaded) while we read.
        try:
            newer = self.read_local(limit)
        except StatusError:
            newer = await self.read_after(limit)
        return older + newer

    async def snapshot(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """Return ``(rv, objects)``: the current objects in Redis and the RV they are at.

        Read atomically from Redis (503 when unreachable). Continue with
        ``read_after(rv)`` to see every later change exactly once.
        """
        snap = await self._stream.snapshot()
        return snap.rv, {k: decode_object(body, rv) for k, (rv, body) in snap.objects.items()}

    async def fetch_current_rv(self) -> int:
        """Return the stream's newest RV as Redis has it now (503 when unreachable)."""
        return (await self._stream.bounds())[1]

    async def get(self, key: str) -> dict[str, Any] | None:
        """Return the current object stored under *key* in Redis, or None."""
        got = await self._stream.get(key)
        return None if got is None else decode_object(got[1], got[0])

    # -- writes -----------------------------------------------------------------

    async def create(self, key: str, obj: Mapping[str, Any]) -> LogEntry:
        """Record ADDED for a new *key*; 409 AlreadyExists if it exists."""
        entry = await self._write(Op.CREATE, key, obj, "")
        assert entry is not None
        return entry

    async def update(self, key: str, obj: Mapping[str, Any], *, expect_rv: str = "") -> LogEntry:
        """Record MODIFIED; 404 if *key* is absent, 409 Conflict if its RV is not *expect_rv*.

        An empty *expect_rv* means an unconditional update.
        """
        entry = await self._write(Op.UPDATE, key, obj, expect_rv)
        assert entry is not None
        return entry

    async def delete(
        self, key: str, *, expect_rv: str = "", obj: Mapping[str, Any] | None = None
    ) -> LogEntry:
        """Record DELETED with *obj* (default: the stored object); 404 / 409 as `update()`."""
        entry = await self._write(Op.DELETE, key, obj, expect_rv)
        assert entry is not None
        return entry

    async def put(self, key: str, obj: Mapping[str, Any]) -> LogEntry | None:
        """Record ADDED or MODIFIED; None (no event) when *obj* equals the stored object.

        For pollers reflecting an external system: several replicas reporting
        the same change record it once.
        """
        return await self._write(Op.PUT, key, obj, "")

    async def remove(self, key: str) -> LogEntry | None:
        """Record DELETED for *key*; None (no event) when it is already absent."""
        return await self._write(Op.REMOVE, key, None, "")

    async def _write(
        self, op: str, key: str, obj: Mapping[str, Any] | None, expect: str
    ) -> LogEntry | None:
        body = b"" if obj is None else encode_object(obj)
        res = await self._stream.append(op, key, expect, body)
        if res.status != "ok":
            if res.status == "same":
                return None
            raise self._refusal(res, op, key, expect)
        assert res.type is not None
        entry = LogEntry(
            res.rv,
            res.type,
            key,
            decode_object(res.body if res.type is EventType.DELETED else body, res.rv),
        )
        # Read your writes on this replica: wait (briefly) until the reader has it.
        await self.wait_for_new(res.rv - 1, timeout=self.write_wait)
        return entry

    def _refusal(self, res: AppendResult, op: str, key: str, expect: str) -> StatusError:
        name = _name_of(key)
        if res.status == "exists":
            return already_exists(self.resource, name, group=self.group)
        if res.status == "missing":
            return not_found(self.resource, name, group=self.group)
        if op == Op.DELETE:
            return conflict(
                self.resource,
                name,
                f"Precondition failed: ResourceVersion in precondition: {expect}, "
                f"ResourceVersion in object meta: {res.rv}",
                group=self.group,
            )
        return conflict(
            self.resource,
            name,
            "the object has been modified; please apply your changes to the latest "
            "version and try again",
            group=self.group,
        )

    def close(self) -> None:
        """Stop following the stream and wake every waiter (idempotent)."""
        self._closed = True
        self._notify()
