"""Real clients see template ``spec.files`` in lists and watches: kr8s ``get()`` (which
lists with a name field selector) and a kubernetes-client informer (list, then watch from
the list's resourceVersion), against the served API over HTTP, in front of the fake
Coder over HTTP."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import anyio.to_thread
import httpx
import pytest

from k8swatch.coder import (
    StaticClientProvider,
    TemplateStorage,
    WorkspaceStorage,
    build_resource_specs,
)
from k8swatch.server import create_app
from tests.server._interop import write_kubeconfig

from .conftest import FakeCoderServer, serve_asgi
from .test_template_files import change_source_out_of_band

NS = "coder"
GROUP, VERSION, PLURAL = "aggregation.coder.com", "v1alpha1", "codertemplates"
TEMPLATE = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}/acme.starter-template"
MAIN_TF = 'resource "null_resource" "example" {}'

pytestmark = pytest.mark.filterwarnings(
    "ignore:Kubernetes version .* is not supported:UserWarning",
    "ignore:.*Supported versions for kr8s:UserWarning",
)


class Served(NamedTuple):
    url: str
    templates: TemplateStorage
    coder: FakeCoderServer


@pytest.fixture
async def served(
    fake_coder_server: FakeCoderServer, anyio_backend_name: str
) -> AsyncIterator[Served]:
    provider = StaticClientProvider(fake_coder_server.url, fake_coder_server.token, NS)
    templates = TemplateStorage(provider, watch_cache=True, build_poll_interval=0.01)
    app = create_app(build_resource_specs(templates, WorkspaceStorage(provider)))
    try:
        async with serve_asgi(app, anyio_backend_name) as url:
            yield Served(url, templates, fake_coder_server)
    finally:
        await app.aclose()
        await provider.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # kr8s' async API is asyncio's
async def test_kr8s_get_by_name_sees_the_files(served: Served, tmp_path: Path) -> None:
    import kr8s.asyncio

    api = await kr8s.asyncio.api(kubeconfig=str(write_kubeconfig(tmp_path, served.url, NS)))
    try:
        found = [
            o async for o in api.get(f"{PLURAL}.{GROUP}", "acme.starter-template", namespace=NS)
        ]
        assert [o.raw["spec"]["files"] for o in found] == [{"main.tf": MAIN_TF}]
        listed = [o async for o in api.get(f"{PLURAL}.{GROUP}", namespace=NS)]
        assert [o.raw["spec"]["files"] for o in listed] == [{"main.tf": MAIN_TF}]
    finally:
        if api._session is not None:
            await api._session.aclose()


def informer(url: str, ready: threading.Event, want: int) -> tuple[Any, list[Any]]:
    """What an informer does: list, then watch from the list's resourceVersion."""
    from kubernetes import client, watch

    api_client = client.ApiClient(client.Configuration(host=url))
    try:
        api = client.CustomObjectsApi(api_client)
        listed = api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
        ready.set()
        events: list[Any] = []
        stream = watch.Watch().stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            NS,
            PLURAL,
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=30,
            _request_timeout=60,
        )
        for event in stream:
            events.append((event["type"], event["object"]))
            if len(events) == want:
                break
        return listed, events
    finally:
        api_client.close()


async def test_a_kubernetes_informer_sees_the_files_in_its_list_and_watch(
    served: Served,
) -> None:
    ready = threading.Event()
    result: list[tuple[Any, list[Any]]] = []

    async def run() -> None:
        result.append(await anyio.to_thread.run_sync(informer, served.url, ready, 2))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            while not ready.is_set():  # noqa: ASYNC110 - the informer runs in a thread
                await anyio.sleep(0.01)
            # a version change through the API ...
            async with httpx.AsyncClient(base_url=served.url, timeout=30) as api:
                current = (await api.get(TEMPLATE)).json()
                current["spec"]["files"] = {"main.tf": "# through the API\n"}
                assert (await api.put(TEMPLATE, json=current)).status_code == 200
            # ... and one made in Coder, found by the poller's resync
            await change_source_out_of_band(
                served.coder, "starter-template", {"main.tf": "# in Coder\n"}
            )
            await served.templates.resync(NS)
    ((listed, events),) = result
    assert [o["spec"]["files"] for o in listed["items"]] == [{"main.tf": MAIN_TF}]
    assert [(t, o["spec"]["files"]) for t, o in events] == [
        ("MODIFIED", {"main.tf": "# through the API\n"}),
        ("MODIFIED", {"main.tf": "# in Coder\n"}),
    ]
