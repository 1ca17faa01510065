"""One resource's stream and object hash in Redis: batched conditional appends,
chained reads, consistent snapshots. No cache logic here, only Redis I/O."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import anyio
import attrs

from k8swatch._eventlog import too_old_resource_version
from k8swatch._events import EventType
from k8swatch._status import service_unavailable

from ._errors import REDIS_ERRORS, status_error_for
from ._scripts import APPEND, BOUNDS, CHECK, SNAPSHOT, epoch_key_for, keys_for, pack_op
from ._watermark import Watermark

__all__ = ["AppendResult", "Record", "Snapshot", "StreamClient"]

_TYPES = {
    b"ADDED": EventType.ADDED,
    b"MODIFIED": EventType.MODIFIED,
    b"DELETED": EventType.DELETED,
}


class Record(NamedTuple):
    """One stream entry: the change with RV ``rv``; ``prev`` is the stream's previous RV."""

    rv: int
    type: EventType
    key: str
    body: bytes
    prev: int


def _record(identifier: bytes, packed: bytes) -> Record:
    """Unpack one entry (see `_scripts`: id ``<rv>-0``, ``e`` = prev, type, key, body)."""
    prev, typ, key, body = packed.split(b"\0", 3)
    return Record(int(identifier.partition(b"-")[0]), _TYPES[typ], key.decode(), body, int(prev))


def _read_record(item: bytes) -> Record:
    """Unpack one entry read by `APPEND` (``<rv> NUL`` and the ``e`` field)."""
    rv, prev, typ, key, body = item.split(b"\0", 4)
    return Record(int(rv), _TYPES[typ], key.decode(), body, int(prev))


class AppendResult(NamedTuple):
    """What `APPEND` did with one operation (see `_scripts.APPEND`)."""

    status: str
    rv: int
    type: EventType | None = None
    body: bytes = b""


@attrs.frozen
class Snapshot:
    """The current objects at ``rv`` (the stream's last RV) and the oldest resumable RV."""

    rv: int
    oldest: int
    objects: dict[str, tuple[int, bytes]]


class _DataLost(Exception):
    """`APPEND` refused: Redis does not have what this replica saw (see `StreamClient.check`)."""


class _Pending:
    __slots__ = ("arg", "error", "result")

    def __init__(self, arg: bytes) -> None:
        self.arg = arg
        self.result: AppendResult | None = None
        self.error: BaseException | None = None


class _Batch:
    """Appends sent together; one event wakes all their callers."""

    __slots__ = ("applied", "done", "items")

    def __init__(self) -> None:
        self.items: list[_Pending] = []
        self.done = anyio.Event()  # its writers may resume
        self.applied = anyio.Event()  # its reply was handled (or it failed)

    def fail(self, error: BaseException) -> None:
        self.fail_rest(lambda: error)
        self.done.set()
        self.applied.set()

    def fail_rest(self, error: Callable[[], BaseException]) -> None:
        """Fail the items the script never reached (*error* is made only if there are any)."""
        rest = [p for p in self.items if p.result is None and p.error is None]
        if rest:
            made = error()
            for p in rest:
                p.error = made


def _stream_entries(reply: Any) -> Any:
    """The entries of a raw one-stream ``XREAD`` reply (RESP3: a map; RESP2: a list)."""
    if not reply:
        return ()
    if isinstance(reply, Mapping):
        return next(iter(cast(Any, reply).values()))
    return reply[0][1]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


