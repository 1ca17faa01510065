"""LogFeed: keep a WatchCache fed from an EventLog (load, catch up, follow).

The plumbing every storage on an [`EventLog`][k8swatch.EventLog] needs, in
one place: ``MemoryStorage`` and the Coder storages (``log=`` mode) use it.

* ``ensure_loaded()`` fills the cache from the log's ``snapshot()`` once;
* ``catch_up(target)`` reads after the cache's RV until the cache holds
  *target* (read your writes, consistent reads); a 410 reloads from the
  snapshot;
* ``follow()`` loops on ``read_after(cache_rv, wait=True)`` and ingests every
  batch, so writes made elsewhere (other replicas) reach local watchers: N
  local watchers cost one read. 410 reloads from the snapshot (the cache ends
  its watchers with 410 so their clients relist); other errors (503 while the
  log's backend is unreachable, also at start-up) are retried with jittered
  exponential backoff while open watches stay open.

Wake-ups of the watchers are coalesced over *coalesce* seconds
(``WatchCache.wake(within=...)``): a change arriving less than that after the
watchers were last active (woken, or back asleep after their last batch) is
held until that interval has passed, or until a quarter of the cache's
window has arrived (so that holding never pushes a sleeping watcher out of
the window), and then delivered together with everything that arrived
meanwhile. A sleeping watcher keeps time; no task is needed, whether
``follow`` runs or not. Under load, watchers get fewer, bigger batches (a
wake-up costs the same for one event as for hundreds) and writers get the
interval to themselves between two rounds of watchers; an isolated change
is delivered at once; writers are never held.

Every batch handed to the cache, whether by ``catch_up`` or ``follow``, is
also handed to the *on_ingest* hook (only entries newer than the cache, so
never twice), and every reload to *on_reset*: a storage that keeps its own
view of the state (the Coder storages' last known objects) stays in step with
the cache.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskStatus
from typing_extensions import final

from ._cache import WatchCache
from ._eventlog import EventLog, LogEntry, LogSnapshot
from ._status import StatusError, service_unavailable

__all__ = ["DEFAULT_COALESCE", "LogFeed"]

DEFAULT_COALESCE = 0.01
"""Seconds storages wait at least between two wake-ups of their watchers (``coalesce``)."""


def _never_closed() -> bool:
    return False


@final
class LogFeed:
    """Feed *cache* from *log*: one initial snapshot, then the log's entries in order.

    Args:
        log: The event log (the source of truth).
        cache: The watch cache to feed (only through this feed).
        is_closed: True once the owning storage is closed: ``follow`` returns
            and ``ensure_loaded``/``catch_up`` raise 503.
        on_ingest: Called with every batch of entries newer than the cache,
            right after the cache ingested it.
        on_reset: Called with the snapshot the cache was (re)loaded from.
        coalesce: Seconds over which wake-ups of the cache's watchers are
            coalesced (0: wake them for every batch).
    """

    def __init__(
        self,
        log: EventLog,
        cache: WatchCache[Any],
        *,
        is_closed: Callable[[], bool] = _never_closed,
        on_ingest: Callable[[Sequence[LogEntry]], None] | None = None,
        on_reset: Callable[[LogSnapshot], None] | None = None,
        coalesce: float = 0.0,
    ) -> None:
        if coalesce < 0:
            raise ValueError(f"coalesce must be >= 0, got {coalesce}")
        self.log = log
        self.cache = cache
        self._is_closed = is_closed
        self._on_ingest = on_ingest
        self._on_reset = on_reset
        self._coalesce = coalesce
        self._held = 0  # changes ingested since the last wake-up seen (self._wake_ups)
        self._wake_ups = 0
        self._loaded = False
        self._load_lock: anyio.Lock | None = None
        self._scopes: set[anyio.CancelScope] = set()
        self._reading: anyio.Event | None = None  # set when a catch-up's read is done

    @property
    def loaded(self) -> bool:
        """True once the cache was filled from the log's snapshot."""
        return self._loaded

    def _check_open(self) -> None:
        if self._is_closed():
            raise service_unavailable(f"the {self.cache.resource} storage is closed")

    def _reset(self, snapshot: LogSnapshot) -> None:
        self.cache.reset(snapshot)
        if self._on_reset is not None:
            self._on_reset(snapshot)

    def _ingest(self, entries: Sequence[LogEntry]) -> None:
        cache = self.cache
        rv = cache.resource_version
        if entries and entries[0].resource_version <= rv:
            entries = [e for e in entries if e.resource_version > rv]
        if not entries:
            return
        added = cache.ingest(entries, wake=False)
        if self._on_ingest is not None:
            self._on_ingest(entries)
        if not added:
            return
        if cache.wake_ups != self._wake_ups:  # a wake-up delivered what was held
            self._held = 0
        self._held += added
        # A sleeping watcher's position is where the last wake-up left it: wake
        # before the window could evict it (which would end it with 410). Writes
        # go on until the woken watchers run: keep a margin for them.
        if self._held * 4 >= cache.window:
            cache.wake()
        else:
            cache.wake(within=self._coalesce)
        if cache.wake_ups != self._wake_ups:
            self._held = 0
            self._wake_ups = cache.wake_ups

    def _wake_held(self) -> None:
        """Wake the watchers at once for whatever is held."""
        if self._held:
            self._held = 0
            self.cache.wake()

    async def ensure_loaded(self) -> None:
        """Fill the cache from the log's snapshot, once.

        Raises:
            StatusError: 503 when the storage is closed or the log unreachable.
        """
        self._check_open()
        if self._loaded:
            return
        if self._load_lock is None:
            self._load_lock = anyio.Lock()
        async with self._load_lock:
            if not self._loaded:
                snapshot = await self.log.snapshot()
                self._check_open()
                self._reset(snapshot)
                self._loaded = True

    async def catch_up(self, target: int, *, patience: float = 0.0) -> None:
        """Feed the cache from the log until it holds *target* (or the log has no more).

        Args:
            target: The RV the cache should reach.
            patience: Seconds to wait for entries the log does not serve yet
                (a log whose local mirror lags behind its backend, e.g. a
                Redis reader reconnecting) before giving up; 0: do not wait.
                Use it for an RV the log is known to hold.

        Raises:
            StatusError: 503 when the storage is closed or the log unreachable.
        """
        await self.ensure_loaded()
        cache = self.cache
        deadline: float | None = None
        while cache.resource_version < target:
            reading = self._reading
            if reading is not None:
                # Another catch-up is reading the log: what it ingests may serve
                # this one too. (Concurrent writers would otherwise all read, and
                # all but one discard, the same entries.)
                await reading.wait()
                continue
            self._reading = reading = anyio.Event()
            try:
                after = cache.resource_version
                try:
                    entries = await self.log.read_after(after, limit=cache.window)
                    if not entries and patience > 0:
                        if deadline is None:
                            deadline = anyio.current_time() + patience
                        with anyio.move_on_after(deadline - anyio.current_time()):
                            entries = await self.log.read_after(
                                after, limit=cache.window, wait=True
                            )
                except StatusError as exc:
                    if exc.status.code != 410:
                        raise
                    snapshot = await self.log.snapshot()
                    self._check_open()
                    self._reset(snapshot)
                    continue
                if not entries:
                    return
                self._check_open()
                self._ingest(entries)
            finally:
                self._reading = None
                reading.set()

    async def catch_up_to_log(self, *, patience: float | None = None) -> None:
        """Make the cache reflect every entry the log holds now (a consistent read).

        Waits up to *patience* seconds (default: the cache's ``wait_timeout``)
        for entries the log holds but does not serve yet.
        """
        await self.ensure_loaded()
        target = await self.log.current_resource_version()
        wait = self.cache.wait_timeout if patience is None else patience
        await self.catch_up(target, patience=wait)

    async def follow(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Feed the cache with the log's new entries until cancelled, closed or `stop`ped.

        A 410 (the log's retention passed this replica by) reloads the cache
        from the log's snapshot and ends open watches with 410; other errors
        are retried with jittered exponential backoff (0.05 s doubling up to
        5 s), and open watches stay open meanwhile.
        """
        task_status.started()
        delay = 0.05
        cache = self.cache
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                while not self._is_closed():
                    try:
                        await self.ensure_loaded()
                        entries = await self.log.read_after(
                            cache.resource_version, limit=cache.window, wait=True
                        )
                        delay = 0.05
                        if entries and not cache.closed:
                            self._ingest(entries)
                    except anyio.ClosedResourceError:
                        return
                    except StatusError as exc:
                        if self._is_closed():  # closed while we waited
                            return
                        if exc.status.code == 410:
                            with contextlib.suppress(StatusError):
                                self._reset(await self.log.snapshot())
                                continue
                        await anyio.sleep(delay * (0.5 + secrets.randbelow(1000) / 1000))
                        delay = min(delay * 2, 5.0)
        finally:
            self._scopes.discard(scope)
            if not self._scopes:
                self._wake_held()

    def stop(self) -> None:
        """End every running `follow` (idempotent; never waits)."""
        for scope in self._scopes:
            scope.cancel()
