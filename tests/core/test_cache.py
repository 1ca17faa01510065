"""WatchCache: list, pagination, watch resume, 410, 504, bookmarks, initial events, selectors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

import anyio
import pytest

from k8swatch import Event, EventType, ListOptions, StatusError, Watch, WatchCache, stop_aware_watch
from k8swatch._cache import INITIAL_EVENTS_ANNOTATION, encode_continue
from k8swatch._eventlog import LogEntry, LogSnapshot, with_resource_version

ADDED, MODIFIED, DELETED = EventType.ADDED, EventType.MODIFIED, EventType.DELETED
BOOKMARK, ERROR = EventType.BOOKMARK, EventType.ERROR

NOT_OLDER = "NotOlderThan"


def widget(name: str, namespace: str = "ns", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta}


def make_cache(**kwargs: Any) -> WatchCache[dict[str, Any]]:
    return WatchCache("example.com/v1", "Widget", **kwargs)


def rv_of(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def summary(events: Sequence[Event[dict[str, Any]]]) -> list[tuple[str, str, int]]:
    out = []
    for e in events:
        if e.type in (BOOKMARK, ERROR):
            out.append((e.type.value, "", 0))
        else:
            out.append((e.type.value, e.object["metadata"]["name"], rv_of(e.object)))
    return out


async def take(watch: Watch[dict[str, Any]], count: int) -> list[Event[dict[str, Any]]]:
    events: list[Event[dict[str, Any]]] = []
    with anyio.fail_after(30):
        async for event in watch:
            events.append(event)
            if len(events) == count:
                break
    return events


async def drain(watch: Watch[dict[str, Any]]) -> list[Event[dict[str, Any]]]:
    with anyio.fail_after(30):
        return [event async for event in watch]


@contextlib.asynccontextmanager
async def draining(
    watch: Watch[dict[str, Any]],
) -> AsyncGenerator[list[list[Event[dict[str, Any]]]], None]:
    """Drain *watch* in a task; the body runs once that task waits, and the
    task's result (one list of events) is in the yielded list afterwards."""
    result: list[list[Event[dict[str, Any]]]] = []

    async def consume() -> None:
        result.append(await drain(watch))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        yield result


def watch_opts(**kwargs: Any) -> ListOptions:
    return ListOptions(watch=True, **kwargs)


# -- apply / ingest -------------------------------------------------------------------


def test_apply_numbers_changes_and_copies_metadata() -> None:
    cache = make_cache()
    original = widget("a")
    event = cache.apply(ADDED, original)
    assert event.type is ADDED
    assert rv_of(event.object) == 1
    assert "resourceVersion" not in original["metadata"]
    assert cache.apply(MODIFIED, widget("a", x="1")).object["metadata"]["resourceVersion"] == "2"
    deleted = cache.apply(DELETED, widget("a", x="1"))
    assert rv_of(deleted.object) == 3
    assert deleted.object["metadata"]["labels"] == {"x": "1"}
    assert cache.get("ns", "a") is None
    assert cache.resource_version == 3
    assert len(cache) == 0


def test_apply_rejects_bad_input() -> None:
    cache = make_cache()
    with pytest.raises(ValueError, match="ADDED, MODIFIED or DELETED"):
        cache.apply(BOOKMARK, widget("a"))
    with pytest.raises(ValueError, match=r"metadata\.name"):
        cache.apply(ADDED, {"metadata": {}})
    with pytest.raises(ValueError, match="window must be"):
        make_cache(window=0)
    cache.close()
    with pytest.raises(RuntimeError, match="closed"):
        cache.apply(ADDED, widget("a"))
    with pytest.raises(RuntimeError, match="closed"):
        cache.ingest([])


def test_ingest_skips_entries_already_seen() -> None:
    cache = make_cache()
    entries = [
        LogEntry(rv, ADDED, f"ns/w{rv}", with_resource_version(widget(f"w{rv}"), rv))
        for rv in (3, 7, 9)
    ]
    assert cache.ingest(entries[:2]) == 2
    assert cache.ingest(entries) == 1
    assert cache.resource_version == 9
    assert cache.get("ns", "w7") is not None


