"""`FilesCache`: the text files of Coder template versions, by version id.

A Coder template version is immutable: its source archive never changes once
the version exists. So ``spec.files`` is a function of ``spec.versionID``, and
the files read once can serve every later get, list item and watch event of
every template whose active version it is. Objects are recorded (ledger,
watch cache, event log) without their files; `TemplateStorage` adds them on
the way out, from this cache.

Bound. The cache holds what lists need: one entry per active template
version. After every complete listing of a deployment, the entries of that
deployment that are no active version any more are dropped (`retain`), so the
cache never grows with versions no longer referenced. On top of that, a byte
budget (`max_bytes`, measured with ``sys.getsizeof`` of the paths and texts)
evicts the least recently used entries: the sources of the templates a
deployment has are the working set, and the budget caps the memory a
deployment with huge sources can take, at the price of reading them again.
An entry larger than the whole budget is served but not kept.

A version whose source cannot be read for good (it has no file, the file is
gone, the archive is not a zip we can read) is remembered as `Unreadable` with
a reason in our words; the details are logged once. Failures that may pass
(Coder unreachable, 5xx, 429, auth) are raised as mapped `StatusError`s and
not remembered.
"""

from __future__ import annotations

import collections
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
import attrs
from typing_extensions import final

from k8swatch._events import Event, EventType
from k8swatch._go import go_quote
from k8swatch._status import StatusError
from k8swatch._watch import Watch, WatchBase
from k8swatch.coder._client import CoderClient, CoderError, map_coder_error
from k8swatch.coder._files import read_archive
from k8swatch.coder._ledger import sub
from k8swatch.coder._models import GROUP, CoderTemplate

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BYTES",
    "DecoratedWatch",
    "FilesCache",
    "Unreadable",
    "files_of",
]

logger = logging.getLogger("k8swatch.coder")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""The default byte budget: room for the sources of ~1,000 typical templates."""

DEFAULT_CONCURRENCY = 8
"""Versions read from Coder at the same time when a list or a batch of events needs many."""


@attrs.frozen
class Unreadable:
    """A version whose source cannot be read for good; *reason* is safe to show."""

    reason: str


_Key = tuple[str, str]  # (deployment URL, version id)


def _size_of(files: Mapping[str, str]) -> int:
    return sys.getsizeof(files) + sum(sys.getsizeof(p) + sys.getsizeof(t) for p, t in files.items())


@final
class FilesCache:
    """Template version id → its text files, bounded (see the module docstring).

    Args:
        max_bytes: The byte budget (least recently used entries go first).
        concurrency: How many versions `fill` reads from Coder at once.

    Raises:
        ValueError: *max_bytes* is negative or *concurrency* below 1.
    """

    def __init__(
        self, *, max_bytes: int = DEFAULT_MAX_BYTES, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.max_bytes = max_bytes
        self.concurrency = concurrency
        self._entries: collections.OrderedDict[_Key, dict[str, str] | Unreadable] = (
            collections.OrderedDict()
        )
        self._sizes: dict[_Key, int] = {}
        self._bytes = 0
        self._inflight: dict[_Key, anyio.Event] = {}
        self.hits = 0
        """Lookups answered from the cache."""
        self.misses = 0
        """Versions read from Coder."""
        self.drops = 0
        """Entries dropped so far (evicted or no longer referenced): whoever keeps
        objects holding this cache's files checks it, so nothing outlives the bound."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The memory the kept entries take, as counted against `max_bytes`."""
        return self._bytes

    def version_ids(self) -> set[str]:
        """The version ids kept (of every deployment)."""
        return {version for _, version in self._entries}

    # --- keeping -----------------------------------------------------------------

    def put(self, client: CoderClient, version_id: str, files: dict[str, str] | Unreadable) -> None:
        """Keep *files* for *version_id* of *client*'s deployment (evicting LRU entries)."""
        key = (client.url, version_id)
        self._drop(key)
        size = 64 if isinstance(files, Unreadable) else _size_of(files)
        if size > self.max_bytes:
            return
        self._entries[key] = files
        self._sizes[key] = size
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: _Key) -> None:
        if self._entries.pop(key, None) is not None:
            self._bytes -= self._sizes.pop(key)
            self.drops += 1

    def retain(self, client: CoderClient, version_ids: Iterable[str]) -> None:
        """After a complete listing: drop *client*'s entries of versions not in *version_ids*."""
        keep = set(version_ids)
        for key in [k for k in self._entries if k[0] == client.url and k[1] not in keep]:
            self._drop(key)

    # --- reading -------------------------------------------------------------------

    async def files(
        self, client: CoderClient, version_id: str, name: str
    ) -> dict[str, str] | Unreadable:
        """The files of *version_id* (read from Coder once; callers must not change them).

        *name* is the template's, for the error of a failed read. Concurrent
        calls for one version read it once.

        Raises:
            StatusError: a failure that may pass (mapped: 503 when Coder is
                unreachable or failing, 429, 401, 403; 500 for a malformed answer).
        """
        key = (client.url, version_id)
        while True:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            pending = self._inflight.get(key)
            if pending is None:
                break
            # another task reads it; if that read fails (or its result is too
            # big to keep), the first waiter to wake up reads it again
            await pending.wait()
        done = self._inflight[key] = anyio.Event()
        try:
            self.misses += 1
            result = await _read(client, version_id, name)
            self.put(client, version_id, result)
            return result
        finally:
            del self._inflight[key]
            done.set()

    async def fill(
        self, client: CoderClient, wanted: Mapping[str, str]
    ) -> dict[str, dict[str, str] | Unreadable]:
        """The files of every version of *wanted* (version id → template name).

        Versions not in the cache are read concurrently, at most `concurrency`
        at a time; the first failure cancels the others and is raised.

        Raises:
            StatusError: as `files`.
        """
        out: dict[str, dict[str, str] | Unreadable] = {}
        missing: list[tuple[str, str]] = []
        for version_id, name in wanted.items():
            found = self._entries.get((client.url, version_id))
            if found is None:
                missing.append((version_id, name))
            else:
                self._entries.move_to_end((client.url, version_id))
                self.hits += 1
                out[version_id] = found
        if not missing:
            return out
        limiter = anyio.CapacityLimiter(self.concurrency)
        failed: list[StatusError] = []

        async def one(version_id: str, name: str, scope: anyio.CancelScope) -> None:
            async with limiter:
                try:
                    out[version_id] = await self.files(client, version_id, name)
                except StatusError as exc:
                    failed.append(exc)
                    scope.cancel()

        async with anyio.create_task_group() as tg:
            for version_id, name in missing:
                tg.start_soon(one, version_id, name, tg.cancel_scope)
        if failed:
            raise failed[0]
        return out


