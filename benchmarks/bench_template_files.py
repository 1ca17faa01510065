"""What ``spec.files`` in template lists costs: latency with 100 templates, and memory.

``k8swatch fake-coder`` runs in a child process (the embedded fake Coder, served
over HTTP on 127.0.0.1); this process creates 99 templates in it besides the
seeded one, each from three files (about 8 KiB of Terraform and Markdown, the
size of a typical Coder template), then lists them with `TemplateStorage`:

* **no files**: the list as it was before ``spec.files`` was added (the storage's
  list without the files step: one ``GET /templates`` and the conversion);
* **cold**: a new storage (empty files cache) for each run, so every version is
  read (``GET /templateversions/{id}`` + ``GET /files/{id}``, 200 requests), at
  concurrency 1, 8 (the default) and 32;
* **cold, 10 ms away**: the same with 10 ms added before each request (an httpx
  transport that sleeps, as a Coder in another zone would cost): here the
  concurrency limit is what keeps a cold list short;
* **warm**: the same storage again: the files come from the cache.

It prints median and p90 latency of each, the size of the list as JSON, and the
memory the files cache holds after a list of 100 templates: as the cache
counts it against its byte budget, and as ``tracemalloc`` measures it.

Run: ``python benchmarks/bench_template_files.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from _record import record
from k8swatch import ListOptions
from k8swatch.coder import CoderClient, StaticClientProvider, TemplateStorage
from k8swatch.coder._files import build_archive
from k8swatch.coder._storage_base import _CoderStorage

QUICK = "--quick" in sys.argv
TEMPLATES = 20 if QUICK else int(os.environ.get("BENCH_TEMPLATES", "100"))
RUNS = 3 if QUICK else int(os.environ.get("BENCH_RUNS", "15"))
NS = "bench"
TOKEN = "bench-session-token"
RTT = 0.010


class Distant(httpx.AsyncBaseTransport):
    """A real HTTP transport that waits *RTT* before each request."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(RTT)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def template_files(i: int) -> dict[str, str]:
    """About 8 KiB in three files, like a small real template."""
    resources = "".join(
        f'resource "null_resource" "r{i}_{n}" {{\n  triggers = {{ n = "{n}" }}\n}}\n\n'
        for n in range(60)
    )
    variables = "".join(
        f'variable "v{n}" {{\n  type    = string\n  default = "value-{i}-{n}"\n}}\n'
        for n in range(20)
    )
    readme = f"# Template {i}\n\n" + "A development environment for the team. " * 30
    return {"main.tf": resources, "variables.tf": variables, "README.md": readme}


def start_fake_coder() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8swatch.cli", "fake-coder", "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("URL: "):
            return proc, line.split(" ", 1)[1].strip()
    raise RuntimeError("k8swatch fake-coder did not start")


async def create_templates(url: str, count: int) -> int:
    """Create *count* templates from files; return the bytes of text uploaded."""
    total = 0
    async with CoderClient(url, TOKEN) as client:
        org_id = str((await client.organization("acme"))["id"])
        for i in range(count):
            files = template_files(i)
            total += sum(len(t) for t in files.values())
            file_id = await client.upload(build_archive(files))
            version = await client.create_template_version(org_id, file_id=file_id)
            await client.create_template(org_id, name=f"bench-{i:03d}", version_id=version["id"])
    return total


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[list[float], Any]:
    times: list[float] = []
    result: Any = None
    for _ in range(runs):
        start = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return {"median_ms": round(statistics.median(ordered), 2), "p90_ms": round(p90, 2)}


async def main() -> None:
    proc, url = start_fake_coder()
    try:
        text_bytes = await create_templates(url, TEMPLATES - 1)
        provider = StaticClientProvider(url, TOKEN, NS)
        options = ListOptions()
        figures: dict[str, Any] = {"templates": TEMPLATES}

        # without files and warm, interleaved: a shared machine's load hits both alike
        plain = TemplateStorage(provider)
        warm = TemplateStorage(provider)
        await warm.list(NS, options)
        plain_times: list[float] = []
        warm_times: list[float] = []
        for _ in range(RUNS):
            times, without = await timed(lambda: _CoderStorage.list(plain, NS, options), 1)
            plain_times += times
            times, listed = await timed(lambda: warm.list(NS, options), 1)
            warm_times += times
        assert len(without.items) == TEMPLATES
        figures["no_files"] = summary(plain_times)
        figures["warm"] = summary(warm_times)
        figures["list_json_bytes_no_files"] = len(json.dumps(without.items))
        figures["list_json_bytes_with_files"] = len(json.dumps(listed.items))
        await plain.aclose()
        await warm.aclose()

        distant = StaticClientProvider(url, TOKEN, NS, transport=Distant())
        for label, source in (("cold", provider), ("cold_10ms", distant)):
            for concurrency in (1, 8, 32):
                cold_times: list[float] = []
                for _ in range(max(3, RUNS // 3) if source is distant else RUNS):
                    cold = TemplateStorage(source, files_concurrency=concurrency)
                    start = time.perf_counter()
                    listed = await cold.list(NS, options)
                    cold_times.append((time.perf_counter() - start) * 1000)
                    assert all("files" in o["spec"] for o in listed.items)
                    await cold.aclose()
                figures[f"{label}_concurrency_{concurrency}"] = summary(cold_times)
        await distant.aclose()

        # memory: what a filled cache holds, counted and measured
        del listed, without
        gc.collect()
        tracemalloc.start()
        measured = TemplateStorage(provider)
        await _CoderStorage.list(measured, NS, options)  # warm up the HTTP pool
        gc.collect()
        before = tracemalloc.take_snapshot()
        items = await measured.list(NS, options)
        del items
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        cache = measured._files_cache
        held = sum(
            s.size_diff
            for s in after.compare_to(before, "filename")
            if s.traceback[0].filename.endswith(("_files.py", "_files_cache.py"))
        )
        figures["cache_entries"] = len(cache)
        figures["cache_counted_bytes"] = cache.size_bytes
        figures["cache_measured_bytes"] = held
        figures["source_text_bytes"] = text_bytes + len('resource "null_resource" "example" {}')
        await measured.aclose()
        await provider.aclose()
    finally:
        proc.terminate()
        proc.wait(30)

    print(f"templates: {TEMPLATES}, runs: {RUNS}")
    keys = ["no_files"] + [
        f"{label}_concurrency_{n}" for label in ("cold", "cold_10ms") for n in (1, 8, 32)
    ]
    for key in [*keys, "warm"]:
        median, p90 = figures[key]["median_ms"], figures[key]["p90_ms"]
        print(f"list {key:24} {median:8.1f} ms median, p90 {p90:.1f}")
    print(
        f"list as JSON: {figures['list_json_bytes_no_files']} bytes without files, "
        f"{figures['list_json_bytes_with_files']} with"
    )
    print(
        f"files cache: {figures['cache_entries']} entries, "
        f"{figures['cache_counted_bytes']} bytes counted against the budget, "
        f"{figures['cache_measured_bytes']} bytes measured by tracemalloc, "
        f"for {figures['source_text_bytes']} bytes of source text"
    )
    record("template_files", figures)


if __name__ == "__main__":
    asyncio.run(main())
