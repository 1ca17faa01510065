"""MemoryStorage (the reference storage) and MemoryEventLog (the reference event log)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from k8swatch import (
    Event,
    EventType,
    ListOptions,
    MemoryStorage,
    StatusError,
    Watch,
    service_unavailable,
)
from k8swatch._eventlog import (
    EventLog,
    LogEntry,
    LogSnapshot,
    MemoryEventLog,
    PreconditionFailedError,
    Write,
    WriteOp,
    object_key,
)
from k8swatch._memory import _new_uid
from tests.forwarding_log import ForwardingLog

ADDED, MODIFIED, DELETED = EventType.ADDED, EventType.MODIFIED, EventType.DELETED


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


def rv_of(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def storage(**kwargs: Any) -> MemoryStorage:
    counter = iter(range(1, 1_000_000))
    return MemoryStorage(
        "example.com/v1",
        "Widget",
        uid_factory=lambda: f"uid-{next(counter)}",
        clock=lambda: "2026-01-02T03:04:05Z",
        **kwargs,
    )


async def take(watch: Watch[dict[str, Any]], count: int) -> list[Event[dict[str, Any]]]:
    events: list[Event[dict[str, Any]]] = []
    with anyio.fail_after(30):
        async for event in watch:
            events.append(event)
            if len(events) == count:
                break
    return events


async def status_of(coro: Any) -> dict[str, Any]:
    with pytest.raises(StatusError) as info:
        await coro
    return info.value.status.to_dict()


# -- MemoryEventLog -------------------------------------------------------------------------


async def test_event_log_conditional_writes() -> None:
    log = MemoryEventLog(10)
    assert isinstance(log, EventLog)
    created = await log.append(Write(WriteOp.CREATE, "ns/a", {"metadata": {"name": "a"}}))
    assert created is not None
    assert (created.resource_version, created.type, created.prev_object) == (1, ADDED, None)
    assert created.object["metadata"]["resourceVersion"] == "1"
    with pytest.raises(PreconditionFailedError) as info:
        await log.append(Write(WriteOp.CREATE, "ns/a", {"metadata": {"name": "a"}}))
    assert (info.value.reason, info.value.current_resource_version) == ("AlreadyExists", 1)
    with pytest.raises(PreconditionFailedError) as info:
        await log.append(Write(WriteOp.UPDATE, "ns/a", {"x": 1}, expected_resource_version=7))
    assert info.value.reason == "Conflict"
    with pytest.raises(PreconditionFailedError) as info:
        await log.append(Write(WriteOp.DELETE, "ns/zz"))
    assert info.value.reason == "NotFound"
    updated = await log.append(
        Write(WriteOp.UPDATE, "ns/a", {"metadata": {"name": "a"}, "x": 1}, 1)
    )
    assert updated is not None
    assert updated.type is MODIFIED
    assert updated.prev_object == created.object
    deleted = await log.append(Write(WriteOp.DELETE, "ns/a"))
    assert deleted is not None
    assert deleted.type is DELETED
    assert deleted.object["x"] == 1
    assert deleted.object["metadata"]["resourceVersion"] == "3"
    assert (await log.snapshot()).objects == {}
    assert await log.current_resource_version() == 3
    with pytest.raises(ValueError, match="needs an object"):
        Write(WriteOp.CREATE, "k")


async def test_event_log_put_and_remove_are_idempotent() -> None:
    log = MemoryEventLog()
    first = await log.append(Write(WriteOp.PUT, "k", {"metadata": {"name": "k"}, "v": 1}))
    assert first is not None
    assert first.type is ADDED
    same = {"metadata": {"name": "k", "resourceVersion": "999"}, "v": 1}
    assert await log.append(Write(WriteOp.PUT, "k", same)) is None
    changed = await log.append(Write(WriteOp.PUT, "k", {"metadata": {"name": "k"}, "v": 2}))
    assert changed is not None
    assert changed.type is MODIFIED
    removed = await log.append(Write(WriteOp.REMOVE, "k"))
    assert removed is not None
    assert removed.type is DELETED
    assert await log.append(Write(WriteOp.REMOVE, "k")) is None


async def test_event_log_reads_retention_and_wait() -> None:
    log = MemoryEventLog(3)
    for i in range(5):
        log.apply(Write(WriteOp.CREATE, f"k{i}", {"metadata": {"name": f"k{i}"}}))
    assert await log.oldest_resource_version() == 2
    assert [e.resource_version for e in await log.read_after(2)] == [3, 4, 5]
    assert [e.resource_version for e in await log.read_after(3, limit=1)] == [4]
    assert await log.read_after(5) == []
    with pytest.raises(StatusError) as info:
        await log.read_after(1)
    assert str(info.value) == "too old resource version: 1 (2)"

    async def write_later() -> None:
        await anyio.wait_all_tasks_blocked()
        log.apply(Write(WriteOp.CREATE, "late", {"metadata": {"name": "late"}}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(write_later)
        with anyio.fail_after(30):
            got = await log.read_after(5, wait=True)
    assert [e.key for e in got] == ["late"]


async def test_event_log_close_wakes_readers() -> None:
    log = MemoryEventLog()
    errors: list[BaseException] = []

    async def reader() -> None:
        try:
            await log.read_after(0, wait=True)
        except anyio.ClosedResourceError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        await log.aclose()
    assert len(errors) == 1
    await log.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await log.snapshot()
    with pytest.raises(ValueError, match="window"):
        MemoryEventLog(0)


def test_object_key() -> None:
    assert object_key("ns", "a") == "ns/a"
    assert object_key("", "a") == "a"


# -- MemoryStorage: CRUD ----------------------------------------------------------------------


async def test_create_sets_system_fields_and_copies() -> None:
    store = storage()
    body = widget("a", size=1)
    created = await store.create("ns", body)
    assert created == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": "a",
            "namespace": "ns",
            "uid": "uid-1",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"size": 1},
    }
    assert body == widget("a", size=1)  # the caller's dict is untouched
    body["spec"]["size"] = 99
    created["spec"]["size"] = 98
    fetched = await store.get("ns", "a")
    assert fetched["spec"]["size"] == 1
    fetched["spec"]["size"] = 97
    assert (await store.get("ns", "a"))["spec"]["size"] == 1
    await store.aclose()


async def test_create_errors() -> None:
    store = storage()
    await store.create("ns", widget("a"))
    assert await status_of(store.create("ns", widget("a"))) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'widgets.example.com "a" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "a", "group": "example.com", "kind": "widgets"},
        "code": 409,
    }
    status = await status_of(store.create("ns", {"metadata": {}}))
    assert status["code"] == 422
    assert status["message"] == (
        'Widget.example.com "" is invalid: metadata.name: Required value: name or generateName '
        "is required"
    )
    other_ns = {"metadata": {"name": "b", "namespace": "other"}}
    status = await status_of(store.create("ns", other_ns))
    assert status["code"] == 400
    assert "does not match the namespace" in status["message"]
    with_rv = {"metadata": {"name": "c", "resourceVersion": "5"}}
    status = await status_of(store.create("ns", with_rv))
    assert status["code"] == 400  # issue 15: the caller's mistake, not a 500
    assert status["reason"] == "BadRequest"
    assert "resourceVersion should not be set on objects to be created" in status["message"]


async def test_generate_name() -> None:
    store = storage()
    created = await store.create("ns", {"metadata": {"generateName": "w-"}})
    name = created["metadata"]["name"]
    assert name.startswith("w-")
    assert len(name) == 7
    assert (await store.get("ns", name))["metadata"]["uid"] == "uid-1"


async def test_get_missing_is_404() -> None:
    store = storage()
    assert await status_of(store.get("ns", "nope")) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'widgets.example.com "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "example.com", "kind": "widgets"},
        "code": 404,
    }


async def test_update_optimistic_concurrency() -> None:
    store = storage()
    created = await store.create("ns", widget("a", size=1))
    created["spec"]["size"] = 2
    updated = await store.update("ns", "a", created)
    assert rv_of(updated) == 2
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["uid"] == "uid-1"
    created["spec"]["size"] = 3  # still carries resourceVersion 1
    status = await status_of(store.update("ns", "a", created))
    assert status["code"] == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on widgets.example.com "a": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    # no resourceVersion: unconditional
    unconditional = await store.update("ns", "a", widget("a", size=4))
    assert rv_of(unconditional) == 3
    assert unconditional["metadata"]["creationTimestamp"] == "2026-01-02T03:04:05Z"
    # metadata-only change keeps the generation
    labelled = dict(unconditional, metadata={**unconditional["metadata"], "labels": {"x": "y"}})
    assert (await store.update("ns", "a", labelled))["metadata"]["generation"] == 3


async def test_update_errors() -> None:
    store = storage()
    assert (await status_of(store.update("ns", "a", widget("a"))))["code"] == 404
    await store.create("ns", widget("a"))
    status = await status_of(store.update("ns", "a", widget("b")))
    assert status["code"] == 400
    assert status["message"] == "the name of the object (b) does not match the name on the URL (a)"
    bad_rv = {"metadata": {"name": "a", "resourceVersion": "x1"}}
    assert (await status_of(store.update("ns", "a", bad_rv)))["code"] == 400


async def test_delete_returns_the_last_state() -> None:
    store = storage()
    await store.create("ns", widget("a", size=1))
    deleted = await store.delete("ns", "a")
    assert deleted["spec"] == {"size": 1}
    assert rv_of(deleted) == 2
    assert (await status_of(store.delete("ns", "a")))["code"] == 404
    assert (await status_of(store.get("ns", "a")))["code"] == 404


async def test_cluster_scoped() -> None:
    store = MemoryStorage("v1", "Thing", namespaced=False)
    assert (store.group, store.resource) == ("", "things")
    created = await store.create("ignored", {"metadata": {"name": "t", "namespace": "x"}})
    assert "namespace" not in created["metadata"]
    assert created["apiVersion"] == "v1"
    assert (await store.get("", "t"))["metadata"]["name"] == "t"
    assert [o["metadata"]["name"] for o in (await store.list("any")).items] == ["t"]
    status = await status_of(store.get("", "nope"))
    assert status["message"] == 'things "nope" not found'


async def test_custom_resource_name() -> None:
    store = MemoryStorage("example.com/v1", "Policy", resource="policies")
    assert (await status_of(store.get("ns", "p")))["message"] == (
        'policies.example.com "p" not found'
    )


# -- MemoryStorage: list and watch -----------------------------------------------------------------


async def test_list_and_watch_through_the_storage() -> None:
    store = storage()
    await store.create("ns1", widget("a"))
    await store.create("ns2", widget("b"))
    listed = await store.list("", ListOptions())
    assert listed.resource_version == "2"
    assert [o["metadata"]["name"] for o in listed.items] == ["a", "b"]
    listed.items[0]["spec"]["mutated"] = True
    assert "mutated" not in (await store.get("ns1", "a"))["spec"]
    watch = await store.watch(
        "ns1", ListOptions(watch=True, resource_version=listed.resource_version)
    )
    await store.update("ns2", "b", widget("b", v=1))
    await store.update("ns1", "a", widget("a", v=1))
    (event,) = await take(watch, 1)
    assert (event.type, event.object["metadata"]["name"], rv_of(event.object)) == (MODIFIED, "a", 4)
    watch.stop()


async def test_watch_capability_checks() -> None:
    store = storage()
    with pytest.raises(StatusError) as info:
        await store.watch(
            "", ListOptions(watch=True, resource_version="1", resource_version_match="Exact")
        )
    assert info.value.status.code == 400
    watch = await store.watch(
        "",
        ListOptions(
            watch=True,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
        ),
    )
    (bookmark,) = await take(watch, 1)
    assert bookmark.type is EventType.BOOKMARK
    assert bookmark.object["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    watch.stop()


async def test_list_too_large_resource_version() -> None:
    store = storage(wait_timeout=0.05)
    status = await status_of(store.list("", ListOptions(resource_version="7")))
    assert status["code"] == 504


async def test_aclose_ends_watches_and_is_idempotent() -> None:
    store = storage()
    await store.create("ns", widget("a"))
    watch = await store.watch("", ListOptions(watch=True, resource_version="1"))
    await store.aclose()
    await store.aclose()
    with anyio.fail_after(30):
        assert [e async for e in watch] == []
    assert store.closed
    assert (await status_of(store.get("ns", "a")))["code"] == 503
    assert (await status_of(store.create("ns", widget("b"))))["code"] == 503


# -- several storages on one log (replicas) ------------------------------------------------------


async def test_replicas_on_one_log_see_each_others_writes() -> None:
    log = MemoryEventLog(100)
    async with storage(log=log) as one, storage(log=log) as two:
        watch = await two.watch("", ListOptions(watch=True, resource_version="0"))
        await one.create("ns", widget("a"))
        await two.create("ns", widget("b"))
        await one.update("ns", "b", widget("b", v=1))
        events = await take(watch, 3)
        assert [(e.type, e.object["metadata"]["name"], rv_of(e.object)) for e in events] == [
            (ADDED, "a", 1),
            (ADDED, "b", 2),
            (MODIFIED, "b", 3),
        ]
        watch.stop()
        # resume on one replica from an RV obtained on the other
        resumed = await one.watch("", ListOptions(watch=True, resource_version="1"))
        assert [rv_of(e.object) for e in await take(resumed, 2)] == [2, 3]
        resumed.stop()
        # a conflict made on one replica is seen by the other
        stale = await one.get("ns", "a")
        await two.update("ns", "a", stale)
        assert (await status_of(one.update("ns", "a", stale)))["code"] == 409


async def test_consistent_reads_without_a_follower() -> None:
    log = MemoryEventLog(100)
    one, two = storage(log=log), storage(log=log)
    await one.create("ns", widget("a"))
    assert [o["metadata"]["name"] for o in (await two.list("", ListOptions())).items] == ["a"]
    assert (await two.get("ns", "a"))["metadata"]["name"] == "a"
    await one.create("ns", widget("b"))
    # resourceVersion "0" may be stale; "" is a consistent read
    assert len((await two.list("", ListOptions(resource_version="0"))).items) == 1
    assert len((await two.list("", ListOptions())).items) == 2
    await one.aclose()
    await two.aclose()


async def test_replica_behind_the_log_retention_reloads_and_ends_watches_with_410() -> None:
    log = MemoryEventLog(3)
    one, two = storage(log=log), storage(log=log)
    await two.create("ns", widget("first"))
    watch = await two.watch("", ListOptions(watch=True, resource_version="1"))
    for i in range(10):
        await one.create("ns", widget(f"w{i}"))
    listed = await two.list("", ListOptions())
    assert listed.resource_version == "11"
    assert len(listed.items) == 11
    with anyio.fail_after(30):
        events = [e async for e in watch]
    assert [e.type for e in events] == [EventType.ERROR]
    assert events[0].object["code"] == 410
    assert two.cache.oldest_resource_version == 11
    await one.aclose()
    await two.aclose()


async def test_start_resource_version_makes_old_rvs_expire() -> None:
    store = storage(start_resource_version=1000)
    created = await store.create("ns", widget("a"))
    assert rv_of(created) == 1001
    assert (await store.list("", ListOptions())).resource_version == "1001"
    watch = await store.watch("", ListOptions(watch=True, resource_version="5"))
    with anyio.fail_after(30):
        events = [e async for e in watch]
    assert [e.object["message"] for e in events] == ["too old resource version: 5 (1000)"]
    with pytest.raises(ValueError, match="start"):
        MemoryEventLog(start=-1)
    await store.aclose()


class FlakyLog(ForwardingLog):
    """A MemoryEventLog whose first few waiting reads and snapshots fail with 503."""

    def __init__(self, log: MemoryEventLog, failures: int) -> None:
        super().__init__(log)
        self.failures = failures
        self.snapshot_failures = failures

    async def read_after(
        self, resource_version: int, *, limit: int = 1000, wait: bool = False
    ) -> Sequence[LogEntry]:
        if wait and self.failures:
            self.failures -= 1
            raise service_unavailable("the log is down")
        return await super().read_after(resource_version, limit=limit, wait=wait)

    async def snapshot(self) -> LogSnapshot:
        if self.snapshot_failures:
            self.snapshot_failures -= 1
            raise service_unavailable("the log is down")
        return await super().snapshot()


async def test_follower_retries_while_the_log_is_unavailable() -> None:
    shared = MemoryEventLog(100)
    flaky = FlakyLog(shared, failures=2)
    assert isinstance(flaky, EventLog)
    one = storage(log=shared)
    async with storage(log=flaky) as two:  # starts although the log is down
        await one.create("ns", widget("a"))
        await two.cache.wait_for(1, timeout=30)  # fed by the follower, after its retries
        watch = await two.watch("", ListOptions(watch=True, resource_version="1"))
        await one.create("ns", widget("b"))
        (event,) = await take(watch, 1)
        assert event.object["metadata"]["name"] == "b"
        assert flaky.failures == 0
    await one.aclose()


class CountingLog(ForwardingLog):
    """A MemoryEventLog that counts the reads made by catch-ups (``wait=False``)."""

    def __init__(self) -> None:
        super().__init__(MemoryEventLog(window=1000))
        self.reads = 0

    async def read_after(
        self, resource_version: int, *, limit: int = 1000, wait: bool = False
    ) -> Sequence[LogEntry]:
        if not wait:
            self.reads += 1
        return await super().read_after(resource_version, limit=limit, wait=wait)


async def test_concurrent_writers_share_one_catch_up_read() -> None:
    log = CountingLog()
    assert isinstance(log, EventLog)
    storage = MemoryStorage("example.com/v1", "Widget", log=log)
    await storage.list("default")  # loaded: the writers start on equal terms
    log.reads = 0
    created: list[dict[str, Any]] = []

    async def create(i: int) -> None:
        created.append(await storage.create("default", widget(f"w{i}")))

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(create, i)
    # Every writer reads its own write back (read your writes) ...
    listed = await storage.list("default", ListOptions(resource_version="0"))
    assert len(listed.items) == 50
    assert sorted(rv_of(o) for o in created) == list(range(1, 51))
    # ... but they share the reads: one reader at a time, the others wait for it.
    assert log.reads <= 5, log.reads
    await storage.aclose()


async def next_batch(watch: Watch[dict[str, Any]]) -> list[str]:
    with anyio.fail_after(5):
        async for batch in watch.batches():
            return [e.object["metadata"]["name"] for e in batch]
    raise AssertionError("the watch ended")


async def collect_batch(watch: Watch[dict[str, Any]], into: list[list[str]]) -> None:
    into.append(await next_batch(watch))


async def test_coalesce_holds_wake_ups_not_writes() -> None:
    log = MemoryEventLog(100)
    writer = storage(log=log)
    async with storage(log=log, coalesce=0.5) as replica:
        watch = await replica.watch("", ListOptions(watch=True, resource_version="0"))
        await writer.create("ns", widget("a"))
        started = anyio.current_time()
        assert await next_batch(watch) == ["a"]  # an isolated change: at once
        first = anyio.current_time()
        assert first - started < 0.4
        batches: list[list[str]] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: collect_batch(watch, batches))
            await anyio.sleep(0.05)  # the watcher sleeps
            for name in "bcd":  # within the interval: held, then delivered together
                await writer.create("ns", widget(name))
        assert batches == [["b", "c", "d"]]
        assert anyio.current_time() - first >= 0.45
        # Writes through the replica are not held: it reads its own writes at once.
        begin = anyio.current_time()
        created = await replica.create("ns", widget("e"))
        assert (await replica.get("ns", "e")) == created
        assert anyio.current_time() - begin < 0.4
        assert await next_batch(watch) == ["e"]
        watch.stop()
    await writer.aclose()


async def test_coalesce_never_holds_a_watcher_out_of_the_window() -> None:
    log = MemoryEventLog(100)
    writer = storage(log=log)
    async with storage(log=log, coalesce=1.0, window=10) as replica:
        watch = await replica.watch("", ListOptions(watch=True, resource_version="0"))
        await writer.create("ns", widget("first"))
        assert await next_batch(watch) == ["first"]
        names: list[str] = []

        async def read_all() -> None:
            while len(names) < 30:
                names.extend(await next_batch(watch))  # an ERROR (410) would fail here

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_all)
            await anyio.sleep(0.05)  # the watcher sleeps
            for i in range(30):  # three windows' worth, well within one interval
                await writer.create("ns", widget(f"w{i}"))
        # (the last few, under half a window, arrived when the interval was over)
        assert names == [f"w{i}" for i in range(30)]
        watch.stop()
    await writer.aclose()


async def test_coalesce_needs_a_follower_to_hold() -> None:
    # Without a follower (no ``async with``) nobody would wake held watchers:
    # every change wakes them at once.
    replica = storage(coalesce=60.0)
    watch = await replica.watch("", ListOptions(watch=True, resource_version="0"))
    for name in "ab":
        await replica.create("ns", widget(name))
        with anyio.fail_after(5):
            assert await next_batch(watch) == [name]
    await replica.aclose()


async def test_held_changes_are_delivered_when_the_follower_stops() -> None:
    log = MemoryEventLog(100)
    writer = storage(log=log)
    replica = storage(log=log, coalesce=60.0)
    watch = await replica.watch("", ListOptions(watch=True, resource_version="0"))
    batches: list[list[str]] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as outer, anyio.create_task_group() as tg:
            await tg.start(replica.follow)
            await writer.create("ns", widget("a"))
            assert await next_batch(watch) == ["a"]
            outer.start_soon(lambda: collect_batch(watch, batches))
            await anyio.sleep(0.05)  # the watcher sleeps
            await writer.create("ns", widget("b"))
            await anyio.sleep(0.2)
            assert batches == []  # held
            tg.cancel_scope.cancel()  # the follower stops
    assert batches == [["b"]]
    await replica.aclose()
    await writer.aclose()


async def test_a_follower_in_backoff_holds_nothing() -> None:
    shared = MemoryEventLog(100)
    flaky = FlakyLog(shared, failures=0)
    async with storage(log=flaky, coalesce=60.0) as replica:
        watch = await replica.watch("", ListOptions(watch=True, resource_version="0"))
        await replica.create("ns", widget("a"))
        assert await next_batch(watch) == ["a"]
        flaky.failures = 1_000_000  # the follower now retries with backoff
        await shared.append(Write(WriteOp.CREATE, "ns/x", widget("x")))
        await anyio.sleep(0.2)  # the follower failed and backs off
        # A write through the replica catches up itself and wakes the watchers
        # (with ``coalesce`` of a minute, anything held would time out here).
        await replica.create("ns", widget("b"))
        names: list[str] = []
        while names[-1:] != ["b"]:
            names += await next_batch(watch)
        assert names == ["x", "b"]
        flaky.failures = 0


def test_coalesce_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="coalesce"):
        storage(coalesce=-1)


def test_default_uids_are_random_version_4_uuids() -> None:
    uids = {_new_uid() for _ in range(2000)}
    assert len(uids) == 2000
    for uid in uids:
        parsed = uuid.UUID(uid)
        assert str(parsed) == uid
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


async def test_created_objects_get_a_uuid_by_default() -> None:
    async with MemoryStorage("example.com/v1", "Widget") as store:
        created = await store.create("ns", widget("a"))
    assert uuid.UUID(created["metadata"]["uid"]).version == 4