async def _read(client: CoderClient, version_id: str, name: str) -> dict[str, str] | Unreadable:
    """Read one version's source from Coder (see `FilesCache.files` for the errors)."""
    where = f"template version {go_quote(version_id)} of {name}"
    try:
        version = await client.template_version(version_id)
        file_id = sub(version, "job").get("file_id")
        if not file_id:
            return _unreadable(where, "the version has no source file", "no job.file_id")
        data = await client.download(str(file_id))
    except CoderError as exc:
        if exc.status_code in (404, 410):
            return _unreadable(where, "its source is gone from Coder", str(exc))
        raise _mapped(exc, name) from None
    except StatusError:
        raise
    except Exception as exc:
        raise _mapped(exc, name) from None
    try:
        return read_archive(data)
    except ValueError as exc:
        detail = f"{client.url}/api/v2/files/{file_id}: {exc.__cause__ or exc!r}"
        return _unreadable(where, f"its source archive cannot be read: {exc}", detail)


def _mapped(exc: Exception, name: str) -> StatusError:
    return map_coder_error(exc, CoderTemplate.PLURAL, name, group=GROUP)


def _unreadable(where: str, reason: str, detail: str) -> Unreadable:
    logger.warning("coder: cannot read the source of %s: %s (%s)", where, reason, detail)
    return Unreadable(f"cannot read the source of {where}: {reason}")


def files_of(entry: dict[str, str] | Unreadable | None) -> dict[str, str] | None:
    """A copy of the files to put in an object (None: unreadable, leave ``spec.files`` out)."""
    if entry is None or isinstance(entry, Unreadable) or not entry:
        return None
    return dict(entry)


# --- watches whose events get their files on the way out ----------------------------

_Events = Sequence[Event[dict[str, Any]]]
_Decorate = Callable[[_Events], Awaitable[_Events]]


@final
class DecoratedWatch(WatchBase[dict[str, Any]]):
    """A watch whose events pass through an async *decorate* (a batch at a time).

    When *decorate* raises a `StatusError` (Coder failed while the files of an
    event were read), the watch sends one ERROR event with that Status and
    ends, as the apiserver ends a watch it cannot continue: the client lists
    again (with the cache, it resumes and gets the event again).
    """

    __slots__ = ("_decorate", "_ended", "_upstream")

    def __init__(self, upstream: Watch[dict[str, Any]], decorate: _Decorate) -> None:
        self._upstream = upstream
        self._decorate = decorate
        self._ended = False

    async def __anext__(self) -> Event[dict[str, Any]]:
        """The next event, decorated.

        Raises:
            StopAsyncIteration: the watch has ended.
        """
        if self._ended:
            raise StopAsyncIteration
        return (await self._apply([await self._upstream.__anext__()]))[0]

    async def _apply(self, events: _Events) -> _Events:
        try:
            return await self._decorate(events)
        except StatusError as exc:
            logger.warning("coder: ending a template watch: %s", exc.status.message)
            self._ended = True
            self._upstream.stop()
            return [Event(EventType.ERROR, exc.status.to_dict())]

    def stop(self) -> None:
        """Stop the upstream watch. Idempotent."""
        self._upstream.stop()

    @property
    def stopped(self) -> bool:
        """True once stopped, ended by an error, or when the upstream watch ended."""
        return self._ended or self._upstream.stopped

    def batches(self) -> AsyncIterator[Sequence[Event[dict[str, Any]]]]:
        """The upstream batches, decorated (a batch's files are read concurrently)."""
        return _DecoratedBatches(self, self._upstream.batches())


@final
class _DecoratedBatches:
    __slots__ = ("_it", "_watch")

    def __init__(
        self, watch: DecoratedWatch, it: AsyncIterator[Sequence[Event[dict[str, Any]]]]
    ) -> None:
        self._watch = watch
        self._it = it

    def __aiter__(self) -> _DecoratedBatches:
        return self

    async def __anext__(self) -> _Events:
        if self._watch._ended:  # pyright: ignore[reportPrivateUsage]
            raise StopAsyncIteration
        return await self._watch._apply(await self._it.__anext__())  # pyright: ignore[reportPrivateUsage]

    async def aclose(self) -> None:
        """Close the upstream batch iterator, if it can be closed."""
        closer: Callable[[], Awaitable[object]] | None = getattr(self._it, "aclose", None)
        if closer is not None:
            await closer()
