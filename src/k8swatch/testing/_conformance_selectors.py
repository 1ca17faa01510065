"""Conformance cases on filtering: label and field selectors, namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from k8swatch._status import StatusError

from ._conformance_base import ConformanceBase, assert_status, metadata_of, only_with

__all__ = ["SelectorConformance"]


class SelectorConformance(ConformanceBase, group=True):
    """Filtering: label and field selectors, and namespace scoping.

    Label selectors filter, and an object that starts or stops matching arrives
    as ``ADDED`` or ``DELETED`` (needs ``supports_labels``); ``metadata.name``
    field selectors filter; a bad label selector and an unsupported field are
    400 BadRequest; a namespace watch sees only its namespace and ``""`` sees
    all (needs ``namespaced``).

    Cases:

    * ``test_label_selector_filters_and_transitions``: Label selectors filter, and objects
      moving in/out become ADDED/DELETED (§5.6).
    * ``test_label_selector_on_initial_events``: Initial events are filtered by the label
      selector too.
    * ``test_field_selector_metadata_name``: ``fieldSelector=metadata.name=x`` delivers only
      x's events.
    * ``test_bad_label_selector_is_rejected``: A label selector that does not parse is a 400
      BadRequest before the watch.
    * ``test_unsupported_field_is_rejected``: A field selector on an unsupported field is a
      400 BadRequest.
    * ``test_namespace_scoping``: A namespace watch sees only its namespace; ``""`` sees
      every namespace.
    """

    @only_with("supports_labels")
    async def test_label_selector_filters_and_transitions(self, storage: Any) -> None:
        """Label selectors filter, and objects moving in/out become ADDED/DELETED (§5.6)."""
        async with self._recorder(await self.live_watch(storage, label_selector="app=web")) as rec:
            a = await self.create(storage, "a", labels={"app": "web"})
            b = await self.create(storage, "b", labels={"app": "db"})
            b = await self.update(storage, b)  # still not matching: nothing
            b = await self.update(storage, b, labels={"app": "web"})  # starts matching
            a = await self.update(storage, a)  # still matching
            a = await self.update(storage, a, labels={"app": "db"})  # stops matching
            a = await self.update(storage, a)  # still not matching: nothing
            await self.delete(storage, b)  # deleted while matching
            await self.delete(storage, a)  # deleted while not matching: nothing
            await self.create(storage, "c", labels={"app": "web"})
            assert await self._wait_changes(rec, 6) == [
                ("ADDED", "a"),
                ("ADDED", "b"),
                ("MODIFIED", "a"),
                ("DELETED", "a"),
                ("DELETED", "b"),
                ("ADDED", "c"),
            ]
            await rec.settle()
            changes = self._own_events(rec.events)
            assert len(changes) == 6, rec.describe()
            # The DELETED of an object that stopped matching carries its old labels.
            assert metadata_of(changes[3].object).get("labels") == {"app": "web"}

    @only_with("supports_labels")
    async def test_label_selector_on_initial_events(self, storage: Any) -> None:
        """Initial events are filtered by the label selector too."""
        if not self.supports_initial_events:
            rv = await self.list_rv(storage)
            watch = await self.watch(storage, resource_version=rv, label_selector="app=web")
            async with self._recorder(watch) as rec:
                await self.create(storage, "a", labels={"app": "web"})
                await self.create(storage, "b", labels={"app": "db"})
                await self.create(storage, "c", labels={"app": "web"})
                assert await self._wait_changes(rec, 2) == [("ADDED", "a"), ("ADDED", "c")]
            return
        await self.create(storage, "a", labels={"app": "web"})
        await self.create(storage, "b", labels={"app": "db"})
        async with self._recorder(await self.watch(storage, label_selector="app=web")) as rec:
            assert await self._wait_changes(rec, 1) == [("ADDED", "a")]
            await self.create(storage, "c", labels={"app": "web"})
            assert await self._wait_changes(rec, 2) == [("ADDED", "a"), ("ADDED", "c")]

    async def test_field_selector_metadata_name(self, storage: Any) -> None:
        """``fieldSelector=metadata.name=x`` delivers only x's events."""
        watch = await self.live_watch(
            storage, field_selector=f"metadata.name={self.object_name('b')}"
        )
        async with self._recorder(watch) as rec:
            await self.create(storage, "a")
            b = await self.create(storage, "b")
            await self.create(storage, "c")
            await self.delete(storage, b)
            assert await self._wait_changes(rec, 2) == [("ADDED", "b"), ("DELETED", "b")]
            await rec.settle()
            assert len(self._changes(rec.events)) == 2, rec.describe()

    async def test_bad_label_selector_is_rejected(self, storage: Any) -> None:
        """A label selector that does not parse is a 400 BadRequest before the watch."""
        rv = await self.list_rv(storage)
        with pytest.raises(StatusError) as exc:
            await self.watch(storage, resource_version=rv, label_selector="a in (")
        assert_status(exc, 400, "BadRequest")

    async def test_unsupported_field_is_rejected(self, storage: Any) -> None:
        """A field selector on an unsupported field is a 400 BadRequest."""
        rv = await self.list_rv(storage)
        with pytest.raises(StatusError) as exc:
            await self.watch(storage, resource_version=rv, field_selector="spec.nope=1")
        assert_status(exc, 400, "BadRequest")

    @only_with("namespaced")
    async def test_namespace_scoping(self, storage: Any) -> None:
        """A namespace watch sees only its namespace; ``""`` sees every namespace."""
        ns, other = self.namespace, self.other_namespace
        scoped = self._recorder(await self.live_watch(storage, ns))
        everywhere = self._recorder(await self.live_watch(storage, ""))
        async with scoped, everywhere:
            await self.create(storage, "a", ns)
            await self.create(storage, "b", other)
            await self.create(storage, "c", ns)
            assert await self._wait_changes(everywhere, 3) == [
                ("ADDED", "a"),
                ("ADDED", "b"),
                ("ADDED", "c"),
            ]
            assert await self._wait_changes(scoped, 2) == [("ADDED", "a"), ("ADDED", "c")]
            await scoped.settle()
            assert len(self._changes(scoped.events)) == 2, scoped.describe()
            namespaces = {metadata_of(e.object).get("namespace") for e in everywhere.events}
            assert namespaces == {ns, other}
