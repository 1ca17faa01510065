"""Redis losing data (restart without persistence, FLUSHALL, a stale copy) never rewinds RVs.

Each case runs two replicas (two MemoryStorages, each on its own backend) on a
real redis-server, writes on both, opens a watch on each, applies the fault
and measures: acknowledged writes lost, RVs handed out twice, watchers ended
with 410, and what a resume from before the fault gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from k8swatch import EventType, ListOptions, MemoryStorage, StatusError, Watch
from k8swatch.redis import open_redis_backend
from k8swatch.redis._client import create_client

from .conftest import RedisServer

pytestmark = pytest.mark.redis

Obj = dict[str, Any]


@asynccontextmanager
async def replica(url: str) -> AsyncIterator[tuple[MemoryStorage, MemoryStorage]]:
    """One replica's widgets and gadgets: two resources sharing one RV counter."""
    async with open_redis_backend(url, prefix="p") as backend:
        logs = [backend.log_for(r, group="example.com") for r in ("widgets", "gadgets")]
        async with (
            MemoryStorage("example.com/v1", "Widget", log=logs[0]) as widgets,
            MemoryStorage("example.com/v1", "Gadget", log=logs[1]) as gadgets,
        ):
            yield widgets, gadgets


def widget(name: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {}}


def rv_of(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def create_retrying(storage: MemoryStorage, name: str) -> Obj:
    """Create *name*, retrying 503 while Redis comes back (what a client does)."""
    with anyio.fail_after(30):
        while True:
            try:
                return await storage.create("default", widget(name))
            except StatusError as exc:
                if exc.status.code != 503:
                    raise
                await anyio.sleep(0.05)


async def take(watch: Watch[Obj], count: int) -> list[Any]:
    out: list[Any] = []
    with anyio.fail_after(30):
        async for event in watch:
            out.append(event)
            if len(out) == count:
                break
    return out


async def next_event_is_410(watch: Watch[Obj]) -> bool:
    with anyio.fail_after(30):
        async for event in watch:
            if event.type is EventType.ERROR:
                assert isinstance(event.object, dict)
                assert event.object["code"] == 410
                return True
            return False
    raise AssertionError("the watch ended without an event")


@attrs.frozen
class Outcome:
    lost: int  # acknowledged writes from before the fault that are gone
    duplicated: int  # RVs handed out after the fault that were handed out before it
    watchers_410: int  # of the 2 open watches, how many were ended with 410
    stale_resume_410: bool  # a watch from a pre-fault RV got 410


async def run_case(server: RedisServer, fault: str) -> Outcome:
    """Write 20 widgets on two replicas and 5 gadgets, apply *fault*, write 4 widgets, measure."""
    async with (
        replica(server.url) as (a, _),
        replica(server.url) as (b, gadgets),
        create_client(server.url) as c,
    ):
        start = (await a.list("")).resource_version
        watches = [
            await s.watch("", ListOptions(watch=True, resource_version=start)) for s in (a, b)
        ]
        before: list[Obj] = []
        for i in range(20):
            before.append(await (a, b)[i % 2].create("default", widget(f"pre{i}")))
            if fault == "rdb" and i == 9:
                await c.save()  # an RDB snapshot: the next 10 writes are not in it
        for w in watches:  # both replicas delivered all 20
            got = await take(w, 20)
            assert [rv_of(e.object) for e in got] == [rv_of(o) for o in before]

        # The newest RVs before the fault are another resource's: B's widget
        # reader never sees them, yet they must not be handed out again either.
        pre_rvs = {rv_of(o) for o in before}
        pre_rvs |= {rv_of(await gadgets.create("default", widget(f"g{i}"))) for i in range(5)}
        if fault == "flushall":
            await c.flushall()
        else:
            server.stop(kill=fault != "none")
            server.start()

        after = [await create_retrying((a, b)[i % 2], f"post{i}") for i in range(4)]
        ended = [await next_event_is_410(w) for w in watches]
        for w in watches:
            w.stop()
        resume = await b.watch("", ListOptions(watch=True, resource_version=str(rv_of(before[2]))))
        stale_410 = await next_event_is_410(resume)
        resume.stop()

        for storage in (a, b):
            listed = {o["metadata"]["name"]: rv_of(o) for o in (await storage.list("")).items}
            acknowledged = {o["metadata"]["name"]: rv_of(o) for o in [*before, *after]}
            # nothing is silently re-numbered: every object left has the RV its write got
            assert all(acknowledged[name] == rv for name, rv in listed.items())
            for o in after:
                assert listed[o["metadata"]["name"]] == rv_of(o)  # no write after the fault lost
        lost = sum(1 for o in before if o["metadata"]["name"] not in listed)
        # RVs stay strictly increasing across the fault
        assert min(rv_of(o) for o in after) > max(pre_rvs)
        assert [rv_of(o) for o in after] == sorted(rv_of(o) for o in after)
        return Outcome(
            lost=lost,
            duplicated=sum(1 for o in after if rv_of(o) in pre_rvs),
            watchers_410=sum(ended),
            stale_resume_410=stale_410,
        )


CASES = {
    # persistence: (appendonly, appendfsync, save) -> the fault
    "none": (False, "always", "", "none"),  # clean restart, nothing persisted
    "flushall": (True, "always", "", "flushall"),
    "rdb": (False, "always", "3600 1", "rdb"),  # a crash after an RDB snapshot
    "aof-everysec": (True, "everysec", "", "kill"),  # a crash of redis-server
    "aof-always": (True, "always", "", "kill"),
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("none", Outcome(lost=20, duplicated=0, watchers_410=2, stale_resume_410=True)),
        ("flushall", Outcome(lost=20, duplicated=0, watchers_410=2, stale_resume_410=True)),
        ("rdb", Outcome(lost=10, duplicated=0, watchers_410=2, stale_resume_410=True)),
        ("aof-everysec", Outcome(lost=0, duplicated=0, watchers_410=0, stale_resume_410=False)),
        ("aof-always", Outcome(lost=0, duplicated=0, watchers_410=0, stale_resume_410=False)),
    ],
)
async def test_data_loss_is_detected_and_never_rewinds_rvs(
    tmp_path: Path, case: str, expected: Outcome
) -> None:
    appendonly, appendfsync, save, fault = CASES[case]
    server = RedisServer(tmp_path, appendonly=appendonly, appendfsync=appendfsync, save=save)
    server.start()
    try:
        outcome = await run_case(server, fault)
    finally:
        server.stop()
    print(f"\n{case}: {outcome}")  # the table in docs/how-to/use-redis.md
    assert outcome == expected


async def test_no_loss_is_found_where_there_was_none(redis_url: str, prefix: str) -> None:
    async with open_redis_backend(redis_url, prefix=prefix) as backend:
        log = backend.log_for("widgets")
        async with MemoryStorage("example.com/v1", "Widget", log=log) as storage:
            first = await storage.create("default", widget("a"))
            assert rv_of(first) == 1  # the counter was not re-seeded at start
            await anyio.sleep(2.5)  # one idle XREAD ended: the reader checked Redis
            assert rv_of(await storage.create("default", widget("b"))) == 2
            assert log.resets == 0
    async with open_redis_backend(redis_url, prefix=prefix) as backend:  # a new replica
        log = backend.log_for("widgets")
        async with MemoryStorage("example.com/v1", "Widget", log=log) as storage:
            assert rv_of(await storage.create("default", widget("c"))) == 3
            assert log.resets == 0
