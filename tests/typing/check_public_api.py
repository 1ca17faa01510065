"""Static checks of the public API's types (run by mypy and pyright in `nox -s typecheck`).

Nothing here runs; the type checkers assert what they infer.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

import k8swatch
from k8swatch import (
    Broadcaster,
    Event,
    EventType,
    FieldSelector,
    LabelSelector,
    ListOptions,
    Status,
    StatusError,
    Watch,
)


async def check_broadcaster() -> None:
    broadcaster: Broadcaster[dict[str, Any]] = Broadcaster(queue_length=10)
    watch = broadcaster.watch()
    assert_type(watch, Watch[dict[str, Any]])
    await broadcaster.action(EventType.ADDED, {"metadata": {"name": "a"}})
    assert_type(broadcaster.action_or_drop(EventType.DELETED, {}), bool)
    async for event in watch:
        assert_type(event, Event[dict[str, Any]])
        assert_type(event.type, EventType)
        assert_type(event.object, dict[str, Any])
    async for batch in watch.batches():
        for item in batch:
            assert_type(item, Event[dict[str, Any]])
    stopped = k8swatch.stop_aware_watch(watch, timeout=1.0)
    async with stopped:
        assert_type(stopped.stopped, bool)
    broadcaster.shutdown()


def check_selectors() -> None:
    labels = k8swatch.parse_label_selector("app in (a,b),tier!=db")
    assert_type(labels, LabelSelector)
    assert_type(labels.matches({"app": "a"}), bool)
    fields = k8swatch.parse_field_selector("metadata.name=foo")
    assert_type(fields, FieldSelector)
    assert_type(fields.requires_exact_match("metadata.name"), str | None)
    assert_type(k8swatch.escape_field_value("a,b"), str)


def check_options_and_status() -> None:
    options = ListOptions.from_query({"watch": "true", "labelSelector": ["app=a"]})
    assert_type(options, ListOptions)
    assert_type(k8swatch.default_list_options(options), ListOptions)
    err = k8swatch.expired("too old resource version: 1 (2)")
    assert_type(err, StatusError)
    assert_type(err.status, Status)
    assert_type(err.status.to_dict(), dict[str, Any])
