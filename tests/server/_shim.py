"""TEMPORARY development shim for core pieces still being written (removed once they land)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import attrs

from k8swatch import Event, ListOptions, WatchBase, bad_request


class _Sel:
    def __init__(self, text: str) -> None:
        self.terms = [t.partition("=")[::2] for t in text.split(",") if t]

    @property
    def empty(self) -> bool:
        return not self.terms

    def requires_exact_match(self, field: str) -> str | None:
        for k, v in self.terms:
            if k == field:
                return v
        return None


def parse_selector(text: str) -> _Sel:
    return _Sel(text)


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _bool(v: str) -> bool:
    return not (v == "0" or v.lower() == "false")


def from_query(query: Any) -> ListOptions:
    def first(k: str) -> str | None:
        v = query.get(k)
        if v is None:
            return None
        return v if isinstance(v, str) else (v[0] if v else None)

    def integer(k: str) -> int | None:
        v = first(k)
        if v is None:
            return None
        try:
            return int(v)
        except ValueError:
            raise bad_request(f'strconv.ParseInt: parsing "{v}": invalid syntax') from None

    sie = first("sendInitialEvents")
    return ListOptions(
        label_selector=first("labelSelector") or "",
        field_selector=first("fieldSelector") or "",
        watch=first("watch") is not None and _bool(first("watch") or ""),
        allow_watch_bookmarks=first("allowWatchBookmarks") is not None
        and _bool(first("allowWatchBookmarks") or ""),
        resource_version=first("resourceVersion") or "",
        resource_version_match=first("resourceVersionMatch") or "",
        timeout_seconds=integer("timeoutSeconds"),
        limit=integer("limit") or 0,
        continue_token=first("continue") or "",
        send_initial_events=None if sie is None else _bool(sie),
    )


def default_list_options(o: ListOptions) -> ListOptions:
    if (
        o.watch
        and o.send_initial_events is None
        and not o.resource_version_match
        and o.resource_version in ("", "0")
    ):
        return attrs.evolve(o, send_initial_events=True, resource_version_match="NotOlderThan")
    return o


def validate_list_options(o: ListOptions) -> None:
    from k8swatch import StatusCause, invalid

    if not o.watch and o.resource_version_match and not o.resource_version:
        raise invalid(
            "ListOptions",
            "",
            [
                StatusCause(
                    reason="FieldValueForbidden",
                    message="Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                    field="resourceVersionMatch",
                )
            ],
            group="meta.k8s.io",
        )


class _Aware(WatchBase[Any]):
    def __init__(self, inner: Any, timeout: float | None, done: Any) -> None:
        self.inner = inner
        self.timeout = timeout
        self.done = done

    async def __anext__(self) -> Event[Any]:
        return await self.inner.__anext__()

    async def batches(self) -> AsyncIterator[Sequence[Event[Any]]]:
        async with anyio.create_task_group() as tg:

            async def watcher() -> None:
                with anyio.move_on_after(self.timeout):
                    await self.done.wait()
                self.inner.stop()

            tg.start_soon(watcher)
            async for b in self.inner.batches():
                yield b
            tg.cancel_scope.cancel()

    def stop(self) -> None:
        self.inner.stop()

    @property
    def stopped(self) -> bool:
        return bool(self.inner.stopped)


def stop_aware_watch(watch: Any, *, timeout: float | None = None, done: Any = None) -> _Aware:
    return _Aware(watch, timeout, done)