async def test_ingest_without_wake_leaves_sleepers_asleep_until_wake() -> None:
    cache = make_cache()
    watch = await cache.watch("", watch_opts(resource_version="0"))
    got: list[list[str]] = []

    async def sleeper() -> None:
        async for batch in watch.batches():
            got.append([e.object["metadata"]["name"] for e in batch])
            return

    entries = [
        LogEntry(rv, ADDED, f"ns/w{rv}", with_resource_version(widget(f"w{rv}"), rv))
        for rv in (1, 2)
    ]
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper)
            await anyio.sleep(0.05)  # asleep
            assert cache.ingest(entries[:1], wake=False) == 1
            assert cache.ingest(entries[1:], wake=False) == 1
            await anyio.sleep(0.1)
            assert got == []
            cache.wake()
    assert got == [["w1", "w2"]]
    # a watcher that is not asleep takes what the cache holds, woken or not
    cache.ingest([LogEntry(3, ADDED, "ns/w3", with_resource_version(widget("w3"), 3))], wake=False)
    with anyio.fail_after(5):
        async for batch in watch.batches():
            assert [e.object["metadata"]["name"] for e in batch] == ["w3"]
            break
    watch.stop()


# -- list -----------------------------------------------------------------------------


async def test_list_filters_and_reports_the_snapshot_rv() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a", "ns1", app="x"))
    cache.apply(ADDED, widget("b", "ns2", app="y"))
    cache.apply(ADDED, widget("c", "ns1", app="y"))
    result = await cache.list("")
    assert [o["metadata"]["name"] for o in result.items] == ["a", "c", "b"]
    assert result.resource_version == "3"
    assert result.continue_token == ""
    result = await cache.list("ns1")
    assert [o["metadata"]["name"] for o in result.items] == ["a", "c"]
    result = await cache.list("", ListOptions(label_selector="app=y"))
    assert [o["metadata"]["name"] for o in result.items] == ["c", "b"]
    result = await cache.list("", ListOptions(field_selector="metadata.name=b"))
    assert [o["metadata"]["name"] for o in result.items] == ["b"]
    with pytest.raises(StatusError) as info:
        await cache.list("", ListOptions(field_selector="spec.x=1"))
    assert str(info.value) == "field label not supported: spec.x"


async def test_list_exact_resource_version_serves_the_past() -> None:
    cache = make_cache(window=3)
    cache.apply(ADDED, widget("a"))
    cache.apply(ADDED, widget("b"))
    cache.apply(DELETED, widget("a"))
    result = await cache.list("", ListOptions(resource_version="2", resource_version_match="Exact"))
    assert [o["metadata"]["name"] for o in result.items] == ["a", "b"]
    assert result.resource_version == "2"
    # legacy: a resourceVersion with a limit is exact too
    result = await cache.list("", ListOptions(resource_version="1", limit=5))
    assert [o["metadata"]["name"] for o in result.items] == ["a"]
    # not older than: the current state
    result = await cache.list("", ListOptions(resource_version="1"))
    assert [o["metadata"]["name"] for o in result.items] == ["b"]
    assert result.resource_version == "3"
    for _ in range(3):
        cache.apply(MODIFIED, widget("b"))
    with pytest.raises(StatusError) as info:
        await cache.list("", ListOptions(resource_version="1", resource_version_match="Exact"))
    assert info.value.status.code == 410
    assert str(info.value) == "too old resource version: 1 (3)"


async def test_list_too_large_resource_version_times_out() -> None:
    cache = make_cache(wait_timeout=0.05)
    cache.apply(ADDED, widget("a"))
    with pytest.raises(StatusError) as info:
        await cache.list("", ListOptions(resource_version="5", resource_version_match=NOT_OLDER))
    status = info.value.status.to_dict()
    assert status["code"] == 504
    assert status["reason"] == "Timeout"
    assert status["message"] == "Timeout: Too large resource version: 5, current: 1"
    assert status["details"] == {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    }


