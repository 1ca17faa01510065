"""A tiny dict-backed storage for the server tests (independent of MemoryStorage).

It implements the storage protocol with a simple event history, resume from a
resourceVersion, 410 for a too-old one, ``sendInitialEvents`` and bookmarks,
and selectors through ``SelectionPredicate``: enough to exercise the HTTP layer on its own.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from k8swatch import (
    Event,
    EventType,
    ListOptions,
    ObjectList,
    StatusError,
    WatchBase,
    already_exists,
    conflict,
    expired,
    not_found,
)
from k8swatch._filters import SelectionPredicate


def _matches(obj: dict[str, Any], namespace: str, options: ListOptions) -> bool:
    return SelectionPredicate.from_list_options(namespace, options).matches(obj)


class DictWatch(WatchBase[dict[str, Any]]):
    def __init__(
        self,
        storage: DictStorage,
        send: MemoryObjectSendStream[Event[Any]],
        receive: MemoryObjectReceiveStream[Event[Any]],
    ) -> None:
        self._storage = storage
        self._send = send
        self._receive = receive
        self._stopped = False

    async def __anext__(self) -> Event[Any]:
        if self._stopped:
            raise StopAsyncIteration
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self.stop()
            raise StopAsyncIteration from None

    async def batches(self) -> AsyncIterator[Sequence[Event[Any]]]:
        while True:
            try:
                first = await self.__anext__()
            except StopAsyncIteration:
                return
            batch = [first]
            while True:
                try:
                    batch.append(self._receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
            yield batch

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._receive.close()
            self._send.close()
            self._storage.watch_stops += 1

    @property
    def stopped(self) -> bool:
        return self._stopped


class DictStorage:
    def __init__(self, api_version: str, kind: str, *, window: int = 100) -> None:
        self.api_version = api_version
        self.kind = kind
        self.resource = kind.lower() + "s"
        self.window = window
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.rv = 0
        self.history: list[tuple[int, Event[Any], dict[str, Any] | None]] = []
        self.watchers: list[tuple[str, ListOptions, MemoryObjectSendStream[Event[Any]]]] = []
        self.closed = False
        self.watch_stops = 0
        self.watch_calls: list[ListOptions] = []

    def _record(self, type_: EventType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        event = Event(type_, obj)
        self.history.append((self.rv, event, old))
        del self.history[: -self.window]
        for namespace, options, stream in list(self.watchers):
            if _matches(obj, namespace, options):
                try:
                    stream.send_nowait(event)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self.watchers.remove((namespace, options, stream))
                    stream.close()

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.objects[(namespace, name)]
        except KeyError:
            raise not_found(self.resource, name, group="example.com") from None

    async def list(self, namespace: str, options: ListOptions) -> ObjectList:
        predicate = SelectionPredicate.from_list_options(namespace, options)
        items = [o for o in self.objects.values() if predicate.matches(o)]
        return ObjectList(items, resource_version=str(self.rv))

    async def create(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = dict(obj.get("metadata") or {})
        key = (namespace, meta["name"])
        if key in self.objects:
            raise already_exists(self.resource, meta["name"], group="example.com")
        self.rv += 1
        meta.update(
            namespace=namespace,
            resourceVersion=str(self.rv),
            creationTimestamp=datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        )
        stored = {**obj, "metadata": meta}
        self.objects[key] = stored
        self._record(EventType.ADDED, stored, None)
        return stored

    async def update(self, namespace: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        old = await self.get(namespace, name)
        meta = dict(obj.get("metadata") or {})
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(
                self.resource,
                name,
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
                group="example.com",
            )
        self.rv += 1
        meta.update(
            resourceVersion=str(self.rv), creationTimestamp=old["metadata"]["creationTimestamp"]
        )
        stored = {**obj, "metadata": meta}
        self.objects[(namespace, name)] = stored
        self._record(EventType.MODIFIED, stored, old)
        return stored

    async def delete(self, namespace: str, name: str) -> dict[str, Any]:
        old = await self.get(namespace, name)
        del self.objects[(namespace, name)]
        self.rv += 1
        stored = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)}}
        self._record(EventType.DELETED, stored, old)
        return stored

    async def watch(self, namespace: str, options: ListOptions) -> DictWatch:
        self.watch_calls.append(options)
        SelectionPredicate.from_list_options(namespace, options)  # 400 for bad selectors
        send, receive = anyio.create_memory_object_stream[Event[Any]](math.inf)
        if options.send_initial_events:
            for obj in list(self.objects.values()):
                if _matches(obj, namespace, options):
                    send.send_nowait(Event(EventType.ADDED, obj))
            if options.allow_watch_bookmarks:
                send.send_nowait(self._bookmark(initial_end=True))
        elif options.resource_version not in ("", "0"):
            start = int(options.resource_version)
            oldest = self.history[0][0] if self.history else self.rv + 1
            if start < oldest - 1:
                send.send_nowait(
                    Event(
                        EventType.ERROR,
                        expired(f"too old resource version: {start} ({oldest - 1})").status,
                    )
                )
                send.close()
                return DictWatch(self, send, receive)
            for rv, event, _old in self.history:
                if rv > start and _matches(event.object, namespace, options):
                    send.send_nowait(event)
        self.watchers.append((namespace, options, send))
        return DictWatch(self, send, receive)

    def _bookmark(self, *, initial_end: bool = False) -> Event[Any]:
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return Event(
            EventType.BOOKMARK,
            {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta},
        )

    def send_bookmark(self) -> None:
        event = self._bookmark()
        for _ns, options, stream in self.watchers:
            if options.allow_watch_bookmarks:
                stream.send_nowait(event)

    async def aclose(self) -> None:
        self.closed = True
        for _ns, _options, stream in self.watchers:
            stream.close()
        self.watchers.clear()


def raise_status(err: StatusError) -> None:
    raise err