@attrs.define(eq=False)
class StreamClient:
    """Redis I/O for one resource (the keys of `_scripts.keys_for`).

    Appends are group-committed: every operation submitted while a batch is in
    flight goes into the next one, so many concurrent writers cost one round
    trip per batch, not one each. ``run_batcher()`` must run in a task for
    ``append()`` to make progress.

    Every write and read is checked against *mark* (what this replica saw,
    shared by the logs of one prefix): an append that finds Redis lost data
    runs `check()`, which re-seeds the counter and tells *mark*, and is then
    tried once more.

    ``release_after(rv, release)`` decides when the writers of an applied
    batch resume (*rv*: the newest RV it recorded, 0 for none); by default at
    once. The event log holds them until its mirror has *rv* (read your
    writes), so each writer wakes once.

    A batch also reads the stream in the same script call when
    ``read_position()`` gives ``(rv, count)`` (the event log's mirror
    position and read size): up to *count* entries after *rv*, its own
    included, handed to
    ``on_read(records)`` before its writers are released. So the
    writing replica's mirror needs no ``XREAD`` round trip of its own for its
    writes, nor for what other replicas wrote before them.
    """

    client: Any  # coredis.Redis[bytes]
    prefix: str
    resource: str
    retention: int = 10_000
    max_batch: int = 512
    mark: Watermark = attrs.field(factory=Watermark)
    keys: tuple[str, str, str] = attrs.field(init=False)
    epoch_key: str = attrs.field(init=False)
    _append_script: Any = attrs.field(init=False)
    _snapshot_script: Any = attrs.field(init=False)
    _bounds_script: Any = attrs.field(init=False)
    _check_script: Any = attrs.field(init=False)
    _queue: deque[_Batch] = attrs.field(init=False, factory=lambda: deque[_Batch]())
    _wakeup: anyio.Event = attrs.field(init=False, factory=anyio.Event)
    _closed: bool = attrs.field(init=False, default=False)
    release_after: Callable[[int, Callable[[], None]], None] = attrs.field(
        init=False, default=lambda rv, release: release()
    )
    read_position: Callable[[], tuple[int, int] | None] = attrs.field(
        init=False, default=lambda: None
    )
    on_read: Callable[[list[Record]], None] = attrs.field(init=False, default=lambda records: None)
    _in_flight: _Batch | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.keys = keys_for(self.prefix, self.resource)
        self.epoch_key = epoch_key_for(self.prefix)
        # register_script: EVALSHA, re-loading the script after NOSCRIPT (Redis restarted)
        self._append_script = self.client.register_script(APPEND)
        self._snapshot_script = self.client.register_script(SNAPSHOT)
        self._bounds_script = self.client.register_script(BOUNDS)
        self._check_script = self.client.register_script(CHECK)

    # -- writes -----------------------------------------------------------------

    def close(self) -> None:
        """Fail queued appends with ``anyio.ClosedResourceError`` (they were not sent)."""
        self._closed = True
        while self._queue:
            self._queue.popleft().fail(anyio.ClosedResourceError())

    async def append(self, op: str, key: str, expect: str, body: bytes) -> AppendResult:
        """Apply one operation (an `Op` code); raises 503/500 `StatusError` on failure."""
        if self._closed:
            raise anyio.ClosedResourceError
        queue = self._queue
        if not queue or len(queue[-1].items) >= self.max_batch:
            queue.append(_Batch())
            self._wakeup.set()
        batch = queue[-1]
        pending = _Pending(pack_op(op, key, expect, body))
        batch.items.append(pending)
        await batch.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    @property
    def busy(self) -> bool:
        """True while appends are queued or in flight."""
        return self._in_flight is not None or bool(self._queue)

    async def wait_applied(self, timeout: float) -> None:
        """Wait until the appends queued or in flight now were applied or failed.

        At most *timeout* seconds. Their replies were handed to ``on_read``
        (when they read the stream) and ``release_after`` by then.
        """
        newest = self._queue[-1] if self._queue else self._in_flight
        if newest is not None:
            with anyio.move_on_after(timeout):
                await newest.applied.wait()

    async def run_batcher(self) -> None:
        """Send queued appends in batches, one batch in flight at a time (runs until cancelled).

        Appends made while a batch is in flight form the next batch. When
        cancelled, the batch in flight and the queued ones fail with
        ``anyio.ClosedResourceError`` (the one in flight may have been applied).
        """
        queue = self._queue
        batch: _Batch | None = None
        try:
            while True:
                while not queue:
                    await self._wakeup.wait()
                    self._wakeup = anyio.Event()
                batch = self._in_flight = queue.popleft()
                try:
                    results, after, records = await self._apply([p.arg for p in batch.items])
                except Exception as exc:
                    self._in_flight = None
                    batch.fail(exc)
                    continue
                newest = 0
                for p, result in zip(batch.items, results, strict=False):
                    p.result = result
                    if result.status == "ok":
                        newest = result.rv
                # the script stopped at an error: the rest were not tried
                batch.fail_rest(lambda: status_error_for(RuntimeError("append aborted")))
                if after is not None and records is not None:
                    self.on_read(records)
                self.release_after(newest, batch.done.set)
                self._in_flight = None
                batch.applied.set()
                batch = None
        finally:
            self._in_flight = None
            if batch is not None:
                batch.fail(anyio.ClosedResourceError())
            while queue:
                queue.popleft().fail(anyio.ClosedResourceError())

    async def _apply(
        self, ops: Sequence[bytes]
    ) -> tuple[list[AppendResult], int | None, list[Record] | None]:
        try:
            return await self._apply_once(ops)
        except _DataLost:
            pass
        try:
            await self.check()
            return await self._apply_once(ops)
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
        except _DataLost:  # lost again at once: let the client retry later
            raise service_unavailable(
                "Redis lost its data and is recovering; nothing was written, retry"
            ) from None

    async def _apply_once(
        self, ops: Sequence[bytes]
    ) -> tuple[list[AppendResult], int | None, list[Record] | None]:
        position = self.read_position()
        if position is None:
            return (await self.append_batch(ops))[0], None, None
        after, count = position
        results, records = await self.append_batch(ops, read_after=after, read_count=count)
        return results, after, records

    async def append_batch(
        self, ops: Sequence[bytes], *, read_after: int | None = None, read_count: int = 1000
    ) -> tuple[list[AppendResult], list[Record] | None]:
        """Apply packed *ops* (`pack_op`) in one script call, in order; each is all-or-nothing.

        Returns their results and, with *read_after*, the stream's entries
        after that RV as the same call left them (up to *read_count*), or
        None when it read nothing usable: not asked, an operation failed (the
        script stopped there), or entries after *read_after* were trimmed.
        Raises `_DataLost` (nothing applied) when Redis no longer has what
        this replica saw.
        """
        mark = self.mark
        read = b"" if read_after is None else b"%d:%d" % (read_after, max(read_count, 1))
        try:
            raw = await self._append_script(
                keys=[*self.keys, self.epoch_key],
                args=[self.retention, mark.epoch, mark.seen, read, *ops],
            )
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
        if len(raw) == 1 and _bytes(raw[0]) == b"lost":
            raise _DataLost
        records: list[Record] | None = None
        if read_after is not None and len(raw) >= len(ops):
            records = [_read_record(item) for item in raw[len(ops) :]]
            raw = raw[: len(ops)]
            if records and records[0].prev > read_after:
                records = None  # trimmed past it: the reader finds out (410)
            elif records:
                mark.observe(records[-1].rv)
        out: list[AppendResult] = []
        for item in raw:
            status, rv, tail = _bytes(item).split(b":", 2)
            mark.observe(int(rv))
            if status == b"ok":
                typ, _, body = tail.partition(b":")
                out.append(AppendResult("ok", int(rv), _TYPES[typ], body))
            elif status == b"error":
                if out:  # earlier operations were applied; report them, fail the rest
                    return out, None
                raise status_error_for(RuntimeError(tail.decode(errors="replace")))
            else:
                out.append(AppendResult(status.decode(), int(rv)))
        return out, records

    # -- reads ------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """Return the current objects and the stream's RV, read atomically."""
        try:
            raw = await self._snapshot_script(keys=self.keys[1:], args=[])
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
        objects: dict[str, tuple[int, bytes]] = {}
        for i in range(2, len(raw), 2):
            rv, _, body = _bytes(raw[i + 1]).partition(b":")
            objects[_text(raw[i])] = (int(rv), body)
        self.mark.observe(int(_text(raw[0])))
        return Snapshot(int(_text(raw[0])), int(_text(raw[1])), objects)

    async def get(self, key: str) -> tuple[int, bytes] | None:
        """Return the current (rv, body) of *key*, or None when absent."""
        try:
            raw = await self.client.hget(self.keys[2], key)
        except REDIS_ERRORS as exc:
            raise status_error_for(exc) from exc
        if raw is None:
            return None
        rv, _, body = _bytes(raw).partition(b":")
        return int(rv), body

    async def bounds(self) -> tuple[int, int]:
        """Return (oldest resumable RV, current RV) of the stream ((0, 0) when empty).

        Redis errors propagate unchanged.
        """
        raw = await self._bounds_script(keys=self.keys[1:2], args=[])
        return int(_text(raw[1])), int(_text(raw[0]))

    async def check(self) -> int:
        """Check that Redis has what this replica saw; return the stream's current RV.

        When it does not (see `_scripts.CHECK`), the counter is re-seeded
        above every RV used before and ``mark.lost(seed)`` tells every log of
        this replica. Redis errors propagate unchanged.
        """
        mark = self.mark
        raw = await self._check_script(
            keys=[self.keys[0], self.epoch_key, self.keys[1]],
            args=[mark.epoch, mark.seen, secrets.token_hex(16)],
        )
        mark.epoch = _text(raw[1])
        current = int(_text(raw[2]))
        mark.observe(current)
        if _text(raw[0]) == "lost":
            mark.lost(int(_text(raw[3])))
        return current

    async def read_after(
        self, rv: int, *, count: int = 1000, block: float | None = None
    ) -> list[Record]:
        """Return up to *count* entries with RV > *rv*, oldest first.

        With *block* (seconds), wait up to that long for the first entry
        (``XREAD BLOCK``). Raises a 410 Expired `StatusError` when entries after
        *rv* were trimmed (the first entry's ``prev`` is newer than *rv*), so a
        reader never skips a change silently. Redis errors propagate unchanged
        (the caller decides whether to retry).
        """
        start = f"{rv}-0"
        # Raw replies: [id, [b"e", packed]] per entry, without building
        # coredis's StreamEntry tuples and dicts that we would unpack again.
        if block is None:
            entries = await self.client.xrange(self.keys[1], start=f"({start}", count=count).raw()
        else:
            res = await self.client.xread(
                {self.keys[1]: start}, count=count, block=max(1, int(block * 1000))
            ).raw()
            entries = _stream_entries(res)
        records = [_record(e[0], e[1][1]) for e in entries]
        if records:
            if records[0].prev > rv:
                raise too_old_resource_version(rv, records[0].prev)
            self.mark.observe(records[-1].rv)
        return records