async def test_list_waits_for_a_newer_resource_version() -> None:
    cache = make_cache(wait_timeout=30)
    cache.apply(ADDED, widget("a"))

    async def write() -> None:
        await anyio.wait_all_tasks_blocked()
        cache.apply(ADDED, widget("b"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        with anyio.fail_after(30):
            result = await cache.list("", ListOptions(resource_version="2"))
    assert result.resource_version == "2"
    assert len(result.items) == 2


async def test_list_bad_resource_version() -> None:
    cache = make_cache()
    with pytest.raises(StatusError) as info:
        await cache.list("", ListOptions(resource_version="abc"))
    assert info.value.status.code == 400
    assert str(info.value) == (
        'invalid resource version: resourceVersion: Invalid value: "abc": '
        'strconv.ParseUint: parsing "abc": invalid syntax'
    )


async def test_pagination_is_consistent_across_pages() -> None:
    cache = make_cache()
    for i in range(25):
        cache.apply(ADDED, widget(f"w{i:02d}"))
    first = await cache.list("", ListOptions(limit=10))
    assert len(first.items) == 10
    assert first.remaining_item_count == 15
    assert first.continue_token
    # writes between pages do not show up: every page is served at the first page's RV
    cache.apply(ADDED, widget("w10a"))
    cache.apply(DELETED, widget("w15"))
    second = await cache.list("", ListOptions(limit=10, continue_token=first.continue_token))
    third = await cache.list("", ListOptions(limit=10, continue_token=second.continue_token))
    assert second.resource_version == third.resource_version == "25"
    names = [o["metadata"]["name"] for page in (first, second, third) for o in page.items]
    assert names == [f"w{i:02d}" for i in range(25)]
    assert third.continue_token == ""
    assert third.remaining_item_count is None


async def test_pagination_with_selectors() -> None:
    cache = make_cache()
    for i in range(10):
        cache.apply(ADDED, widget(f"w{i}", parity=str(i % 2)))
    page = await cache.list("", ListOptions(limit=3, label_selector="parity=1"))
    names = [o["metadata"]["name"] for o in page.items]
    while page.continue_token:
        page = await cache.list(
            "", ListOptions(limit=3, label_selector="parity=1", continue_token=page.continue_token)
        )
        assert page.remaining_item_count is None
        names += [o["metadata"]["name"] for o in page.items]
    assert names == ["w1", "w3", "w5", "w7", "w9"]
    # exactly `limit` matches left: no continue token
    page = await cache.list("", ListOptions(limit=5, label_selector="parity=0"))
    assert len(page.items) == 5
    assert page.continue_token == ""


async def test_pagination_in_one_namespace() -> None:
    cache = make_cache()
    for ns in ("a", "b", "c"):
        for i in range(4):
            cache.apply(ADDED, widget(f"w{i}", ns))
    page = await cache.list("b", ListOptions(limit=3))
    assert [o["metadata"]["namespace"] for o in page.items] == ["b"] * 3
    assert page.remaining_item_count == 1
    page = await cache.list("b", ListOptions(limit=3, continue_token=page.continue_token))
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page.items] == [
        ("b", "w3")
    ]
    assert page.continue_token == ""


async def test_expired_and_bad_continue_tokens() -> None:
    cache = make_cache(window=2)
    for i in range(5):
        cache.apply(ADDED, widget(f"w{i}"))
    page = await cache.list("", ListOptions(limit=2))
    for i in range(3):
        cache.apply(MODIFIED, widget(f"w{i}"))
    with pytest.raises(StatusError) as info:
        await cache.list("", ListOptions(limit=2, continue_token=page.continue_token))
    assert info.value.status.code == 410
    assert info.value.status.reason == "Expired"
    assert "continue parameter is too old" in str(info.value)
    with pytest.raises(StatusError) as info:
        await cache.list("", ListOptions(continue_token="garbage"))
    assert info.value.status.code == 400
    assert str(info.value).startswith("invalid continue token: ")
    future = encode_continue(99, "ns/a\x00")
    with pytest.raises(StatusError) as info:
        await cache.list("", ListOptions(continue_token=future))
    assert info.value.status.code == 410
    fresh = await cache.list("", ListOptions(limit=2))
    with pytest.raises(StatusError) as info:
        await cache.list("", ListOptions(resource_version="3", continue_token=fresh.continue_token))
    assert str(info.value) == "specifying resource version is not allowed when using continue"


# -- watch: resourceVersion ---------------------------------------------------------------


async def test_watch_from_zero_sends_current_state_then_live() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("b"))
    cache.apply(ADDED, widget("a"))
    cache.apply(MODIFIED, widget("b", x="1"))
    watch = await cache.watch("", watch_opts(resource_version="0"))
    cache.apply(DELETED, widget("a"))
    cache.close()
    events = await drain(watch)
    assert summary(events) == [("ADDED", "a", 2), ("ADDED", "b", 3), ("DELETED", "a", 4)]
    assert watch.stopped


async def test_watch_unset_resource_version_is_most_recent() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    watch = await cache.watch("", watch_opts())
    cache.apply(ADDED, widget("b"))
    assert summary(await take(watch, 2)) == [("ADDED", "a", 1), ("ADDED", "b", 2)]
    watch.stop()


