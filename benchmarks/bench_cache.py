"""Watch cache benchmarks: resume cost vs window size, list of 10k objects, memory per event.

Run: ``python benchmarks/bench_cache.py``. Prints figures and same-run ratios:

* resume: time to start a watch from an RV in the middle of the window, and
  to get its first event, for windows of 1k, 10k and 100k events. The
  target is a flat cost (ratio 100k/1k <= 2): the start is a binary search.
* list: a 10k-object list from the cache (shared objects) and through
  MemoryStorage (copies), unpaginated and in pages of 500.
* memory: bytes per cached event (tracemalloc), with and without the object.
* fan-out: deliveries/s to 100 watchers reading ``batches()``, without and
  with a label selector (evaluated once per change and distinct selector).
* wake-ups: the cost of waking an idle watcher for one event, bare and
  wrapped in ``stop_aware_watch`` as the HTTP layer does (timeout only) and
  with a *done* signal (it is then woken by cancelling a parked scope).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from typing import Any

import anyio

from _settle import settle
from k8swatch import EventType, ListOptions, MemoryStorage, WatchCache, stop_aware_watch


def widget(i: int, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": f"w{i:06d}", "namespace": f"ns{i % 10}", "labels": labels},
        "spec": {"size": i},
    }


def filled_cache(window: int) -> WatchCache[dict[str, Any]]:
    cache: WatchCache[dict[str, Any]] = WatchCache("example.com/v1", "Widget", window=window)
    objects = [widget(i) for i in range(1000)]
    for i in range(window + window // 10):  # wrap around: some evicted
        cache.apply(EventType.ADDED if i < 1000 else EventType.MODIFIED, objects[i % 1000])
    return cache


async def bench_resume() -> None:
    print("resume: start a watch from an RV in the middle of the window")
    results: dict[int, tuple[float, float]] = {}
    for window in (1_000, 10_000, 100_000):
        cache = filled_cache(window)
        middle = str(cache.oldest_resource_version + window // 2)
        opts = ListOptions(watch=True, resource_version=middle)
        starts: list[float] = []
        firsts: list[float] = []
        for _ in range(2000):
            t0 = time.perf_counter()
            watch = await cache.watch("", opts)
            t1 = time.perf_counter()
            await watch.__anext__()
            t2 = time.perf_counter()
            watch.stop()
            starts.append(t1 - t0)
            firsts.append(t2 - t0)
        results[window] = (statistics.median(starts), statistics.median(firsts))
        print(
            f"  window {window:>7,}: watch() {results[window][0] * 1e6:6.2f} us, "
            f"first event {results[window][1] * 1e6:6.2f} us"
        )
    for label, index in (("watch()", 0), ("first event", 1)):
        ratio = results[100_000][index] / results[1_000][index]
        verdict = "OK" if ratio <= 2 else "TOO SLOW"
        print(f"  ratio 100k/1k ({label}): {ratio:.2f} (target <= 2: {verdict})")


async def bench_list() -> None:
    print("list: 10,000 objects")
    cache: WatchCache[dict[str, Any]] = WatchCache("example.com/v1", "Widget", window=1000)
    store = MemoryStorage("example.com/v1", "Widget")
    for i in range(10_000):
        obj = widget(i, app="web" if i % 2 else "db")
        cache.apply(EventType.ADDED, obj)
        await store.create(obj["metadata"]["namespace"], obj)

    async def timed(label: str, fn: Any, repeat: int = 20) -> float:
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await fn()
            samples.append(time.perf_counter() - t0)
        best = statistics.median(samples)
        print(f"  {label:<44} {best * 1e3:7.2f} ms  ({10_000 / best / 1e6:.2f} M items/s)")
        return best

    async def paged(source: Any) -> None:
        token = ""
        while True:
            page = await source.list("", ListOptions(limit=500, continue_token=token))
            token = page.continue_token
            if not token:
                return

    shared = await timed("WatchCache.list (shared objects)", lambda: cache.list(""))
    await timed(
        "WatchCache.list labelSelector=app=web (5k)",
        lambda: cache.list("", ListOptions(label_selector="app=web")),
    )
    await timed("WatchCache.list one namespace (1k)", lambda: cache.list("ns3"))
    await timed("WatchCache.list, 20 pages of 500", lambda: paged(cache))
    copied = await timed("MemoryStorage.list (copies)", lambda: store.list("", ListOptions()), 5)
    print(f"  copying costs {copied / shared:.1f}x the shared list")
    await store.aclose()


def bench_memory() -> None:
    print("memory per cached event (tracemalloc)")
    count = 50_000
    gc.collect()
    tracemalloc.start()
    cache: WatchCache[dict[str, Any]] = WatchCache("example.com/v1", "Widget", window=count)
    base = tracemalloc.get_traced_memory()[0]
    for i in range(count):
        cache.apply(EventType.ADDED if i < 100 else EventType.MODIFIED, widget(i % 100))
    total = tracemalloc.get_traced_memory()[0] - base
    # the same objects without the cache: what a stored object costs by itself
    base = tracemalloc.get_traced_memory()[0]
    from k8swatch._eventlog import with_resource_version

    kept = [with_resource_version(widget(i % 100), i) for i in range(count)]
    objects = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del kept
    per_event = total / count
    per_object = objects / count
    print(f"  {per_event:,.0f} B per event in total (object included)")
    overhead = per_event - per_object
    print(f"  {overhead:,.0f} B per event of cache overhead (object: {per_object:,.0f} B)")


async def bench_fanout(label_selector: str = "") -> None:
    what = f" labelSelector={label_selector} (half the events match)" if label_selector else ""
    print(f"fan-out: 100 watchers reading batches(), 20,000 events{what}")
    cache: WatchCache[dict[str, Any]] = WatchCache("example.com/v1", "Widget", window=5000)
    objects = [widget(i, app="web" if i % 2 else "db") for i in range(100)]
    opts = ListOptions(watch=True, resource_version="0", label_selector=label_selector)
    watches = [await cache.watch("", opts) for _ in range(100)]
    received = [0]

    async def consume(watch: Any) -> None:
        async for batch in watch.batches():
            received[0] += len(batch)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for watch in watches:
            tg.start_soon(consume, watch)
        for i in range(20_000):
            cache.apply(EventType.ADDED if i < 100 else EventType.MODIFIED, objects[i % 100])
            if i % 500 == 499:
                await settle()
        await settle()
        cache.close()
    elapsed = time.perf_counter() - t0
    assert received[0] == (1_000_000 if label_selector else 2_000_000), received[0]
    print(
        f"  {received[0] / elapsed / 1e6:.2f} M deliveries/s, "
        f"{2_000_000 / elapsed / 1e6:.2f} M (event, watcher) pairs/s ({elapsed:.2f} s)"
    )


async def bench_wakeups() -> None:
    print("wake-ups: 200 idle watchers, one event at a time (cost per watcher per wake-up)")
    results: dict[str, float] = {}
    for label in ("bare", "stop_aware_watch(timeout)", "stop_aware_watch(done)"):
        cache: WatchCache[dict[str, Any]] = WatchCache("example.com/v1", "Widget", window=5000)
        opts = ListOptions(watch=True, resource_version="0")
        watches: list[Any] = [await cache.watch("", opts) for _ in range(200)]
        if label == "stop_aware_watch(timeout)":
            watches = [stop_aware_watch(w, timeout=3600) for w in watches]
        elif label == "stop_aware_watch(done)":
            watches = [stop_aware_watch(w, done=anyio.Event()) for w in watches]

        async def consume(watch: Any) -> None:
            async for _batch in watch.batches():
                pass

        async with anyio.create_task_group() as tg:
            for watch in watches:
                tg.start_soon(consume, watch)
            await settle()
            rounds = 500
            t0 = time.perf_counter()
            for i in range(rounds):
                cache.apply(EventType.ADDED if i == 0 else EventType.MODIFIED, widget(0))
                await settle()
            results[label] = (time.perf_counter() - t0) / rounds / 200 * 1e6
            cache.close()
    bare = results["bare"]
    for label, micros in results.items():
        print(f"  {label:<28} {micros:6.1f} us per watcher wake-up ({micros / bare:.1f}x bare)")


async def main() -> None:
    print(f"python {sys.version.split()[0]}, anyio on asyncio")
    await bench_resume()
    await bench_list()
    bench_memory()
    await bench_fanout()
    await bench_fanout("app=web")
    await bench_wakeups()


if __name__ == "__main__":
    anyio.run(main)
