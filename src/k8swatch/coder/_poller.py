"""`CoderPoller`: changes made outside this server, turned into watch events.

Coder has no deployment-wide change feed. The poller lists workspaces and
templates on an interval and lets each storage diff the listing against the
last state it knows (its own writes included), so builds finishing, edits in
the Coder UI and completed deletions reach watchers as MODIFIED, ADDED and
DELETED, and the storage's own events are never repeated.

For workspaces whose latest build is in progress, the poller also follows
Coder's per-workspace watch stream (``GET /workspaces/{id}/watch``, Server-Sent
Events), so a build's progress shows up without waiting for the next poll.

Errors (Coder down, timeouts) are logged and retried with jittered
exponential backoff; they never end the storages' open watches.

Several server replicas on one shared event log (``log=`` storages) may each
run a poller: the storages' conditional writes record every change once. Give
the pollers a *lease* (e.g. ``k8swatch.redis.RedisLease``) and only its holder
polls, so Coder is listed once per interval, not once per replica.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any, Protocol

import anyio
import anyio.abc
from typing_extensions import final

from k8swatch.coder._ledger import sub
from k8swatch.coder._storage_base import _CoderStorage
from k8swatch.coder._workspaces import WorkspaceStorage

__all__ = ["CoderPoller"]

logger = logging.getLogger("k8swatch.coder")

_ACTIVE = frozenset({"pending", "starting", "stopping", "deleting", "canceling"})


class _Lease(Protocol):
    """What `CoderPoller` needs of a lease (``k8swatch.redis.RedisLease`` has it)."""

    async def acquire(self) -> bool:
        """Take or renew the lease; True while we hold it."""
        ...

    async def release(self) -> None:
        """Give the lease up if we hold it."""
        ...


@final
class CoderPoller:
    """Poll Coder and feed out-of-band changes into the storages' event sources.

    Args:
        storages: The storages to keep current (`WorkspaceStorage`,
            `TemplateStorage`), usually sharing one provider.
        interval: Seconds between successful polls.
        max_backoff: Upper bound of the delay after consecutive failures (the
            delay doubles from *interval* per failure).
        jitter: Relative randomisation of every delay (0.2 = ±20 %), so many
            servers do not poll in lockstep.
        stream_workspaces: Follow the watch stream of workspaces with a build
            in progress.
        max_streams: At most this many workspace streams at once.
        lease: Poll only while holding this lease (e.g. a
            ``k8swatch.redis.RedisLease`` shared by the replicas of one API):
            before every poll `run` takes or renews it, and stands by (tries
            again after the next delay) while another replica holds it. Its
            ttl must exceed the interval plus jitter, or it lapses between
            polls. The lease saves load, it is not needed for correctness:
            with ``log=`` storages, replicas polling at once (e.g. while a
            lapsed lease changes hands) still record every change once.

    Use ``await poller.run()`` in a task group (it runs until cancelled), or
    call `poll_once` yourself.

    Raises:
        ValueError: a non-positive *interval* or *max_backoff*, or *jitter*
            outside [0, 1).
    """

    def __init__(
        self,
        storages: Sequence[Any],
        *,
        interval: float = 5.0,
        max_backoff: float = 60.0,
        jitter: float = 0.2,
        stream_workspaces: bool = True,
        max_streams: int = 20,
        lease: _Lease | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        if max_backoff <= 0:
            raise ValueError(f"max_backoff must be > 0, got {max_backoff}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self._storages: tuple[_CoderStorage, ...] = tuple(storages)
        self._interval = interval
        self._max_backoff = max(max_backoff, interval)
        self._jitter = jitter
        self._stream_workspaces = stream_workspaces
        self._max_streams = max_streams
        self._streams: set[tuple[str, str]] = set()
        self._failures = 0
        self._polls = 0
        self._lease = lease
        self._active = lease is None

    @property
    def failures(self) -> int:
        """Consecutive failed polls (0 after a success)."""
        return self._failures

    @property
    def polls(self) -> int:
        """Polls completed successfully so far."""
        return self._polls

    @property
    def active(self) -> bool:
        """True unless `run` is standing by because another holder has the lease."""
        return self._active

    @property
    def streams(self) -> frozenset[tuple[str, str]]:
        """``(namespace, workspace id)`` of the workspace streams currently followed."""
        return frozenset(self._streams)

    async def poll_once(self) -> None:
        """List every storage's objects from Coder and emit the differences.

        Raises:
            StatusError: a storage could not list (503 when Coder is
                unreachable); the other storages are still polled first.
        """
        first_error: BaseException | None = None
        for storage in self._storages:
            try:
                await storage.resync()
            except Exception as exc:
                if first_error is None:
                    first_error = exc
        if first_error is not None:
            raise first_error
        self._polls += 1

    def next_delay(self) -> float:
        """The delay before the next poll: the interval, or the backoff after failures."""
        base = self._interval
        if self._failures:
            base = min(self._max_backoff, self._interval * 2 ** min(self._failures, 30))
        if self._jitter:
            base *= random.uniform(1 - self._jitter, 1 + self._jitter)
        return base

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Poll until cancelled. ``task_status.started()`` fires after the first attempt.

        With a *lease*, each attempt first takes or renews it and is skipped
        while another holder has it; the lease is released when `run` ends.
        """
        try:
            await self._run(task_status)
        finally:
            if self._lease is not None:
                self._active = False
                with anyio.move_on_after(5, shield=True):
                    try:
                        await self._lease.release()
                    except Exception as exc:  # shutting down: the lease lapses by itself
                        logger.debug("coder poller: releasing the lease failed: %s", exc)

    async def _run(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with anyio.create_task_group() as tg:
            started = False
            while True:
                if self._lease is not None:
                    active = await self._lease.acquire()
                    if active != self._active:
                        logger.info(
                            "coder poller: %s",
                            "took the lease, polling" if active else "another replica polls",
                        )
                        self._active = active
                    if not active:
                        if not started:
                            started = True
                            task_status.started()
                        await anyio.sleep(self.next_delay())
                        continue
                try:
                    await self.poll_once()
                except Exception as exc:
                    self._failures += 1
                    logger.warning(
                        "coder poller: poll failed (%d in a row): %s", self._failures, exc
                    )
                else:
                    if self._failures:
                        logger.info("coder poller: Coder is reachable again")
                    self._failures = 0
                    if self._stream_workspaces:
                        self._start_streams(tg)
                if not started:
                    started = True
                    task_status.started()
                await anyio.sleep(self.next_delay())

    def _start_streams(self, tg: anyio.abc.TaskGroup) -> None:
        for storage in self._storages:
            if not isinstance(storage, WorkspaceStorage):
                continue
            for key in storage.active_workspaces():
                if key in self._streams or len(self._streams) >= self._max_streams:
                    continue
                self._streams.add(key)
                tg.start_soon(self._follow, storage, key)

    async def _follow(self, storage: WorkspaceStorage, key: tuple[str, str]) -> None:
        namespace, workspace_id = key
        try:
            client = await storage._client(namespace)
            async with client.watch_workspace(workspace_id) as updates:
                async for workspace in updates:
                    await storage.observe(namespace, workspace)
                    status = sub(workspace, "latest_build").get("status")
                    if status not in _ACTIVE:
                        break
        except Exception as exc:
            logger.debug("coder poller: workspace stream %s ended: %s", workspace_id, exc)
        finally:
            self._streams.discard(key)