async def test_resume_inside_the_window_replays_exactly_the_rest() -> None:
    cache = make_cache(window=10)
    for i in range(8):
        cache.apply(ADDED, widget(f"w{i}"))
    watch = await cache.watch("", watch_opts(resource_version="5"))
    cache.apply(ADDED, widget("late"))
    cache.close()
    assert summary(await drain(watch)) == [
        ("ADDED", "w5", 6),
        ("ADDED", "w6", 7),
        ("ADDED", "w7", 8),
        ("ADDED", "late", 9),
    ]


async def test_resume_from_current_rv_sends_only_new_events() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    watch = await cache.watch("", watch_opts(resource_version="1"))
    cache.apply(ADDED, widget("b"))
    cache.close()
    assert summary(await drain(watch)) == [("ADDED", "b", 2)]


async def test_resume_too_old_is_one_410_error() -> None:
    cache = make_cache(window=3)
    for i in range(10):
        cache.apply(ADDED, widget(f"w{i}"))
    watch = await cache.watch("", watch_opts(resource_version="5"))
    events = await drain(watch)
    assert len(events) == 1
    assert events[0].type is ERROR
    assert events[0].object == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "too old resource version: 5 (7)",
        "reason": "Expired",
        "code": 410,
    }
    assert cache.oldest_resource_version == 7
    # the oldest resumable RV itself is fine
    ok = await cache.watch("", watch_opts(resource_version="7"))
    assert [rv_of(e.object) for e in await take(ok, 3)] == [8, 9, 10]
    ok.stop()


async def test_resume_from_the_future_starts_later() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    watch = await cache.watch("", watch_opts(resource_version="3"))
    for name in ("b", "c", "d"):
        cache.apply(ADDED, widget(name))
    cache.close()
    assert summary(await drain(watch)) == [("ADDED", "d", 4)]


async def test_watch_bad_resource_version_is_422() -> None:
    cache = make_cache()
    with pytest.raises(StatusError) as info:
        await cache.watch("", watch_opts(resource_version="abc"))
    assert info.value.status.code == 422
    assert str(info.value) == (
        'widgets.example.com "" is invalid: resourceVersion: Invalid value: "abc": '
        'strconv.ParseUint: parsing "abc": invalid syntax'
    )


async def test_writes_racing_the_start_are_neither_lost_nor_repeated() -> None:
    cache = make_cache(window=100_000)
    for i in range(50):
        cache.apply(ADDED, widget(f"w{i}"))
    total = 500

    async def writer() -> None:
        for i in range(total):
            cache.apply(MODIFIED, widget(f"w{i % 50}"))
            if i % 7 == 0:
                await anyio.lowlevel.checkpoint()

    watchers: list[tuple[int, Watch[dict[str, Any]]]] = []

    async def starter() -> None:
        for _ in range(20):
            rv = cache.resource_version
            watchers.append((rv, await cache.watch("", watch_opts(resource_version=str(rv)))))
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        tg.start_soon(starter)
    cache.close()
    final = cache.resource_version
    for start, watch in watchers:
        rvs = [rv_of(e.object) for e in await drain(watch)]
        assert rvs == list(range(start + 1, final + 1))


# -- watch: sendInitialEvents, bookmarks, timeout ---------------------------------------------


async def test_send_initial_events_ends_with_an_annotated_bookmark() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("b"))
    cache.apply(ADDED, widget("a"))
    opts = watch_opts(
        send_initial_events=True, resource_version_match=NOT_OLDER, allow_watch_bookmarks=True
    )
    watch = await cache.watch("", opts)
    cache.apply(MODIFIED, widget("a"))
    events = await take(watch, 4)
    watch.stop()
    assert summary(events) == [
        ("ADDED", "a", 2),
        ("ADDED", "b", 1),
        ("BOOKMARK", "", 0),
        ("MODIFIED", "a", 3),
    ]
    assert events[2].object == {
        "kind": "Widget",
        "apiVersion": "example.com/v1",
        "metadata": {"resourceVersion": "2", "annotations": {INITIAL_EVENTS_ANNOTATION: "true"}},
    }


async def test_initial_events_bookmark_also_without_objects() -> None:
    cache = make_cache()
    opts = watch_opts(
        resource_version="0",
        send_initial_events=True,
        resource_version_match=NOT_OLDER,
        allow_watch_bookmarks=True,
    )
    watch = await cache.watch("", opts)
    (event,) = await take(watch, 1)
    watch.stop()
    assert event.type is BOOKMARK
    assert event.object["metadata"]["annotations"] == {INITIAL_EVENTS_ANNOTATION: "true"}


