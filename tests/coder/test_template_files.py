"""``spec.files`` in template lists and watches, from the cache of version sources by id.

Every test talks HTTP to the fake Coder on 127.0.0.1; the fake counts the requests,
so the cache's effect is measured where Coder sees it.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from k8swatch import Event, EventType, ListOptions, StatusError, Watch
from k8swatch.coder import CoderClient, StaticClientProvider, TemplateStorage
from k8swatch.coder._fake import FakeCoder
from k8swatch.coder._files import build_archive

from .conftest import CODER_NAMESPACE, FakeCoderServer

NS = CODER_NAMESPACE  # what the conftest's provider serves
MAIN_TF = 'resource "null_resource" "example" {}'
DOWNLOAD = ("GET", "files/{id}")
VERSION = ("GET", "templateversions/{id}")
EVENT_TIMEOUT = 5.0


@pytest.fixture(params=[False, True], ids=["broadcaster", "cache"])
def cached(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def template(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"organization": "acme", **spec}}


def files_for(i: int) -> dict[str, str]:
    return {"main.tf": f"# template {i}\n", "vars.tf": f'variable "n" {{ default = {i} }}\n'}


async def create_templates(provider: StaticClientProvider, count: int) -> None:
    """Create *count* templates from files through a storage of their own (a cold reader)."""
    writer = TemplateStorage(provider)
    try:
        for i in range(count):
            await writer.create(NS, template(f"acme.t{i:03d}", files=files_for(i)))
    finally:
        await writer.aclose()


def by_name(items: Any) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in items}


async def change_source_out_of_band(
    server: FakeCoderServer, name: str, files: dict[str, str]
) -> str:
    """A Coder user uploads a new version of template *name* and promotes it."""
    async with CoderClient(server.url, server.token) as client:
        org = await client.organization("acme")
        tmpl = await client.template_by_name(str(org["id"]), name)
        file_id = await client.upload(build_archive(files))
        version = await client.create_template_version(
            str(org["id"]), file_id=file_id, template_id=str(tmpl["id"])
        )
        await client.update_active_template_version(str(tmpl["id"]), str(version["id"]))
        return str(version["id"])


async def next_event(watch: Watch[dict[str, Any]]) -> Event[dict[str, Any]]:
    with anyio.fail_after(EVENT_TIMEOUT):
        return await watch.__anext__()


async def test_a_list_reads_each_version_once_and_every_item_has_its_files(
    provider: StaticClientProvider, fake: FakeCoder, cached: bool
) -> None:
    await create_templates(provider, 12)
    reader = TemplateStorage(provider, watch_cache=cached)
    fake.reset_request_counts()
    try:
        first = by_name((await reader.list(NS, ListOptions())).items)
        assert len(first) == 13
        assert first["acme.starter-template"]["spec"]["files"] == {"main.tf": MAIN_TF}
        for i in range(12):
            assert first[f"acme.t{i:03d}"]["spec"]["files"] == files_for(i)
        assert fake.request_count(*DOWNLOAD) == 13  # cold: one download per version
        assert fake.request_count(*VERSION) == 13
        second = by_name((await reader.list(NS, ListOptions())).items)
        assert second == first
        got = await reader.get(NS, "acme.t005")
        assert got["spec"]["files"] == files_for(5)
        assert fake.request_count(*DOWNLOAD) == 13  # warm: Coder is not asked again
        assert fake.request_count(*VERSION) == 13
    finally:
        await reader.aclose()


async def test_the_cache_drops_versions_no_template_has_active_any_more(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer, fake: FakeCoder
) -> None:
    await create_templates(provider, 3)
    reader = TemplateStorage(provider)
    try:
        await reader.list(NS, ListOptions())
        old = reader._files_cache.version_ids()
        assert len(old) == 4
        new_version = await change_source_out_of_band(
            fake_coder_server, "t001", {"main.tf": "# changed\n"}
        )
        listed = by_name((await reader.list(NS, ListOptions())).items)
        assert listed["acme.t001"]["spec"]["files"] == {"main.tf": "# changed\n"}
        active = {o["spec"]["versionID"] for o in listed.values()}
        assert new_version in active
        assert reader._files_cache.version_ids() == active  # the replaced version is gone
        # a template deleted in Coder takes its version out of the cache too
        await reader.delete(NS, "acme.t002")
        listed = by_name((await reader.list(NS, ListOptions())).items)
        assert reader._files_cache.version_ids() == {
            o["spec"]["versionID"] for o in listed.values()
        }
        assert len(reader._files_cache) == 3
    finally:
        await reader.aclose()


async def test_the_byte_budget_bounds_the_cache(
    provider: StaticClientProvider, fake: FakeCoder
) -> None:
    await create_templates(provider, 6)
    probe = TemplateStorage(provider)
    await probe.list(NS, ListOptions())
    per_entry = probe._files_cache.size_bytes // len(probe._files_cache)
    await probe.aclose()
    budget = per_entry * 5 // 2  # room for two entries
    reader = TemplateStorage(provider, files_cache_bytes=budget)
    fake.reset_request_counts()
    try:
        for _ in range(2):
            listed = by_name((await reader.list(NS, ListOptions())).items)
            for i in range(6):
                assert listed[f"acme.t{i:03d}"]["spec"]["files"] == files_for(i)
            assert reader._files_cache.size_bytes <= budget
            assert len(reader._files_cache) <= 2
        # the price of a budget smaller than the working set: versions are read again
        assert fake.request_count(*DOWNLOAD) > 7
    finally:
        await reader.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that records how many version reads are in flight at once."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.in_flight = 0
        self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/templateversions/" not in request.url.path:
            return await self._inner.handle_async_request(request)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await anyio.sleep(0.02)  # so the reads overlap when they may
            response = await self._inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_cold_list_reads_versions_concurrently_within_the_limit(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer
) -> None:
    await create_templates(provider, 11)
    transport = CountingTransport()
    counted = StaticClientProvider(
        fake_coder_server.url, fake_coder_server.token, NS, transport=transport
    )
    reader = TemplateStorage(counted, files_concurrency=3)
    try:
        listed = (await reader.list(NS, ListOptions())).items
        assert all("files" in o["spec"] for o in listed)
        assert transport.most == 3  # concurrent, and never more than the limit
    finally:
        await reader.aclose()
        await counted.aclose()


async def test_watch_events_carry_files_also_after_a_version_change(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer, cached: bool
) -> None:
    storage = TemplateStorage(provider, watch_cache=cached, build_poll_interval=0.01)
    try:
        await storage.resync(NS)  # the poller's first listing: what it diffs against
        listed = await storage.list(NS, ListOptions())
        options = ListOptions(watch=True, resource_version=listed.resource_version)
        async with await storage.watch(NS, options) as watch:
            created = await storage.create(NS, template("acme.w", files={"main.tf": "# one\n"}))
            event = await next_event(watch)
            assert (event.type, event.object["spec"]["files"]) == (
                EventType.ADDED,
                {"main.tf": "# one\n"},
            )
            # a version change through this server
            created["spec"]["files"] = {"main.tf": "# two\n"}
            await storage.update(NS, "acme.w", created)
            event = await next_event(watch)
            assert (event.type, event.object["spec"]["files"]) == (
                EventType.MODIFIED,
                {"main.tf": "# two\n"},
            )
            # a version change made in Coder, found by a resync (the poller's step)
            await change_source_out_of_band(fake_coder_server, "w", {"main.tf": "# three\n"})
            await storage.resync(NS)
            event = await next_event(watch)
            assert (event.type, event.object["spec"]["files"]) == (
                EventType.MODIFIED,
                {"main.tf": "# three\n"},
            )
            await storage.delete(NS, "acme.w")
            event = await next_event(watch)
            assert (event.type, event.object["spec"]["files"]) == (
                EventType.DELETED,
                {"main.tf": "# three\n"},
            )
    finally:
        await storage.aclose()


async def test_initial_events_carry_files(provider: StaticClientProvider) -> None:
    await create_templates(provider, 2)
    storage = TemplateStorage(provider, watch_cache=True)
    try:
        options = ListOptions(
            watch=True,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
        )
        async with await storage.watch(NS, options) as watch:
            seen: dict[str, Any] = {}
            while len(seen) < 3:
                event = await next_event(watch)
                assert event.type is EventType.ADDED
                seen[event.object["metadata"]["name"]] = event.object["spec"]["files"]
        assert seen == {
            "acme.starter-template": {"main.tf": MAIN_TF},
            "acme.t000": files_for(0),
            "acme.t001": files_for(1),
        }
    finally:
        await storage.aclose()


async def test_a_coder_failure_while_reading_an_events_files_ends_the_watch_with_a_503(
    provider: StaticClientProvider,
    fake_coder_server: FakeCoderServer,
    fake: FakeCoder,
    cached: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = TemplateStorage(provider, watch_cache=cached)
    try:
        await storage.resync(NS)  # the poller's first listing: what it diffs against
        listed = await storage.list(NS, ListOptions())
        options = ListOptions(watch=True, resource_version=listed.resource_version)
        async with await storage.watch(NS, options) as watch:
            await change_source_out_of_band(fake_coder_server, "starter-template", {"a.tf": ""})
            fake.fail_next_request(
                *VERSION, status=502, body=b"<h1>bad gateway</h1>", content_type="text/html"
            )
            await storage.resync(NS)
            event = await next_event(watch)
            assert event.type is EventType.ERROR
            assert event.object["code"] == 503
            assert event.object["message"] == (
                'the Coder deployment failed: unexpected non-JSON response "text/html"'
            )
            with pytest.raises(StopAsyncIteration):
                await next_event(watch)
        assert "ending a template watch" in caplog.text
        # the next list reads the version (the failure was not remembered)
        listed = await storage.list(NS, ListOptions())
        assert by_name(listed.items)["acme.starter-template"]["spec"]["files"] == {"a.tf": ""}
    finally:
        await storage.aclose()


async def test_a_version_whose_source_cannot_be_read_is_listed_without_files(
    provider: StaticClientProvider, fake: FakeCoder, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next_request(
        *DOWNLOAD, status=200, body=b"PK not a zip", content_type="application/zip"
    )
    storage = TemplateStorage(provider)
    try:
        listed = (await storage.list(NS, ListOptions())).items
        assert "files" not in listed[0]["spec"]
        assert "its source archive cannot be read: not a valid zip archive" in caplog.text
        with pytest.raises(StatusError) as info:
            await storage.get(NS, "acme.starter-template")
        status = info.value.status
        assert (status.code, status.reason) == (500, "InternalError")
        assert status.message.endswith(
            "of acme.starter-template: its source archive cannot be read: not a valid zip archive"
        )
        assert "zip file" not in status.message  # zipfile's own words stay in the log
        # remembered: versions never change, Coder is not asked again
        downloads = fake.request_count(*DOWNLOAD)
        await storage.list(NS, ListOptions())
        assert fake.request_count(*DOWNLOAD) == downloads
    finally:
        await storage.aclose()


async def test_every_watcher_of_an_event_gets_one_shared_object_with_files(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer
) -> None:
    # the server encodes an event once for all its watchers when they share its object
    storage = TemplateStorage(provider, watch_cache=True)
    try:
        listed = await storage.list(NS, ListOptions())
        options = ListOptions(watch=True, resource_version=listed.resource_version)
        async with await storage.watch(NS, options) as a, await storage.watch(NS, options) as b:
            await change_source_out_of_band(fake_coder_server, "starter-template", {"x.tf": "#"})
            await storage.resync(NS)
            first, second = await next_event(a), await next_event(b)
        assert first.object is second.object
        assert first.object["spec"]["files"] == {"x.tf": "#"}
        again = await storage.list(NS, ListOptions(resource_version="0"))
        assert again.items[0] is first.object
    finally:
        await storage.aclose()