async def test_no_initial_events_bookmark_without_allow_watch_bookmarks() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    watch = await cache.watch(
        "", watch_opts(send_initial_events=True, resource_version_match=NOT_OLDER)
    )
    cache.apply(ADDED, widget("b"))
    cache.close()
    assert summary(await drain(watch)) == [("ADDED", "a", 1), ("ADDED", "b", 2)]


async def test_send_initial_events_false_starts_now() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    for rv in ("", "0"):
        watch = await cache.watch(
            "",
            watch_opts(
                resource_version=rv, send_initial_events=False, resource_version_match=NOT_OLDER
            ),
        )
        cache.apply(MODIFIED, widget("a"))
        (event,) = await take(watch, 1)
        assert event.type is MODIFIED
        assert rv_of(event.object) == cache.resource_version
        watch.stop()
    # with an RV: legacy resume
    watch = await cache.watch(
        "",
        watch_opts(
            resource_version="1", send_initial_events=False, resource_version_match=NOT_OLDER
        ),
    )
    assert [rv_of(e.object) for e in await take(watch, 2)] == [2, 3]
    watch.stop()


async def test_send_initial_events_waits_for_a_newer_rv() -> None:
    cache = make_cache(wait_timeout=30)
    cache.apply(ADDED, widget("a"))
    opts = watch_opts(
        resource_version="2", send_initial_events=True, resource_version_match=NOT_OLDER
    )
    watch = await cache.watch("", opts)

    async def write() -> None:
        await anyio.wait_all_tasks_blocked()
        cache.apply(ADDED, widget("b"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        events = await take(watch, 2)
    watch.stop()
    assert summary(events) == [("ADDED", "a", 1), ("ADDED", "b", 2)]


async def test_send_initial_events_too_large_rv_is_one_504_error() -> None:
    cache = make_cache(wait_timeout=0.05)
    cache.apply(ADDED, widget("a"))
    opts = watch_opts(
        resource_version="9", send_initial_events=True, resource_version_match=NOT_OLDER
    )
    events = await drain(await cache.watch("", opts))
    assert len(events) == 1
    assert events[0].type is ERROR
    assert events[0].object["code"] == 504
    assert events[0].object["message"] == "Timeout: Too large resource version: 9, current: 1"


async def test_min_resource_version_is_waited_for() -> None:
    cache = make_cache(wait_timeout=0.05)
    watch = await cache.watch("", watch_opts(), min_resource_version=4)
    (event,) = await drain(watch)
    assert event.object["message"] == "Timeout: Too large resource version: 4, current: 0"


async def test_bookmarks_on_an_idle_watch() -> None:
    cache = make_cache(bookmark_interval=0.01)
    cache.apply(ADDED, widget("a"))
    watch = await cache.watch("", watch_opts(resource_version="1", allow_watch_bookmarks=True))
    events = await take(watch, 2)
    assert [e.type for e in events] == [BOOKMARK, BOOKMARK]
    assert events[0].object == {
        "kind": "Widget",
        "apiVersion": "example.com/v1",
        "metadata": {"resourceVersion": "1"},
    }
    cache.apply(ADDED, widget("b"))
    events = await take(watch, 2)
    assert events[0].type is ADDED
    assert events[1].object["metadata"]["resourceVersion"] == "2"
    watch.stop()


async def test_bookmark_rv_covers_filtered_events() -> None:
    cache = make_cache(bookmark_interval=0.01)
    watch = await cache.watch(
        "", watch_opts(resource_version="0", label_selector="x=1", allow_watch_bookmarks=True)
    )
    cache.apply(ADDED, widget("a", x="2"))
    event = (await take(watch, 1))[0]
    assert event.type is BOOKMARK
    assert event.object["metadata"]["resourceVersion"] == "1"
    watch.stop()


async def test_no_bookmarks_unless_asked() -> None:
    cache = make_cache(bookmark_interval=0.001)
    watch = await cache.watch("", watch_opts(resource_version="0", timeout_seconds=1))
    assert await drain(watch) == []


async def test_timeout_seconds_ends_the_watch_cleanly() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    watch = await cache.watch("", watch_opts(resource_version="1", timeout_seconds=1))
    start = anyio.current_time()
    assert await drain(watch) == []
    assert anyio.current_time() - start >= 0.9
    assert watch.stopped


async def test_bookmark_before_the_timeout() -> None:
    cache = make_cache(bookmark_interval=3600)
    watch = await cache.watch(
        "", watch_opts(resource_version="0", timeout_seconds=3, allow_watch_bookmarks=True)
    )
    events = await drain(watch)
    assert [e.type for e in events] == [BOOKMARK]


# -- watch: selectors, namespaces ------------------------------------------------------------


async def test_selector_transitions() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a", app="web"))
    cache.apply(ADDED, widget("b", app="db"))
    watch = await cache.watch("", watch_opts(resource_version="0", label_selector="app=web"))
    cache.apply(MODIFIED, widget("b", app="web"))  # starts matching -> ADDED
    cache.apply(MODIFIED, widget("a", app="web", v="2"))  # still matching -> MODIFIED
    cache.apply(MODIFIED, widget("a", app="db"))  # stops matching -> DELETED (old object)
    cache.apply(DELETED, widget("a", app="db"))  # not matching -> nothing
    cache.apply(DELETED, widget("b", app="web"))  # matching -> DELETED
    cache.close()
    events = await drain(watch)
    assert summary(events) == [
        ("ADDED", "a", 1),
        ("ADDED", "b", 3),
        ("MODIFIED", "a", 4),
        ("DELETED", "a", 5),
        ("DELETED", "b", 7),
    ]
    # the DELETED of a transition carries the old object with the event's RV
    assert events[3].object["metadata"]["labels"] == {"app": "web", "v": "2"}


async def test_selector_transitions_on_replay() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a", app="db"))
    cache.apply(MODIFIED, widget("a", app="web"))
    cache.apply(MODIFIED, widget("a", app="db"))
    watch = await cache.watch("", watch_opts(resource_version="1", label_selector="app=web"))
    cache.close()
    assert summary(await drain(watch)) == [("ADDED", "a", 2), ("DELETED", "a", 3)]


async def test_namespace_scoping() -> None:
    cache = make_cache()
    watch = await cache.watch("ns1", watch_opts(resource_version="0"))
    cache.apply(ADDED, widget("a", "ns1"))
    cache.apply(ADDED, widget("b", "ns2"))
    cache.apply(ADDED, widget("c", "ns1"))
    cache.close()
    assert summary(await drain(watch)) == [("ADDED", "a", 1), ("ADDED", "c", 3)]


async def test_field_selector_on_name() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    cache.apply(ADDED, widget("b"))
    watch = await cache.watch("", watch_opts(field_selector="metadata.name=b"))
    cache.close()
    assert summary(await drain(watch)) == [("ADDED", "b", 2)]


# -- slow watchers, stop, close, reset, batches ------------------------------------------------


async def test_slow_watcher_ends_with_410_after_what_it_could_get() -> None:
    cache = make_cache(window=5)
    watch = await cache.watch("", watch_opts(resource_version="0"))
    cache.apply(ADDED, widget("first"))
    (first,) = await take(watch, 1)
    for i in range(20):  # the writer never waits for the watcher
        cache.apply(ADDED, widget(f"w{i}"))
    events = await drain(watch)
    assert first.type is ADDED
    assert len(events) == 1
    assert events[0].type is ERROR
    assert events[0].object["code"] == 410
    assert events[0].object["message"] == "too old resource version: 1 (16)"


async def test_stop_wakes_a_waiting_watcher_and_is_idempotent() -> None:
    cache = make_cache()
    watch = await cache.watch("", watch_opts(resource_version="0"))
    async with draining(watch) as result:
        watch.stop()
        watch.stop()
    assert result == [[]]
    assert watch.stopped
    assert not cache._next_change.statistics().tasks
    assert not cache._next_change.statistics().scopes
    cache.apply(ADDED, widget("a"))
    assert await drain(watch) == []


async def test_stop_before_reading_and_async_with() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    async with await cache.watch("", watch_opts(resource_version="0")) as watch:
        pass
    assert watch.stopped
    assert await drain(watch) == []


async def test_close_ends_watchers_after_pending_events() -> None:
    cache = make_cache()
    watch = await cache.watch("", watch_opts(resource_version="0"))
    async with draining(watch) as result:
        cache.apply(ADDED, widget("a"))
        cache.close()
    assert summary(result[0]) == [("ADDED", "a", 1)]
    assert cache.closed


async def test_reset_ends_open_watches_with_410() -> None:
    cache = make_cache()
    cache.apply(ADDED, widget("a"))
    watch = await cache.watch("", watch_opts(resource_version="1"))
    cache.reset(LogSnapshot(10, {"ns/z": with_resource_version(widget("z"), 9)}))
    events = await drain(watch)
    assert [e.object["code"] for e in events] == [410]
    assert events[0].object["message"] == "too old resource version: 1 (10)"
    result = await cache.list("")
    assert result.resource_version == "10"
    assert [o["metadata"]["name"] for o in result.items] == ["z"]


async def test_batches_take_everything_available() -> None:
    cache = make_cache()
    for i in range(5):
        cache.apply(ADDED, widget(f"w{i}"))
    watch = await cache.watch("", watch_opts(resource_version="2"))
    batches = watch.batches()
    with anyio.fail_after(30):
        first = await batches.__anext__()
    assert [rv_of(e.object) for e in first] == [3, 4, 5]
    cache.apply(ADDED, widget("x"))
    cache.apply(ADDED, widget("y"))
    with anyio.fail_after(30):
        second = await batches.__anext__()
    assert [rv_of(e.object) for e in second] == [6, 7]
    cache.close()
    with pytest.raises(StopAsyncIteration):
        await batches.__anext__()


async def test_unfiltered_watchers_share_event_objects() -> None:
    cache = make_cache()
    one = await cache.watch("", watch_opts(resource_version="0"))
    two = await cache.watch("", watch_opts(resource_version="0"))
    cache.apply(ADDED, widget("a"))
    (a,) = await take(one, 1)
    (b,) = await take(two, 1)
    assert a is b


async def test_many_watchers_one_wakeup_each() -> None:
    cache = make_cache()
    watches = [await cache.watch("", watch_opts(resource_version="0")) for _ in range(50)]
    seen: list[int] = []

    async def consume(watch: Watch[dict[str, Any]]) -> None:
        seen.append(len(await drain(watch)))

    async with anyio.create_task_group() as tg:
        for watch in watches:
            tg.start_soon(consume, watch)
        await anyio.wait_all_tasks_blocked()
        assert cache._next_change.statistics().tasks == 50  # all on the one shared wake-up
        for i in range(10):
            cache.apply(ADDED, widget(f"w{i}"))
        assert not cache._next_change.statistics().tasks
        cache.close()
    assert seen == [10] * 50


async def test_a_long_replay_comes_in_bounded_batches() -> None:
    cache = make_cache(window=5000)
    for i in range(3000):
        cache.apply(ADDED, widget(f"w{i}"))
    watch = await cache.watch("", watch_opts(resource_version="1"))
    sizes: list[int] = []
    with anyio.fail_after(30):
        batch_iterator = cast("AsyncGenerator[Sequence[Event[Any]], None]", watch.batches())
        async with contextlib.aclosing(batch_iterator) as batches:
            async for batch in batches:
                sizes.append(len(batch))
                if sum(sizes) == 2999:
                    break
    watch.stop()
    assert max(sizes) <= 1024
    assert sum(sizes) == 2999


# -- the fast path under stop_aware_watch (what the HTTP layer uses) -----------------


async def test_stop_aware_wait_on_a_cache_watch_needs_no_helper_task() -> None:
    cache = make_cache()
    done = anyio.Event()
    watch = stop_aware_watch(await cache.watch("", watch_opts(resource_version="0")), done=done)
    tasks: list[int] = []
    got: list[Event[dict[str, Any]]] = []

    async def consume() -> None:
        async for batch in watch.batches():
            got.extend(batch)

    async with anyio.create_task_group() as tg:
        before = len(anyio.get_running_tasks())
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        tasks.append(len(anyio.get_running_tasks()) - before)
        assert cache._next_change.statistics().scopes == 1  # waiting by parking its cancel scope
        cache.apply(ADDED, widget("a"))
        await anyio.wait_all_tasks_blocked()
        tasks.append(len(anyio.get_running_tasks()) - before)
        done.set()
    assert tasks == [1, 1]  # only the consumer itself: no task per wait
    assert [e.object["metadata"]["name"] for e in got] == ["a"]
    assert watch.stopped
    assert watch.inner.stopped
    assert not cache._next_change.statistics().scopes


async def test_stop_aware_cache_watch_delivers_bookmarks_while_parked() -> None:
    cache = make_cache(bookmark_interval=0.01)
    cache.apply(ADDED, widget("a"))
    inner = await cache.watch("", watch_opts(resource_version="1", allow_watch_bookmarks=True))
    watch = stop_aware_watch(inner, done=anyio.Event())
    events = await take(watch, 2)
    assert [e.type for e in events] == [BOOKMARK, BOOKMARK]
    cache.apply(ADDED, widget("b"))
    (event,) = await take(watch, 1)
    assert (event.type, rv_of(event.object)) == (ADDED, 2)
    watch.stop()
    assert inner.stopped


async def test_stop_aware_cache_watch_ends_at_timeout_seconds() -> None:
    cache = make_cache()
    inner = await cache.watch("", watch_opts(resource_version="0", timeout_seconds=1))
    watch = stop_aware_watch(inner, done=anyio.Event())
    start = anyio.current_time()
    assert await drain(watch) == []
    assert anyio.current_time() - start >= 0.9
    assert watch.stopped
    assert inner.stopped


async def test_stop_aware_cache_watch_waits_for_a_future_rv_then_504() -> None:
    cache = make_cache(wait_timeout=0.05)
    inner = await cache.watch("", watch_opts(send_initial_events=True, resource_version="5",
                                             resource_version_match="NotOlderThan",
                                             allow_watch_bookmarks=True))  # fmt: skip
    (event,) = await drain(stop_aware_watch(inner, done=anyio.Event()))
    assert event.type is ERROR
    assert event.object["code"] == 504


async def test_stop_of_a_parked_cache_watch_ends_the_wait() -> None:
    cache = make_cache()
    inner = await cache.watch("", watch_opts(resource_version="0"))
    watch = stop_aware_watch(inner, done=anyio.Event())
    async with draining(watch) as result:
        inner.stop()  # e.g. the storage shutting the watch down
    assert result == [[]]
    assert not cache._next_change.statistics().scopes


async def test_close_wakes_parked_and_waiting_watchers() -> None:
    cache = make_cache()
    parked = stop_aware_watch(await cache.watch("", watch_opts()), done=anyio.Event())
    plain = await cache.watch("", watch_opts())
    cache.apply(ADDED, widget("a"))
    results: dict[str, list[Event[dict[str, Any]]]] = {}

    async def consume(name: str, watch: Watch[dict[str, Any]]) -> None:
        results[name] = await drain(watch)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, "parked", parked)
        tg.start_soon(consume, "plain", plain)
        await anyio.wait_all_tasks_blocked()
        cache.apply(ADDED, widget("b"))
        cache.close()
    assert {k: [e.object["metadata"]["name"] for e in v] for k, v in results.items()} == {
        "parked": ["a", "b"],
        "plain": ["a", "b"],
    }
    assert (cache._next_change.statistics().tasks, cache._next_change.statistics().scopes) == (0, 0)


async def test_parked_watch_for_a_future_rv_sleeps_until_the_cache_moves() -> None:
    cache = make_cache(wait_timeout=30)
    opts = watch_opts(
        send_initial_events=True,
        resource_version="2",
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
    )
    watch = stop_aware_watch(await cache.watch("", opts), done=anyio.Event())
    got: list[Event[dict[str, Any]]] = []

    async def consume() -> None:
        got.extend(await take(watch, 3))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        with anyio.fail_after(5):  # a busy-polling watcher would never block
            await anyio.wait_all_tasks_blocked()
        cache.apply(ADDED, widget("a"))
        with anyio.fail_after(5):
            await anyio.wait_all_tasks_blocked()
        assert not got
        cache.apply(ADDED, widget("b"))
    assert [e.type for e in got] == [ADDED, ADDED, BOOKMARK]


async def test_stop_aware_without_done_waits_on_the_cache_itself() -> None:
    cache = make_cache(bookmark_interval=0.01)
    cache.apply(ADDED, widget("a"))
    inner = await cache.watch("", watch_opts(resource_version="1", allow_watch_bookmarks=True))
    watch = stop_aware_watch(inner, timeout=3600)
    events = await take(watch, 2)  # its own timers still fire inside the wrapper's wait
    assert [e.type for e in events] == [BOOKMARK, BOOKMARK]
    async with draining(watch) as result:
        assert (
            not cache._next_change.statistics().scopes
        )  # no scope parked: it waits on the shared wake-up
        cache.apply(ADDED, widget("b"))
        await anyio.wait_all_tasks_blocked()
        watch.stop()
    assert [e.object["metadata"]["name"] for e in result[0] if e.type is ADDED] == ["b"]
    assert inner.stopped


async def test_stop_aware_timeout_ends_an_idle_cache_watch_without_done() -> None:
    cache = make_cache()
    inner = await cache.watch("", watch_opts(resource_version="0"))
    watch = stop_aware_watch(inner, timeout=0.2)
    start = anyio.current_time()
    assert await drain(watch) == []
    assert anyio.current_time() - start >= 0.2
    assert inner.stopped
